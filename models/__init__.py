"""CNNs by name.

To add your own: write `def my_net(input_shape, num_classes, sync_batch_norm=False, width=1.0)` returning a
`keras.Model` that outputs float32 logits, add it to `MODELS`, and train it with `--config.model=my_net`.
"""

import keras

from models.airbench import airbench, airbench94
from models.resnet9 import resnet9


def resnet50(input_shape, num_classes, sync_batch_norm=False, width=1.0):
    """keras.applications.ResNet50 from scratch, for larger images (e.g. 224x224); float32 logits."""
    if width != 1.0:
        raise ValueError(f"resnet50 (keras.applications) has a fixed width; got width={width}")
    if sync_batch_norm:
        raise ValueError("resnet50 (keras.applications) has its own BatchNorm layers: sync_batch_norm is unsupported")
    base = keras.applications.ResNet50(
        weights=None, input_shape=input_shape, classes=num_classes, classifier_activation=None
    )
    logits = keras.layers.Activation("linear", dtype="float32")(base.output)
    return keras.Model(base.input, logits, name="resnet50")


MODELS = {"resnet9": resnet9, "airbench": airbench, "airbench94": airbench94, "resnet50": resnet50}


def create_model(name, input_shape, num_classes, sync_batch_norm=False, width=1.0):
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {sorted(MODELS)} or add yours to models.MODELS")
    return MODELS[name](tuple(input_shape), num_classes, sync_batch_norm=sync_batch_norm, width=width)
