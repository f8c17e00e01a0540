"""tfds datasets, from a `data_dir` (offline-safe: nothing is downloaded unless `config.download`), held in memory
or, stored as ArrayRecord, read from disk by index (`records.tfds_split`)."""

import difflib

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds
from absl import logging

from configs import registry
from input_pipeline import crops, records
from input_pipeline.errors import DatasetError
from input_pipeline.statistics import PUBLISHED, sampled_statistics


def check(config):
    """(what is read, its uint8 bytes at the configured size), or a `DatasetError` if the dataset is not
    prepared in `config.data_dir` or cannot be read as configured; seconds, before anything is read."""
    name, image_size = config.dataset, config.image_size
    builder = prepared_builder(name, config.data_dir, config.download, for_disk=config.input_path == "disk")
    features = builder.info.features
    if "image" not in features or "label" not in features:
        raise DatasetError(f"tfds dataset {name!r} has no 'image'/'label' features: {list(features)}")
    shape = tuple(image_size) + features["image"].shape[-1:] if image_size else features["image"].shape
    if None in shape:
        raise DatasetError(
            f"tfds dataset {name!r} has images of varying size {shape}: set --config.image_size=height,width"
        )
    splits = builder.info.splits
    read = ("train",) if config.holdout else ("train", eval_split(builder, config.eval_split))
    num_examples = sum(splits[s].num_examples for s in read)
    return builder, f"{num_examples} {name} images", num_examples * int(np.prod(shape))


def check_readable_by_index(builder, name, image_size):
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
    if not stored_as_array_record(builder):
        file_format = builder.info.file_format
        raise DatasetError(
            f"{name} in {builder.data_dir} is stored as {file_format.value if file_format else 'tfrecord'}, which "
            'cannot be read by index: copy it as ArrayRecord once, python -c "from input_pipeline import convert; '
            f"convert.to_array_record('{name}', '{builder.data_dir_root}', '/data/tfds_ar')\", and pass "
            "--config.data_dir=/data/tfds_ar; or hold it in memory with --config.input_path=memory if it fits"
        )


def prepared_builder(name, data_dir, download, for_disk=False):
    """The tfds builder of `name`, prepared in `data_dir` (downloaded there first only if `download`); if it is
    not, the error's preparation command writes ArrayRecord when the dataset is to be read from disk."""
    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except tfds.core.registered.DatasetNotFoundError:
        close = difflib.get_close_matches(name, tfds.list_builders(), n=3)
        hint = f" (did you mean {' or '.join(close)}?)" if close else ""
        raise DatasetError(
            f"unknown dataset --config.dataset={name!r}{hint}: use one of {tuple(registry.DATASETS)}, a tfds "
            "dataset's name, or your own as module:attribute (README, 'Add your own dataset')"
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


def in_memory(name, data_dir, download, image_size, split_name, with_eval=True):
    """The dataset's training and evaluation splits decoded into memory, in the richer form of a dataset function
    (sources.py's `in_memory`); its published statistics if it has them, else its training images' are computed."""
    builder = prepared_builder(name, data_dir, download)
    if not builder.is_prepared():
        builder.download_and_prepare()

    def read(split):
        if stored_as_array_record(builder):  # tfds reads ArrayRecord by index only
            records_split = records.tfds_split(builder, split)
            examples = tf.data.Dataset.range(records_split.count).batch(256).map(records_split.read).unbatch()
            decoded = examples.map(lambda encoded, label: (crops.decode(encoded), label))
        else:
            decoded = builder.as_dataset(split=split, shuffle_files=False).map(lambda e: (e["image"], e["label"]))
        return _to_numpy(decoded.map(lambda image, label: (_resized(image, image_size), label)))

    split = eval_split(builder, split_name) if with_eval else None
    dataset = dict(
        train=read("train"),
        eval=read(split) if with_eval else None,
        class_names=tuple(builder.info.features["label"].names),
        eval_split=split,
    )
    if name in PUBLISHED:
        dataset["mean"], dataset["std"] = PUBLISHED[name]
    return dataset


def on_disk(name, data_dir, image_size, split_name, skip_bad_images=False, with_eval=True):
    """The dataset read from disk by index (a `records.DiskData`), normalised with its published statistics or a
    sample's. With `skip_bad_images` every record is decoded once, and those that fail are left out."""
    builder = prepared_builder(name, data_dir, download=False)
    split = eval_split(builder, split_name) if with_eval else None

    def read(split_name):
        records_split = records.tfds_split(builder, split_name)
        if not skip_bad_images:
            return records_split
        records_split, skipped = records.without_undecodable(records_split)
        if skipped:
            logging.warning("%s: skipped %d undecodable records, e.g. %s", name, len(skipped), skipped[:3])
        return records_split

    train = read("train")
    evaluation = read(split) if with_eval else None
    mean, std = PUBLISHED.get(name) or sampled_statistics(train, image_size)
    num_classes = builder.info.features["label"].num_classes
    names = tuple(builder.info.features["label"].names)
    return records.DiskData(name, train, evaluation, num_classes, tuple(image_size), mean, std, split, names)


def stored_as_array_record(builder):
    return builder.info.file_format is not None and builder.info.file_format.value == "array_record"


def eval_split(builder, asked=""):
    """The split evaluated on: `asked` (config.eval_split), or "test" if the dataset has one, else "validation"."""
    splits = builder.info.splits
    if asked:
        if asked not in splits:
            raise DatasetError(
                f"--config.eval_split={asked!r} is not a split of {builder.info.name}: it has {sorted(splits)}"
            )
        return asked
    return "test" if "test" in splits else "validation"


def _resized(image, image_size):
    """`image` resized to `image_size` as the crops resize, or as it is for None."""
    return image if image_size is None else crops.resized(image, image_size)


def _to_numpy(dataset):
    """All of an (image, label) dataset as (uint8 [N, H, W, C], int32 [N]) arrays."""
    images, labels = [], []
    for image_batch, label_batch in dataset.batch(4096).as_numpy_iterator():
        images.append(image_batch.astype(np.uint8))
        labels.append(label_batch.astype(np.int32))
    return np.concatenate(images), np.concatenate(labels)
