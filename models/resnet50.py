"""ResNet-50 from keras.applications, trained from scratch, for ImageNet-sized images (e.g. 224x224)."""

import keras


def resnet50(input_shape, num_classes, sync_batch_norm=False, width=1.0):
    """keras.applications.ResNet50 with random weights and float32 logits; its width and BatchNorm are fixed."""
    if width != 1.0:
        raise ValueError(f"resnet50 (keras.applications) has a fixed width; got width={width}")
    if sync_batch_norm:
        raise ValueError("resnet50 (keras.applications) has its own BatchNorm layers: sync_batch_norm is unsupported")
    base = keras.applications.ResNet50(
        weights=None, input_shape=input_shape, classes=num_classes, classifier_activation=None
    )
    logits = keras.layers.Activation("linear", dtype="float32")(base.output)
    return keras.Model(base.input, logits, name="resnet50")
