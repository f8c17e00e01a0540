"""Datasets read from disk by example index: tfds datasets stored as ArrayRecord, and image folders.

Nothing is loaded whole. A split is `count` examples and a graph function `read(indices)` that returns their
encoded images and labels, so the pipeline keeps the in-memory path's design: an epoch is an index permutation of
(seed, epoch), cut into per-replica batches; only the gather differs. Order, sharding over replicas and workers,
and exact resume at any step are therefore the same code and the same guarantees (see pipeline.py).

- tfds: ArrayRecord files are built for random access (tfds writes them with one record per chunk,
  `group_size:1`). `read` fetches the serialized examples through tfds's `data_source` (ArrayRecord's reader,
  one thread-safe reader per shard) in one Python call per batch, then parses and decodes them in the graph.
- Image folders: the file paths are kept (about 100 bytes an example); `read` reads the files in the graph.

Each batch is read at once, then its images are decoded and cropped to the configured size in the graph, one
example at a time and several in parallel (crops.py): random-resized crops for training, a centre crop for
evaluation.
"""

import dataclasses
import re
from collections.abc import Callable

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from input_pipeline import crops


@dataclasses.dataclass(frozen=True)
class Split:
    """One split read by index: `read(indices)` gives (encoded images [B] string, labels [B] int32)."""

    count: int
    read: Callable
    where: str  # what is read, for the log: "3 ArrayRecord shards in /data/tfds/..."
    name_of: Callable  # example index -> what a person finds it by: its file, or its record and split


def subset(split, indices, what):
    """The examples `indices` of `split`, read by their position in `indices` ("training", "held out": `what`)."""
    table = tf.constant(indices, tf.int64)

    def read(positions):
        return split.read(tf.gather(table, positions))

    return Split(len(indices), read, f"{len(indices)} {what} of {split.where}", lambda i: split.name_of(indices[i]))


def first_undecodable(split, indices):
    """(its name, why) of the first example of `indices` whose image does not decode, or None: the diagnosis of
    a decoding error that stopped the pipeline, which names no file. Reads and decodes them one at a time."""
    for index in np.asarray(indices).tolist():
        encoded = split.read(tf.constant([index], tf.int64))[0][0]
        try:
            crops.decode(encoded)
        except tf.errors.OpError as error:
            reason = (error.message.strip().splitlines() or ["?"])[-1]
            reason = re.sub(r"\{\{[^}]*\}\}\s*", "", re.sub(r"\s*\[Op:\w+\]$", "", reason))  # TensorFlow's tags
            return split.name_of(index), reason
    return None


def without_undecodable(split):
    """(`split` without the examples whose image does not decode, their names): `skip_bad_images` on the disk
    path, where the epochs must be cut from the good ones before training, so every image is read and decoded
    once, in parallel (CIFAR-10's 60,000 JPEGs from an image folder: BUILD.md says how long)."""

    def decode(index):
        return index, tf.shape(crops.decode(split.read(index[None])[0][0]))

    decoded = tf.data.Dataset.range(split.count).map(decode, num_parallel_calls=tf.data.AUTOTUNE).ignore_errors()
    good = np.array([index for index, _ in decoded.as_numpy_iterator()], np.int64)
    bad = np.setdiff1d(np.arange(split.count), good)
    if not len(bad):
        return split, []
    return subset(split, good, "decodable"), [split.name_of(index) for index in bad]


@dataclasses.dataclass(frozen=True)
class DiskData:
    """A dataset read from disk by index, decoded and cropped to `image_size` as it is read."""

    name: str
    train: Split
    eval: Split
    num_classes: int
    image_size: tuple[int, int]
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    eval_split: str = "test"  # what the evaluation set is, for every report that names an accuracy
    class_names: tuple[str, ...] = ()  # logit i is class_names[i]
    synthetic = False
    in_memory = False

    @property
    def image_shape(self):
        return (*self.image_size, 3)

    @property
    def num_train(self):
        return self.train.count

    @property
    def num_eval(self):
        return self.eval.count


def tfds_split(builder, split):
    """`split` of a tfds dataset prepared as ArrayRecord, read by index."""
    source = builder.as_data_source(split=split, deserialize_method=tfds.decode.DeserializeMethod.RAW_BYTES)
    spec = {"image": tf.io.FixedLenFeature([], tf.string), "label": tf.io.FixedLenFeature([], tf.int64)}

    def fetch(indices):
        return np.array(source.__getitems__(indices.tolist()), dtype=object)

    def read(indices):
        serialized = tf.numpy_function(fetch, [indices], tf.string, stateful=False)
        serialized.set_shape(indices.shape)
        parsed = tf.io.parse_example(serialized, spec)
        return parsed["image"], tf.cast(parsed["label"], tf.int32)

    shards = builder.info.splits[split].num_shards
    where = f"{shards} ArrayRecord shards in {builder.data_dir}"
    return Split(len(source), read, where, lambda index: f"record {index} of split {split!r} in {builder.data_dir}")


def folder_split(paths, labels, folder):
    """Image files `paths` with int `labels`, read by index."""
    names = [str(path) for path in paths]
    paths, labels = tf.constant(paths), tf.constant(labels, tf.int32)

    def read(indices):
        files = tf.gather(paths, indices)
        return tf.map_fn(tf.io.read_file, files, fn_output_signature=tf.string), tf.gather(labels, indices)

    return Split(int(labels.shape[0]), read, f"{labels.shape[0]} files under {folder}", lambda index: names[index])


def decoded_batches(batches, split, batch_size, decode):
    """(key, indices [B]) elements -> (key, uint8 images [B, H, W, 3], int32 labels [B]).

    Each batch's records are read at once (in parallel with other batches), then its images are decoded one
    example at a time, in parallel and in order, by `decode(encoded, key, position in the batch)`, and batched
    again. `key` is any structure the caller carries with the batch (its step and replica, say).
    """

    def read(key, indices):
        return (key, *split.read(indices))

    def examples(key, encoded, labels):
        positions = tf.range(batch_size, dtype=tf.int64)
        keys = tf.data.Dataset.from_tensors(key).repeat(batch_size)
        return tf.data.Dataset.zip((keys, tf.data.Dataset.from_tensor_slices((positions, encoded, labels))))

    def decoded(key, example):
        position, encoded, label = example
        return key, decode(encoded, key, position), label

    batches = batches.map(read, num_parallel_calls=tf.data.AUTOTUNE).flat_map(examples)
    batches = batches.map(decoded, num_parallel_calls=tf.data.AUTOTUNE).batch(batch_size, drop_remainder=True)
    return batches.map(lambda keys, images, labels: (tf.nest.map_structure(lambda k: k[0], keys), images, labels))
