"""CNNs by name, each with what a run must know of it before building it.

A `ModelSpec` carries the builder, the model's data-dependent initialisation (airbench94's whitening stem is set
from training images) and its constraints, so the trainer names no model and a config is checked against them
before anything is loaded. Importing this package imports no Keras: the built-in builders are imported when a
model is built, so `train.py --help` and config errors answer at once.

Your own model needs no entry here: `--config.model=my_nets:small_cnn` names a function
`small_cnn(input_shape, num_classes, sync_batch_norm=False, width=1.0)` (the last two optional: a function
without `width` has a fixed width) returning a `keras.Model` with float32 logits, or a `ModelSpec` (README,
"Add your own model").
"""

import dataclasses
import importlib
import inspect
from collections.abc import Callable

WHITENING_IMAGES = 5000  # airbench94's whitening stem is set from 5000 training images (a fixed sample)


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """A model as the trainer sees it.

    Args:
        build: `(input_shape, num_classes, sync_batch_norm=False, width=1.0) -> keras.Model` with float32 logits
            (`sync_batch_norm` and `width` are passed only if the spec says the model takes them).
        init_from_images: `(model, images)` run once, before training, on `WHITENING_IMAGES` (a fixed sample)
            normalised training images (float32 [N, H, W, C]); None for models initialised without data.
            A model with one needs its training set in memory.
        scales_with_width: whether `width` scales its channels (else only width=1.0 is accepted).
        sync_batch_norm: whether it can all-reduce its BatchNorm statistics across replicas.
        whitening_bias: the name of the layer holding its whitening stem's bias (`config.whiten_bias_epochs`
            freezes it), or None.
        any_input_size: whether one built model takes images of any size (a global pooling head): what
            progressive resizing (`config.resize_schedule`) needs.
    """

    build: Callable
    init_from_images: Callable | None = None
    scales_with_width: bool = True
    sync_batch_norm: bool = True
    whitening_bias: str | None = None
    any_input_size: bool = False

    @property
    def needs_images_in_memory(self):
        return self.init_from_images is not None

    @classmethod
    def of(cls, entry):
        """`entry` if it is a spec; a plain builder function's spec otherwise: it scales with `width` and can
        synchronise its BatchNorm if it takes those arguments."""
        if isinstance(entry, ModelSpec):
            return entry
        if not callable(entry):
            raise TypeError(f"a model is a ModelSpec or a function returning a keras.Model, got {entry!r}")
        taken = inspect.signature(entry).parameters
        return cls(entry, scales_with_width="width" in taken, sync_batch_norm="sync_batch_norm" in taken)

    def create(self, input_shape, num_classes, sync_batch_norm=False, width=1.0):
        """The model for images of `input_shape` and `num_classes` classes."""
        options = {"sync_batch_norm": sync_batch_norm} if self.sync_batch_norm else {}
        options |= {"width": width} if self.scales_with_width else {}
        return self.build(tuple(input_shape), num_classes, **options)


def _imported(module, name):
    """A function that imports `module` when first called and calls its `name` (keeps this package light)."""

    def call(*args, **kwargs):
        return getattr(importlib.import_module(module), name)(*args, **kwargs)

    call.__name__ = call.__qualname__ = name
    return call


MODELS = {
    "resnet9": ModelSpec(_imported("models.resnet9", "resnet9"), any_input_size=True),
    "airbench": ModelSpec(_imported("models.airbench", "airbench"), any_input_size=True),
    "airbench94": ModelSpec(
        _imported("models.airbench", "airbench94"),
        init_from_images=_imported("models.airbench", "whiten_from_data"),
        whitening_bias="whiten_bias",
        any_input_size=True,
    ),
    "airbench_speedrun": ModelSpec(
        _imported("models.airbench", "airbench_speedrun"),
        init_from_images=_imported("models.airbench", "whiten_from_data"),
        whitening_bias="whiten_bias",
        any_input_size=True,
    ),
    "airbench94_without_dirac": ModelSpec(
        _imported("models.airbench", "airbench94_without_dirac"),
        init_from_images=_imported("models.airbench", "whiten_from_data"),
        whitening_bias="whiten_bias",
        any_input_size=True,
    ),
    "resnet50": ModelSpec(_imported("models.resnet50", "resnet50"), scales_with_width=False, sync_batch_norm=False),
}


def create_model(name, input_shape, num_classes, sync_batch_norm=False, width=1.0):
    """The keras.Model `MODELS[name]` builds for images of `input_shape` and `num_classes` classes."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {sorted(MODELS)}, or name yours as module:attribute")
    return MODELS[name].create(input_shape, num_classes, sync_batch_norm=sync_batch_norm, width=width)
