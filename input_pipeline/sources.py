"""Where examples come from: tfds, a folder of class sub-folders, the offline quick-start set, or synthetic data,
and whether they are held in memory or read from disk.

A dataset that fits (`input_path="auto"`: its uint8 images at the configured size take at most
`max_in_memory_gib`) is loaded once into memory as uint8 images and int32 labels (a `Data`); CIFAR and the
quick-start set take a few hundred MB. A larger one is read from disk by example index as training goes
(a `records.DiskData`: tfds datasets stored as ArrayRecord, and image folders), decoded and cropped to the
configured size. Either way the per-channel statistics used to normalise it are kept beside it, and the pipeline
cuts any epoch at any step the same way (pipeline.py).
"""

import dataclasses
import difflib
import pathlib

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds
from absl import logging

from configs.validation import CHOICES
from input_pipeline import crops, quickstart, records
from input_pipeline import holdout as holdout_split
from input_pipeline.errors import DatasetError

# Per-channel mean and standard deviation on the 0-255 scale, published for each training split. Any other
# dataset is normalised with its own training images' (`pixel_statistics`; from disk, a sample's).
CIFAR10_STATS = ((125.307, 122.961, 113.8575), (62.9932, 62.0887, 66.7048))
CIFAR100_STATS = ((129.304, 124.070, 112.434), (68.170, 65.392, 70.418))
IMAGENET_STATS = ((123.675, 116.28, 103.53), (58.395, 57.12, 57.375))
TFDS_STATS = {"cifar10": CIFAR10_STATS, "cifar100": CIFAR100_STATS, "imagenet2012": IMAGENET_STATS}
STATISTICS_SAMPLE = 5000  # training images a dataset read from disk computes its statistics from (seeded)

QUICKSTART_SIZES = (10_000, 2_000)
INPUT_PATHS = CHOICES["input_path"]
GENERATED = ("quickstart", "quickstart_hard", "synthetic")


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


def load(
    name,
    data_dir=None,
    download=False,
    image_size=None,
    seed=0,
    synthetic_examples=4096,
    skip_bad_images=False,
    input_path="auto",
    max_in_memory_gib=8.0,
    eval_split="",
    placement=None,
    holdout=0.0,
):
    """Loads `name`: "quickstart", "quickstart_hard", "synthetic", "image_folder" (needs data_dir), or a tfds name,
    into memory (a `Data`) or as a dataset read from disk (a `records.DiskData`), as `check_source` places it.

    Args:
        data_dir: the tfds data directory, or the image folder's root (holding train/ and test/).
        download: let tfds download and prepare a dataset missing from `data_dir`. Off by default: a missing
            dataset is an error that says how to prepare it, never a wait on the network.
        image_size: (height, width) to resize to; needed for image folders, for tfds datasets whose images
            vary in size, and for datasets read from disk (the size their crops are resized to); `None` keeps
            the native size.
        seed: the quick-start and synthetic sets' generator seed.
        skip_bad_images: an image folder's undecodable files are skipped and counted, not an error.
        input_path, max_in_memory_gib, eval_split: see `check_source`.
        placement: `check_source`'s answer for these arguments, when the caller already has it (it lists an
            image folder's files, which is slow on a large one); asked here otherwise.
        holdout: > 0: evaluate on this fraction (or count) of the training set, held out of training
            (holdout.py); the evaluation split is then not read at all.
    """
    placement = placement or check_source(
        name, data_dir, download, image_size, input_path, max_in_memory_gib, eval_split, holdout
    )
    logging.info("input: %s, %s", "in memory" if placement.in_memory else "read from disk by index", placement.reason)
    data = _load(
        name,
        data_dir,
        download,
        image_size,
        seed,
        synthetic_examples,
        skip_bad_images,
        eval_split,
        placement,
        with_eval=not holdout,
    )
    return holdout_split.carve(data, holdout) if holdout else data


def _load(
    name, data_dir, download, image_size, seed, synthetic_examples, skip_bad_images, eval_split, placement, with_eval
):
    """`load` without the holdout; without `with_eval`, the evaluation split is not read (it is None)."""
    if name in ("quickstart", "quickstart_hard"):
        return _quickstart(name, seed, with_eval)
    if name == "synthetic":
        return _synthetic(image_size or (32, 32), synthetic_examples, seed)
    if name == "image_folder":
        if not placement.in_memory:
            return _image_folder_on_disk(data_dir, image_size, skip_bad_images, with_eval)
        return _image_folder(data_dir, image_size, skip_bad_images, with_eval)
    if not placement.in_memory:
        return _tfds_on_disk(name, data_dir, image_size, eval_split, with_eval)
    return _tfds(name, data_dir, download, image_size, eval_split, with_eval)


def check_source(
    name,
    data_dir=None,
    download=False,
    image_size=None,
    input_path="auto",
    max_in_memory_gib=8.0,
    eval_split="",
    holdout=0.0,
):
    """The `Placement` of the dataset, or a `DatasetError` if `load` would fail to find or place it: seconds,
    before anything is read.

    input_path: "memory", "disk", or "auto": in memory if its uint8 images at `image_size` take at most
    `max_in_memory_gib` GiB (training and evaluation sets together), else read from disk.
    eval_split: the tfds split evaluated on; "" = "test" if the dataset has one, else "validation".
    holdout: > 0: the evaluation split is not read (and need not exist): the training set is split instead.
    """
    if input_path not in INPUT_PATHS:
        raise DatasetError(f"--config.input_path={input_path!r} is not one of {INPUT_PATHS}")
    if name in GENERATED:
        if input_path == "disk":
            raise DatasetError(
                f"--config.dataset={name} is generated in memory: there is no file to read; use "
                "--config.input_path=auto or memory"
            )
        return Placement(True, f"{name} is generated in memory")
    if name == "image_folder":
        read = ("train",) if holdout else ("train", "test")
        missing = [split for split in read if not data_dir or not (pathlib.Path(data_dir) / split).is_dir()]
        if missing:
            raise DatasetError(
                f"image_folder needs --config.data_dir pointing at a folder with train/<class>/ and test/<class>/ "
                f"image sub-folders; {data_dir!r} has no {' or '.join(f'{split}/' for split in missing)}"
            )
        if image_size is None:
            raise DatasetError("image_folder needs --config.image_size=height,width: its images are resized to it")
        root = pathlib.Path(data_dir)
        num_examples = sum(len(files) for split in read for files in _image_files(root / split)[1])
        return _placement(
            f"{num_examples} images in {data_dir}",
            num_examples * int(np.prod(image_size)) * 3,
            input_path,
            max_in_memory_gib,
        )
    builder = _prepared_builder(name, data_dir, download, for_disk=input_path == "disk")
    features = builder.info.features
    if "image" not in features or "label" not in features:
        raise DatasetError(f"tfds dataset {name!r} has no 'image'/'label' features: {list(features)}")
    shape = tuple(image_size) + features["image"].shape[-1:] if image_size else features["image"].shape
    if None in shape:
        raise DatasetError(
            f"tfds dataset {name!r} has images of varying size {shape}: set --config.image_size=height,width"
        )
    splits = builder.info.splits
    read = ("train",) if holdout else ("train", _eval_split(builder, eval_split))
    num_examples = sum(splits[s].num_examples for s in read)
    placement = _placement(
        f"{num_examples} {name} images", num_examples * int(np.prod(shape)), input_path, max_in_memory_gib
    )
    if not placement.in_memory:
        _check_readable_by_index(builder, name, image_size)
    return placement


def _placement(what, nbytes, input_path, max_in_memory_gib):
    amount = f"{nbytes / 2**30:.1f} GiB" if nbytes >= 2**30 else f"{nbytes / 2**20:.1f} MiB"
    size = f"{what} take {amount} as uint8"
    if input_path != "auto":
        return Placement(input_path == "memory", f"as --config.input_path={input_path} asks ({size})")
    if nbytes <= max_in_memory_gib * 2**30:
        return Placement(True, f"{size}, within --config.max_in_memory_gib={max_in_memory_gib:g}")
    return Placement(False, f"{size}, over --config.max_in_memory_gib={max_in_memory_gib:g}")


def _check_readable_by_index(builder, name, image_size):
    if image_size is None:
        raise DatasetError(
            f"{name} is read from disk and cropped to --config.image_size=height,width: set it "
            "(e.g. --config.image_size=224,224)"
        )
    if not builder.is_prepared():
        raise DatasetError(
            f"{name} is to be read from disk but is not prepared in {builder.data_dir}: prepare it "
            "first (BUILD.md, 'In memory or from disk')"
        )
    if not _stored_as_array_record(builder):
        file_format = builder.info.file_format
        raise DatasetError(
            f"{name} in {builder.data_dir} is stored as {file_format.value if file_format else 'tfrecord'}, which "
            'cannot be read by index: copy it as ArrayRecord once, python -c "from input_pipeline import convert; '
            f"convert.to_array_record('{name}', '{builder.data_dir_root}', '/data/tfds_ar')\", and pass "
            "--config.data_dir=/data/tfds_ar; or hold it in memory with --config.input_path=memory if it fits"
        )


def _quickstart(name, seed, with_eval=True):
    difficulty = quickstart.HARD if name == "quickstart_hard" else quickstart.EASY
    train_images, train_labels = quickstart.generate(QUICKSTART_SIZES[0], seed, **difficulty)
    eval_images, eval_labels = (
        quickstart.generate(QUICKSTART_SIZES[1], seed + 1, **difficulty) if with_eval else (None, None)
    )
    return Data(
        name,
        train_images,
        train_labels,
        eval_images,
        eval_labels,
        len(quickstart.CLASS_NAMES),
        *pixel_statistics(train_images),
        class_names=tuple(quickstart.CLASS_NAMES),
    )


def _synthetic(image_size, num_examples, seed):
    """Uniform random pixels and labels, for throughput trials only: every log and report says 'synthetic'."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(num_examples, *image_size, 3), dtype=np.uint8)
    labels = rng.integers(0, 10, size=num_examples, dtype=np.int32)
    return Data(
        "synthetic",
        images,
        labels,
        images[:512],
        labels[:512],
        10,
        (127.5,) * 3,
        (73.6,) * 3,
        True,
        "train[:512]",
        class_names=tuple(f"class{i}" for i in range(10)),  # random labels: numbered, not named
    )


IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif")


def _image_files(folder, class_names=None):
    """(class names, sorted image files of each class) of folder/<class>/; classes in sorted order unless given.
    A class folder without images is an error."""
    class_names = class_names or sorted(d.name for d in folder.iterdir() if d.is_dir())
    files = []
    for name in class_names:
        files.append(sorted(p for p in (folder / name).glob("*") if p.suffix.lower() in IMAGE_SUFFIXES))
        if not files[-1]:
            raise DatasetError(
                f"image_folder: class folder {folder / name} has no images ({', '.join(IMAGE_SUFFIXES)}): "
                "add some or remove the folder"
            )
    return class_names, files


def _unreadable(path):
    """Why the file at `path` cannot be an image without reading it (a dangling or looping symlink, a folder
    named like an image, an empty file), or None."""
    try:
        status = path.stat()
    except OSError as error:  # follows symlinks: a dangling one, or a loop
        return f"unreadable: {error.strerror}"
    if path.is_dir():
        return "a folder, not an image file"
    return "empty file" if status.st_size == 0 else None


def _bad_image(path, reason, skip_bad_images, skipped):
    """Records an unusable image file when `skip_bad_images`, else raises the error that names it."""
    if not skip_bad_images:
        raise DatasetError(
            f"image_folder: cannot decode {path} ({reason}): fix or remove it, or skip such files "
            "with --config.skip_bad_images=True"
        )
    skipped.append(str(path))


def _warn_skipped(skipped, folder):
    if skipped:
        logging.warning(
            "image_folder: skipped %d undecodable or empty files of %s, e.g. %s", len(skipped), folder, skipped[:3]
        )


def _image_folder(root, image_size, skip_bad_images, with_eval=True):
    """root/train/<class>/*.jpg|png|... and root/test/<class>/..., classes in sorted order, resized to image_size.

    Every file is read once and decoded here, in parallel (`_decoded`), so that an undecodable or empty one is
    named: an error by default, or skipped and counted with `skip_bad_images`. A class folder without images is
    an error. The normalisation statistics are the training images' own (`pixel_statistics`).
    """

    def read(split, class_names=None):
        folder = pathlib.Path(root) / split
        class_names, files = _image_files(folder, class_names)
        paths = [path for class_files in files for path in class_files]
        labels = np.repeat(np.arange(len(files), dtype=np.int32), [len(class_files) for class_files in files])
        reasons = {index: _unreadable(path) for index, path in enumerate(paths)}
        readable = [index for index, reason in reasons.items() if not reason]
        images, undecodable = _decoded([paths[index] for index in readable], image_size)
        reasons |= {readable[index]: _decoding_error(paths[readable[index]]) for index in undecodable}
        bad = sorted(index for index, reason in reasons.items() if reason)
        skipped = []
        for index in bad:  # the first in file order is the error, unless they are skipped
            _bad_image(paths[index], reasons[index], skip_bad_images, skipped)
        _warn_skipped(skipped, folder)
        return images, np.delete(labels, bad), class_names

    train_images, train_labels, class_names = read("train")
    eval_images, eval_labels, _ = read("test", class_names) if with_eval else (None, None, None)
    return Data(
        pathlib.Path(root).name,
        train_images,
        train_labels,
        eval_images,
        eval_labels,
        len(class_names),
        *pixel_statistics(train_images),
        class_names=tuple(class_names),
    )


def _decoded(paths, image_size):
    """(uint8 [N, *image_size, 3] of the files at `paths` that decode, in order; the indices of those that do not).

    One tf.data pipeline reads and decodes the files in parallel (a Python loop over 60,000 small JPEGs took 96 s
    of a CIFAR-10 run; this, a few seconds). A file that fails to decode drops out of it (`ignore_errors`); its
    index is the one missing from the output, so that the caller can name it.
    """

    def decode(index, path):
        image = crops.decode(tf.io.read_file(path))
        same_size = tf.reduce_all(tf.shape(image)[:2] == image_size)
        image = tf.cond(same_size, lambda: image, lambda: crops.resized(image, image_size))
        return index, tf.ensure_shape(image, (*image_size, 3))

    names = [str(path) for path in paths]
    dataset = tf.data.Dataset.from_tensor_slices((tf.range(len(names), dtype=tf.int64), tf.constant(names, tf.string)))
    dataset = dataset.map(decode, num_parallel_calls=tf.data.AUTOTUNE).ignore_errors().batch(4096)
    indices, images = [np.empty([0], np.int64)], [np.empty([0, *image_size, 3], np.uint8)]
    for index_batch, image_batch in dataset.as_numpy_iterator():
        indices.append(index_batch)
        images.append(image_batch)
    decoded = np.concatenate(indices)
    return np.concatenate(images), np.setdiff1d(np.arange(len(names)), decoded)


def sampled_statistics(split, image_size, count=STATISTICS_SAMPLE, seed=0):
    """`pixel_statistics` of a seeded sample of `count` images of a `records.Split` read from disk, each decoded
    and centre-cropped to `image_size` as evaluation crops it: a dataset too large to hold is not read whole for
    its mean (5,000 images put each channel's mean within about half a level of the whole set's)."""
    chosen = np.sort(np.random.default_rng(seed).choice(split.count, min(count, split.count), replace=False))
    images = tf.data.Dataset.from_tensor_slices(chosen).batch(256).map(lambda indices: split.read(indices)[0])
    images = images.unbatch().map(lambda encoded: crops.centre_crop(encoded, image_size), tf.data.AUTOTUNE)
    return pixel_statistics(np.concatenate(list(images.batch(1024).as_numpy_iterator())))


def _decoding_error(path):
    """TensorFlow's reason for not decoding the file at `path`, its first line."""
    try:
        crops.decode(tf.io.read_file(str(path)))
    except tf.errors.OpError as error:
        return error.message.splitlines()[0]
    return "it decoded on a second attempt"


def pixel_statistics(images, chunk=4096):
    """(mean, std) per channel, on the 0-255 scale, of uint8 `images` [N, H, W, C]: the normalisation a dataset
    without published statistics gets from its own training images (float64 sums over chunks: exact, and
    bounded memory)."""
    channels = images.shape[-1]
    total, squares, count = np.zeros(channels), np.zeros(channels), 0
    for start in range(0, len(images), chunk):
        pixels = images[start : start + chunk].reshape(-1, channels).astype(np.float64)
        total, squares, count = total + pixels.sum(0), squares + np.square(pixels).sum(0), count + len(pixels)
    mean = total / count
    std = np.sqrt(np.maximum(squares / count - np.square(mean), 0.0))
    return tuple(float(m) for m in mean), tuple(float(s) for s in std)


def _image_folder_on_disk(root, image_size, skip_bad_images, with_eval=True):
    """The image folder of `_image_folder`, read from disk by index and cropped to image_size as training goes.

    Files are not decoded here (that is the point on tens of GB): empty files, folders named like images and
    dangling or looping symlinks are found from the file system and named (or skipped with `skip_bad_images`); a
    non-empty file that cannot be decoded stops the run when it is read, with TensorFlow's decoding error.
    """

    def split(name, class_names=None):
        folder = pathlib.Path(root) / name
        class_names, files = _image_files(folder, class_names)
        paths, labels, skipped = [], [], []
        for label, class_files in enumerate(files):
            for path in class_files:
                reason = _unreadable(path)
                if reason:
                    _bad_image(path, reason, skip_bad_images, skipped)
                    continue
                paths.append(str(path))
                labels.append(label)
        _warn_skipped(skipped, folder)
        return records.folder_split(np.array(paths), np.array(labels, np.int32), folder), class_names

    train, class_names = split("train")
    evaluation = split("test", class_names)[0] if with_eval else None
    return records.DiskData(
        pathlib.Path(root).name,
        train,
        evaluation,
        len(class_names),
        tuple(image_size),
        *sampled_statistics(train, image_size),
        class_names=tuple(class_names),
    )


def _prepared_builder(name, data_dir, download, for_disk=False):
    """The tfds builder of `name`, prepared in `data_dir` (downloaded there first only if `download`); if it is
    not, the error's preparation command writes ArrayRecord when the dataset is to be read from disk."""
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
        file_format = ", file_format='array_record'" if for_disk else ""
        raise DatasetError(
            f"tfds dataset {name!r} is not prepared in {str(builder.data_dir_root)!r}: point "
            f"--config.data_dir at a folder that holds it, or prepare it on a machine with internet with "
            f"python -c \"import tensorflow_datasets as tfds; tfds.builder('{name}', data_dir='/data/tfds'"
            f'{file_format}).download_and_prepare()", copy /data/tfds here and pass '
            f"--config.data_dir=/data/tfds (or add --config.download=True if this machine has internet)"
        )
    return builder


def _tfds(name, data_dir, download, image_size, eval_split, with_eval=True):
    builder = _prepared_builder(name, data_dir, download)
    if not builder.is_prepared():
        builder.download_and_prepare()

    def read(split):
        if _stored_as_array_record(builder):  # tfds reads ArrayRecord by index only
            records_split = records.tfds_split(builder, split)
            examples = tf.data.Dataset.range(records_split.count).batch(256).map(records_split.read).unbatch()
            decoded = examples.map(lambda encoded, label: (crops.decode(encoded), label))
        else:
            decoded = builder.as_dataset(split=split, shuffle_files=False).map(lambda e: (e["image"], e["label"]))
        return _to_numpy(decoded.map(lambda image, label: _resized(image, image_size, label)))

    num_classes = builder.info.features["label"].num_classes
    split = _eval_split(builder, eval_split) if with_eval else None
    evaluation = read(split) if with_eval else (None, None)
    names = tuple(builder.info.features["label"].names)
    train = read("train")
    mean, std = TFDS_STATS.get(name) or pixel_statistics(train[0])
    return Data(name, *train, *evaluation, num_classes, mean, std, eval_split=split, class_names=names)


def _tfds_on_disk(name, data_dir, image_size, eval_split, with_eval=True):
    builder = _prepared_builder(name, data_dir, download=False)
    split = _eval_split(builder, eval_split) if with_eval else None
    train = records.tfds_split(builder, "train")
    evaluation = records.tfds_split(builder, split) if with_eval else None
    mean, std = TFDS_STATS.get(name) or sampled_statistics(train, image_size)
    num_classes = builder.info.features["label"].num_classes
    names = tuple(builder.info.features["label"].names)
    return records.DiskData(name, train, evaluation, num_classes, tuple(image_size), mean, std, split, names)


def _stored_as_array_record(builder):
    return builder.info.file_format is not None and builder.info.file_format.value == "array_record"


def _eval_split(builder, eval_split=""):
    splits = builder.info.splits
    if eval_split:
        if eval_split not in splits:
            raise DatasetError(
                f"--config.eval_split={eval_split!r} is not a split of {builder.info.name}: it has {sorted(splits)}"
            )
        return eval_split
    return "test" if "test" in splits else "validation"


def _resized(image, image_size, label):
    """(image resized to `image_size` as the crops resize, or as it is for None; label)."""
    return (image if image_size is None else crops.resized(image, image_size)), label


def _to_numpy(dataset):
    """All of an (image, label) dataset as (uint8 [N, H, W, C], int32 [N]) arrays."""
    images, labels = [], []
    for image_batch, label_batch in dataset.batch(4096).as_numpy_iterator():
        images.append(image_batch.astype(np.uint8))
        labels.append(label_batch.astype(np.int32))
    return np.concatenate(images), np.concatenate(labels)
