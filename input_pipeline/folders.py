"""Image folders: root/train/<class>/*.jpg|png|... and root/test/<class>/..., classes in sorted order.

Held in memory (every file read once and decoded in parallel here, so that a bad one is named), or read from disk
by index as training goes (`records.folder_split`: the files are listed and checked on the file system, then read
and decoded in the graph). Either way they are normalised with their own training images' statistics.
"""

import pathlib

import numpy as np
import tensorflow as tf
from absl import logging

from input_pipeline import crops, records
from input_pipeline.errors import DatasetError
from input_pipeline.statistics import sampled_statistics

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif")


def check(root, image_size, holdout):
    """(the number of images to read, their uint8 bytes at `image_size`), or a `DatasetError` if the folder
    cannot be read as asked; seconds, before anything is read."""
    read = ("train",) if holdout else ("train", "test")
    missing = [split for split in read if not root or not (pathlib.Path(root) / split).is_dir()]
    if missing:
        raise DatasetError(
            f"image_folder needs --config.data_dir pointing at a folder with train/<class>/ and test/<class>/ "
            f"image sub-folders; {root!r} has no {' or '.join(f'{split}/' for split in missing)}"
        )
    if image_size is None:
        raise DatasetError("image_folder needs --config.image_size=height,width: its images are resized to it")
    count = sum(len(files) for split in read for files in image_files(pathlib.Path(root) / split)[1])
    return count, count * int(np.prod(image_size)) * 3


def image_files(folder, class_names=None):
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


def in_memory(root, image_size, skip_bad_images, with_eval=True):
    """root/train/<class>/*.jpg|png|... and root/test/<class>/..., classes in sorted order, resized to image_size.

    Every file is read once and decoded here, in parallel (`_decoded`), so that an undecodable or empty one is
    named: an error by default, or skipped and counted with `skip_bad_images`. A class folder without images is
    an error. Returns the richer form of a dataset function (sources.py's `in_memory`), without statistics: the
    training images' own are computed from it.
    """

    def read(split, class_names=None):
        folder = pathlib.Path(root) / split
        class_names, files = image_files(folder, class_names)
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
    return dict(
        train=(train_images, train_labels),
        eval=read("test", class_names)[:2] if with_eval else None,
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


def _decoding_error(path):
    """TensorFlow's reason for not decoding the file at `path`, its first line."""
    try:
        crops.decode(tf.io.read_file(str(path)))
    except tf.errors.OpError as error:
        return error.message.splitlines()[0]
    return "it decoded on a second attempt"


def on_disk(root, image_size, skip_bad_images, with_eval=True):
    """The image folder of `in_memory`, read from disk by index and cropped to image_size as training goes.

    Files are not decoded here (that is the point on tens of GB): empty files, folders named like images and
    dangling or looping symlinks are found from the file system and named (or skipped with `skip_bad_images`); a
    non-empty file that cannot be decoded stops the run when it is read, and the trainer names it. With
    `skip_bad_images` every file is decoded once here instead, and those that fail are left out.
    """

    def split(name, class_names=None):
        folder = pathlib.Path(root) / name
        class_names, files = image_files(folder, class_names)
        paths, labels, skipped = [], [], []
        for label, class_files in enumerate(files):
            for path in class_files:
                reason = _unreadable(path)
                if reason:
                    _bad_image(path, reason, skip_bad_images, skipped)
                    continue
                paths.append(str(path))
                labels.append(label)
        files = records.folder_split(np.array(paths), np.array(labels, np.int32), folder)
        if skip_bad_images:
            files, undecodable = records.without_undecodable(files)
            skipped += undecodable
        _warn_skipped(skipped, folder)
        return files, class_names

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
