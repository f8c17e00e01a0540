"""CNNs by name, each with what a run must know of it before building it.

A `ModelSpec` carries the builder, the model's data-dependent initialisation (airbench94's whitening stem is set
from training images) and its constraints, so the trainer names no model and a config is checked against them
before anything is loaded. Importing this package imports no Keras: the built-in builders are imported when a
model is built, so `train.py --help` and config errors answer at once.

To add your own: write `def my_net(input_shape, num_classes, sync_batch_norm=False, width=1.0)` returning a
`keras.Model` that outputs float32 logits, register it with `models.MODELS["my_net"] = models.ModelSpec(my_net)`,
and train it with `--config.model=my_net`.
"""

import dataclasses
import importlib
from collections.abc import Callable

WHITENING_IMAGES = 5000  # airbench94's whitening stem is set from 5000 training images (a fixed sample)


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """A model as the trainer sees it.

    Args:
        build: `(input_shape, num_classes, sync_batch_norm=False, width=1.0) -> keras.Model` with float32 logits.
        init_from_images: `(model, images)` run once, before training, on `WHITENING_IMAGES` (a fixed sample)
            normalised training images (float32 [N, H, W, C]); None for models initialised without data.
            A model with one needs its training set in memory.
        scales_with_width: whether `width` scales its channels (else only width=1.0 is accepted).
        sync_batch_norm: whether it can all-reduce its BatchNorm statistics across replicas.
        whitening_bias: the name of the layer holding its whitening stem's bias (`config.whiten_bias_epochs`
            freezes it), or None.
    """

    build: Callable
    init_from_images: Callable | None = None
    scales_with_width: bool = True
    sync_batch_norm: bool = True
    whitening_bias: str | None = None

    @property
    def needs_images_in_memory(self):
        return self.init_from_images is not None


def _imported(module, name):
    """A function that imports `module` when first called and calls its `name` (keeps this package light)."""

    def call(*args, **kwargs):
        return getattr(importlib.import_module(module), name)(*args, **kwargs)

    call.__name__ = call.__qualname__ = name
    return call


MODELS = {
    "resnet9": ModelSpec(_imported("models.resnet9", "resnet9")),
    "airbench": ModelSpec(_imported("models.airbench", "airbench")),
    "airbench94": ModelSpec(
        _imported("models.airbench", "airbench94"),
        init_from_images=_imported("models.airbench", "whiten_from_data"),
        whitening_bias="whiten_bias",
    ),
    "airbench94_without_dirac": ModelSpec(
        _imported("models.airbench", "airbench94_without_dirac"),
        init_from_images=_imported("models.airbench", "whiten_from_data"),
        whitening_bias="whiten_bias",
    ),
    "resnet50": ModelSpec(_imported("models.resnet50", "resnet50"), scales_with_width=False, sync_batch_norm=False),
}


def create_model(name, input_shape, num_classes, sync_batch_norm=False, width=1.0):
    """The keras.Model `MODELS[name]` builds for images of `input_shape` and `num_classes` classes."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {sorted(MODELS)} or add yours to models.MODELS")
    return MODELS[name].build(tuple(input_shape), num_classes, sync_batch_norm=sync_batch_norm, width=width)
