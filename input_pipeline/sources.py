"""Where examples come from: tfds, a folder of class sub-folders, the offline quick-start set, or synthetic data.

Every source is loaded once into memory as uint8 images and int32 labels (a `Data`), with the per-channel
statistics used to normalise it kept beside it. In memory, the training pipeline can cut any epoch at any step
without re-reading (see pipeline.py); datasets of CIFAR's and the quick-start set's size take a few hundred MB.
"""

import dataclasses
import difflib
import pathlib

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds
from absl import logging

from input_pipeline import quickstart

# Per-channel mean and standard deviation on the 0-255 scale, computed over each training split.
CIFAR10_STATS = ((125.307, 122.961, 113.8575), (62.9932, 62.0887, 66.7048))
CIFAR100_STATS = ((129.304, 124.070, 112.434), (68.170, 65.392, 70.418))
IMAGENET_STATS = ((123.675, 116.28, 103.53), (58.395, 57.12, 57.375))
TFDS_STATS = {"cifar10": CIFAR10_STATS, "cifar100": CIFAR100_STATS}

QUICKSTART_SIZES = (10_000, 2_000)
MAX_IN_MEMORY_BYTES = 8 * 2**30


class DatasetError(ValueError):
    """A dataset that cannot be loaded as configured: the message names it and the flag that fixes it."""


@dataclasses.dataclass(frozen=True)
class Data:
    """A dataset in memory: uint8 images [N, H, W, C], int32 labels [N], for training and for evaluation."""

    name: str
    train_images: np.ndarray
    train_labels: np.ndarray
    eval_images: np.ndarray
    eval_labels: np.ndarray
    num_classes: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    synthetic: bool = False

    @property
    def image_shape(self):
        return self.train_images.shape[1:]

    @property
    def num_train(self):
        return len(self.train_labels)

    @property
    def num_eval(self):
        return len(self.eval_labels)


def load(name, data_dir=None, download=False, image_size=None, seed=0, synthetic_examples=4096, skip_bad_images=False):
    """Loads `name`: "quickstart", "quickstart_hard", "synthetic", "image_folder" (needs data_dir), or a tfds name.

    Args:
        data_dir: the tfds data directory, or the image folder's root (holding train/ and test/).
        download: let tfds download and prepare a dataset missing from `data_dir`. Off by default: a missing
            dataset is an error that says how to prepare it, never a wait on the network.
        image_size: (height, width) to resize to; needed for image folders and for tfds datasets whose images
            vary in size; `None` keeps the native size.
        seed: the quick-start and synthetic sets' generator seed.
        skip_bad_images: an image folder's undecodable files are skipped and counted, not an error.
    """
    check_source(name, data_dir, download, image_size)
    if name in ("quickstart", "quickstart_hard"):
        return _quickstart(name, seed)
    if name == "synthetic":
        return _synthetic(image_size or (32, 32), synthetic_examples, seed)
    if name == "image_folder":
        return _image_folder(data_dir, image_size, skip_bad_images)
    return _tfds(name, data_dir, download, image_size)


def check_source(name, data_dir=None, download=False, image_size=None):
    """Raises `DatasetError` if `load` would fail to find the dataset: seconds, before anything is read."""
    if name in ("quickstart", "quickstart_hard", "synthetic"):
        return
    if name == "image_folder":
        if not data_dir or not (pathlib.Path(data_dir) / "train").is_dir():
            raise DatasetError(
                f"image_folder needs --config.data_dir pointing at a folder with train/<class>/ and test/<class>/ "
                f"image sub-folders; got {data_dir!r}"
            )
        if image_size is None:
            raise DatasetError("image_folder needs --config.image_size=height,width: its images are resized to it")
        return
    _prepared_builder(name, data_dir, download)


def _quickstart(name, seed):
    difficulty = quickstart.HARD if name == "quickstart_hard" else quickstart.EASY
    train_images, train_labels = quickstart.generate(QUICKSTART_SIZES[0], seed, **difficulty)
    eval_images, eval_labels = quickstart.generate(QUICKSTART_SIZES[1], seed + 1, **difficulty)
    pixels = train_images.reshape(-1, 3).astype(np.float64)
    return Data(
        name, train_images, train_labels, eval_images, eval_labels, len(quickstart.CLASS_NAMES),
        tuple(pixels.mean(0)), tuple(pixels.std(0)),
    )  # fmt: skip


def _synthetic(image_size, num_examples, seed):
    """Uniform random pixels and labels, for throughput trials only: every log and report says 'synthetic'."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(num_examples, *image_size, 3), dtype=np.uint8)
    labels = rng.integers(0, 10, size=num_examples, dtype=np.int32)
    return Data("synthetic", images, labels, images[:512], labels[:512], 10, (127.5,) * 3, (73.6,) * 3, True)


IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif")


def _image_folder(root, image_size, skip_bad_images):
    """root/train/<class>/*.jpg|png|... and root/test/<class>/..., classes in sorted order, resized to image_size.

    Every file is decoded here, so that an undecodable or empty one is named: an error by default, or skipped
    and counted with `skip_bad_images`. A class folder without images is an error.
    """

    def read(split, class_names=None):
        folder = pathlib.Path(root) / split
        class_names = class_names or sorted(d.name for d in folder.iterdir() if d.is_dir())
        images, labels, skipped = [], [], []
        for label, name in enumerate(class_names):
            files = sorted(p for p in (folder / name).glob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
            if not files:
                raise DatasetError(
                    f"image_folder: class folder {folder / name} has no images ({', '.join(IMAGE_SUFFIXES)}): "
                    "add some or remove the folder"
                )
            for path in files:
                try:
                    image = tf.io.decode_image(tf.io.read_file(str(path)), channels=3, expand_animations=False)
                except tf.errors.InvalidArgumentError as error:
                    if not skip_bad_images:
                        raise DatasetError(
                            f"image_folder: cannot decode {path} ({error.message.splitlines()[0]}): fix or remove "
                            "it, or skip such files with --config.skip_bad_images=True"
                        ) from None
                    skipped.append(str(path))
                    continue
                images.append(_resized(image, image_size, label)[0].numpy())
                labels.append(label)
        if skipped:
            logging.warning("image_folder: skipped %d undecodable or empty files of %s, e.g. %s", len(skipped),
                            folder, skipped[:3])  # fmt: skip
        return np.stack(images), np.array(labels, np.int32), class_names

    train_images, train_labels, class_names = read("train")
    eval_images, eval_labels, _ = read("test", class_names)
    return Data(
        pathlib.Path(root).name, train_images, train_labels, eval_images, eval_labels, len(class_names),
        *IMAGENET_STATS,
    )  # fmt: skip


def _prepared_builder(name, data_dir, download):
    """The tfds builder of `name`, prepared in `data_dir` (downloaded there first only if `download`)."""
    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except tfds.core.registered.DatasetNotFoundError:
        close = difflib.get_close_matches(name, tfds.list_builders(), n=3)
        hint = f" (did you mean {' or '.join(close)}?)" if close else ""
        raise DatasetError(
            f"unknown dataset --config.dataset={name!r}{hint}: use quickstart, quickstart_hard, synthetic, "
            "image_folder or a tfds dataset name"
        ) from None
    if not builder.is_prepared() and not download:
        raise DatasetError(
            f"tfds dataset {name!r} is not prepared in {str(builder.data_dir_root)!r}: point "
            f"--config.data_dir at a folder that holds it, or prepare it on a machine with internet with "
            f"python -c \"import tensorflow_datasets as tfds; tfds.builder('{name}', "
            f"data_dir='/data/tfds').download_and_prepare()\", copy /data/tfds here and pass "
            f"--config.data_dir=/data/tfds (or add --config.download=True if this machine has internet)"
        )
    return builder


def _tfds(name, data_dir, download, image_size):
    builder = _prepared_builder(name, data_dir, download)
    if not builder.is_prepared():
        builder.download_and_prepare()
    features = builder.info.features
    if "image" not in features or "label" not in features:
        raise DatasetError(f"tfds dataset {name!r} has no 'image'/'label' features: {list(features)}")
    eval_split = "test" if "test" in builder.info.splits else "validation"
    shape = tuple(image_size) + features["image"].shape[-1:] if image_size else features["image"].shape
    if None in shape:
        raise DatasetError(
            f"tfds dataset {name!r} has images of varying size {shape}: set --config.image_size=height,width"
        )
    total = sum(builder.info.splits[s].num_examples for s in ("train", eval_split)) * int(np.prod(shape))
    if total > MAX_IN_MEMORY_BYTES:
        raise DatasetError(
            f"tfds dataset {name!r} needs {total / 2**30:.1f} GiB as uint8 in memory, over this template's "
            f"{MAX_IN_MEMORY_BYTES / 2**30:.0f} GiB in-memory limit; set a smaller --config.image_size"
        )

    def read(split):
        dataset = builder.as_dataset(split=split, shuffle_files=False)
        return _to_numpy(dataset.map(lambda example: _resized(example["image"], image_size, example["label"])))

    mean, std = TFDS_STATS.get(name, IMAGENET_STATS)
    return Data(name, *read("train"), *read(eval_split), features["label"].num_classes, mean, std)


def _resized(image, image_size, label):
    if image_size is not None:
        resized = tf.image.resize(image, image_size, antialias=True)
        image = tf.cast(tf.clip_by_value(tf.round(resized), 0, 255), tf.uint8)
    return image, label


def _to_numpy(dataset):
    """All of an (image, label) dataset as (uint8 [N, H, W, C], int32 [N]) arrays."""
    images, labels = [], []
    for image_batch, label_batch in dataset.batch(4096).as_numpy_iterator():
        images.append(image_batch.astype(np.uint8))
        labels.append(label_batch.astype(np.int32))
    return np.concatenate(images), np.concatenate(labels)
