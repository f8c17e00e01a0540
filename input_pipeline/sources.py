"""Where examples come from, by `config.dataset`: a function returning arrays (the quick-start sets, synthetic
data, or the user's own `module:attribute`), an image folder, or a tfds dataset; held in memory or read from disk.

A dataset that fits (`input_path="auto"`: its uint8 images at the configured size take at most
`max_in_memory_gib`) is loaded once into memory as uint8 images and int32 labels (a `Data`); CIFAR and the
quick-start set take a few hundred MB. A larger image folder or tfds dataset is read from disk by example index
as training goes (a `records.DiskData`), decoded and cropped to the configured size. Either way the per-channel
statistics that normalise it are kept beside it (statistics.py), and the pipeline cuts any epoch at any step the
same way (pipeline.py).

A dataset function (registry.py's DATASETS, or the user's) is called with the arguments it names (`data_dir`,
`image_size`, any config field) and returns either `(train, eval)`, each a pair `(images, labels)` of uint8
[N, H, W, C] and integer [N] arrays or a finite `tf.data.Dataset` of such (image, label) examples, or the
richer form: a dict with `train` and `eval` as above and optionally `class_names`, `mean` and `std` (per channel,
0-255; default: the training images' own), `eval_split` (what the evaluation set is called; default "test").
It must return the same examples every call: runs resume, and a trial's seeds share them.
"""

import dataclasses

import numpy as np
import tensorflow as tf
from absl import logging

from configs import registry
from configs.validation import CHOICES
from input_pipeline import crops, folders, tfds_source
from input_pipeline import holdout as holdout_split
from input_pipeline import quickstart as generated
from input_pipeline.errors import DatasetError
from input_pipeline.statistics import pixel_statistics

INPUT_PATHS = CHOICES["input_path"]


@dataclasses.dataclass(frozen=True)
class Data:
    """A dataset in memory: uint8 images [N, H, W, C], int32 labels [N], for training and for evaluation."""

    name: str
    train_images: np.ndarray
    train_labels: np.ndarray
    eval_images: np.ndarray
    eval_labels: np.ndarray
    num_classes: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    synthetic: bool = False
    eval_split: str = "test"  # what the evaluation set is, for every report that names an accuracy
    class_names: tuple[str, ...] = ()  # logit i is class_names[i]: tfds' label names, an image folder's folders
    in_memory = True

    @property
    def image_shape(self):
        return self.train_images.shape[1:]

    @property
    def num_train(self):
        return len(self.train_labels)

    @property
    def num_eval(self):
        return len(self.eval_labels)


@dataclasses.dataclass(frozen=True)
class Placement:
    """Where a dataset's examples are held during training: in memory, or read from disk; and why (for the log)."""

    in_memory: bool
    reason: str


def load(config, placement=None):
    """The dataset `config.dataset` names, in memory (a `Data`) or read from disk (a `records.DiskData`), as
    `check_source` places it (`placement`: its answer, when the caller has it; it lists an image folder's files).
    With `config.holdout`, evaluation is on that part of the training set, and the evaluation split is not read."""
    placement = placement or check_source(config)
    logging.info("input: %s, %s", "in memory" if placement.in_memory else "read from disk by index", placement.reason)
    with_eval = not config.holdout
    name, image_size = config.dataset, config.image_size
    if name == "image_folder":
        if placement.in_memory:
            data = in_memory(
                "image_folder",
                folders.in_memory(config.data_dir, image_size, config.skip_bad_images, with_eval),
                config,
            )
        else:
            data = folders.on_disk(config.data_dir, image_size, config.skip_bad_images, with_eval)
    elif _is_function(name):
        made = registry.call_with(registry.resolve("dataset", name), "dataset", {}, config)
        data = in_memory(name, made, config)
    elif placement.in_memory:
        data = in_memory(
            name,
            tfds_source.in_memory(name, config.data_dir, config.download, image_size, config.eval_split, with_eval),
            config,
        )
    else:
        data = tfds_source.on_disk(
            name, config.data_dir, image_size, config.eval_split, config.skip_bad_images, with_eval
        )
    return holdout_split.carve(data, config.holdout) if config.holdout else data


def check_source(config):
    """The `Placement` of `config.dataset`, or a `DatasetError` if `load` would fail to find or place it: seconds,
    before anything is read (a dataset function is imported here, not called).

    `config.input_path`: "memory", "disk", or "auto": in memory if its uint8 images at `config.image_size` take
    at most `config.max_in_memory_gib` GiB (training and evaluation sets together), else read from disk.
    """
    name, input_path = config.dataset, config.input_path
    if input_path not in INPUT_PATHS:
        raise DatasetError(f"--config.input_path={input_path!r} is not one of {INPUT_PATHS}")
    if _is_function(name):
        if not callable(registry.resolve("dataset", name)):
            raise DatasetError(f"--config.dataset={name} is not a function that returns a dataset")
        if input_path == "disk":
            raise DatasetError(
                f"--config.dataset={name} is made in memory by a function: there is no file to read; use "
                "--config.input_path=auto or memory"
            )
        return Placement(True, f"{name} is made in memory")
    if name == "image_folder":
        count, nbytes = folders.check(config.data_dir, config.image_size, config.holdout)
        return _placement(f"{count} images in {config.data_dir}", nbytes, config)
    builder, what, nbytes = tfds_source.check(config)
    placement = _placement(what, nbytes, config)
    if not placement.in_memory:
        tfds_source.check_readable_by_index(builder, name, config.image_size)
    return placement


def _is_function(name):
    """Whether the dataset `name` is made by a function (not an image folder or a tfds dataset)."""
    return registry.is_path(name) or (name in registry.DATASETS and name != "image_folder")


def _placement(what, nbytes, config):
    amount = f"{nbytes / 2**30:.1f} GiB" if nbytes >= 2**30 else f"{nbytes / 2**20:.1f} MiB"
    size = f"{what} take {amount} as uint8"
    if config.input_path != "auto":
        return Placement(config.input_path == "memory", f"as --config.input_path={config.input_path} asks ({size})")
    limit = config.max_in_memory_gib
    if nbytes <= limit * 2**30:
        return Placement(True, f"{size}, within --config.max_in_memory_gib={limit:g}")
    return Placement(False, f"{size}, over --config.max_in_memory_gib={limit:g}")


def in_memory(name, made, config):
    """The `Data` of a dataset function's result `made` (the forms of this module's docstring), checked, resized
    to `config.image_size` if it is set and differs, and normalised with its own statistics unless it gives them.
    A malformed result is a `DatasetError` that says what was expected."""
    if isinstance(made, Data):
        return made
    if isinstance(made, tuple) and len(made) == 2:
        made = {"train": made[0], "eval": made[1]}
    if not isinstance(made, dict) or "train" not in made:
        raise DatasetError(
            f"--config.dataset={name} returned {type(made).__name__}: a dataset function returns (train, eval), "
            "each (images, labels), or a dict with 'train' and 'eval' (README, 'Add your own dataset')"
        )
    unknown = set(made) - {"train", "eval", "class_names", "mean", "std", "eval_split", "synthetic"}
    if unknown:
        raise DatasetError(f"--config.dataset={name} returned unknown keys {sorted(unknown)}")
    train_images, train_labels = _arrays(name, "train", made["train"], config.image_size)
    evaluation = made.get("eval")
    eval_images, eval_labels = (
        (None, None) if evaluation is None else _arrays(name, "eval", evaluation, config.image_size)
    )
    if eval_images is not None and eval_images.shape[1:] != train_images.shape[1:]:
        raise DatasetError(
            f"--config.dataset={name}: its eval images are {eval_images.shape[1:]} and its train images "
            f"{train_images.shape[1:]}: give both one size, or set --config.image_size"
        )
    labels = train_labels if eval_labels is None else np.concatenate([train_labels, eval_labels])
    class_names = tuple(str(c) for c in made.get("class_names") or range(int(labels.max()) + 1))
    if labels.min() < 0 or labels.max() >= len(class_names):
        raise DatasetError(
            f"--config.dataset={name}: labels run from {labels.min()} to {labels.max()}, but there are "
            f"{len(class_names)} class names: labels are 0..{len(class_names) - 1}"
        )
    mean, std = (tuple(made["mean"]), tuple(made["std"])) if "mean" in made else pixel_statistics(train_images)
    if len(mean) != train_images.shape[-1] or len(std) != len(mean):
        raise DatasetError(f"--config.dataset={name}: mean and std need one value per channel, got {mean}, {std}")
    return Data(
        name,
        train_images,
        train_labels,
        eval_images,
        eval_labels,
        len(class_names),
        tuple(float(m) for m in mean),
        tuple(float(s) for s in std),
        synthetic=bool(made.get("synthetic", False)),
        eval_split=made.get("eval_split") or "test",
        class_names=class_names,
    )


def _arrays(name, split, examples, image_size):
    """(uint8 images [N, H, W, C], int32 labels [N]) of a split given as arrays or as a finite tf.data.Dataset of
    (image, label) examples, resized to `image_size` if it is set and differs."""
    if isinstance(examples, tf.data.Dataset):
        batches = list(examples.batch(4096).as_numpy_iterator())
        if not batches:
            raise DatasetError(f"--config.dataset={name}: its {split} dataset is empty")
        examples = tuple(np.concatenate(parts) for parts in zip(*batches))
    try:
        images, labels = examples
    except (TypeError, ValueError):
        raise DatasetError(f"--config.dataset={name}: its {split} split is not (images, labels)") from None
    images, labels = np.asarray(images), np.asarray(labels)
    if images.dtype != np.uint8 or images.ndim != 4:
        raise DatasetError(
            f"--config.dataset={name}: its {split} images are {images.dtype} of shape {images.shape}: give uint8 "
            "[N, height, width, channels] (0-255; the pipeline normalises them)"
        )
    if not np.issubdtype(labels.dtype, np.integer) or labels.shape != images.shape[:1]:
        raise DatasetError(
            f"--config.dataset={name}: its {split} labels are {labels.dtype} of shape {labels.shape}: give one "
            f"integer class per image ({len(images)})"
        )
    if image_size is not None and tuple(images.shape[1:3]) != tuple(image_size):
        resized = tf.data.Dataset.from_tensor_slices(images).batch(1024).map(lambda b: crops.resized(b, image_size))
        images = np.concatenate(list(resized.as_numpy_iterator()))
    return images, labels.astype(np.int32)


QUICKSTART_SIZES = (10_000, 2_000)


def quickstart(holdout=0.0):
    """The quick-start set (input_pipeline/quickstart.py): 10,000 training and 2,000 evaluation images,
    generated from fixed seeds (the run's seed does not change the data); no evaluation set with a `holdout`."""
    return _quickstart(generated.EASY, holdout)


def quickstart_hard(holdout=0.0):
    """The hard quick-start set: more noise, less contrast (quickstart.HARD)."""
    return _quickstart(generated.HARD, holdout)


def _quickstart(difficulty, holdout):
    return {
        "train": generated.generate(QUICKSTART_SIZES[0], 0, **difficulty),
        "eval": None if holdout else generated.generate(QUICKSTART_SIZES[1], 1, **difficulty),
        "class_names": generated.CLASS_NAMES,
    }


def synthetic(image_size, batch_size):
    """Uniform random pixels and labels, 8 global batches of them, for throughput trials only: every log and
    report says 'synthetic'."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(8 * batch_size, *(image_size or (32, 32)), 3), dtype=np.uint8)
    labels = rng.integers(0, 10, size=8 * batch_size, dtype=np.int32)
    return {
        "train": (images, labels),
        "eval": (images[:512], labels[:512]),
        "class_names": tuple(f"class{i}" for i in range(10)),  # random labels: numbered, not named
        "mean": (127.5,) * 3,
        "std": (73.6,) * 3,
        "eval_split": "train[:512]",
        "synthetic": True,
    }
