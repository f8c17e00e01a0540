"""Batch-wise image augmentation inside the graph, driven by stateless random seeds.

Each function takes a whole batch [B, H, W, C] and draws one random value per example from `seed` (a shape-[2]
integer tensor), so the same seed gives the same batch: the pipeline derives it from (seed, step, replica), which
makes a resumed run see exactly the augmentations an uninterrupted one would have. (XLA's stateless generators
draw other numbers than the host's for the same seed, so "the same" holds within one place: host or XLA step.)
"""

import tensorflow as tf

from configs import registry
from configs.base import Augmentation

__all__ = ["Augmentation", "augment", "cutout", "jitter", "random_crop", "random_flip"]


def augment(images, seed, augmentation):
    """Applies `augmentation` to a normalised float batch; returns a batch of the same shape.

    Its `extra` augmentations (configs/registry.py's AUGMENTATIONS, or the user's `module:attribute`) come last,
    in order, each called as `fn(images, seed)` with a seed of its own derived from `seed`."""
    crop_seed, flip_seed, cutout_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 3))
    if augmentation.crop_padding:
        images = random_crop(images, augmentation.crop_padding, crop_seed)
    if augmentation.flip and not augmentation.alternate_flip:  # alternating: by example index, in the pipeline
        images = random_flip(images, flip_seed)
    if augmentation.cutout:
        images = cutout(images, augmentation.cutout, cutout_seed)
    for index, name in enumerate(augmentation.extra):
        extra = _resolved(name)
        images = extra(images, tf.random.experimental.stateless_fold_in(seed, _EXTRA_STREAMS + index))
    return images


@tf.autograph.experimental.do_not_convert  # an import, at trace time: nothing for autograph to convert
def _resolved(name):
    return registry.resolve("augmentation.extra", name)


_EXTRA_STREAMS = 1000  # the extra augmentations' seeds are `seed` folded with 1000, 1001, ...


def random_crop(images, padding, seed):
    """Reflect-pads each image by `padding` and crops it back to its size at a uniformly random offset."""
    batch, height, width = tf.shape(images)[0], images.shape[1], images.shape[2]
    padded = tf.pad(images, [[0, 0], [padding, padding], [padding, padding], [0, 0]], mode="REFLECT")
    offsets = tf.random.stateless_uniform([batch, 2], seed, minval=0, maxval=2 * padding + 1, dtype=tf.int32)
    offsets = tf.cast(offsets, tf.int64)  # on a GPU int32 ones would be sliced on the host, a copy every step
    rows = offsets[:, :1] + tf.range(height, dtype=tf.int64)
    columns = offsets[:, 1:] + tf.range(width, dtype=tf.int64)
    cropped = tf.gather(padded, rows, axis=1, batch_dims=1)
    return tf.gather(cropped, columns, axis=2, batch_dims=1)


def random_flip(images, seed):
    """Mirrors each image left-right with probability 1/2."""
    flip = tf.random.stateless_uniform([tf.shape(images)[0]], seed) < 0.5
    return tf.where(flip[:, None, None, None], tf.reverse(images, axis=[2]), images)


def cutout(images, size, seed):
    """Zeroes a size x size square per image, centred uniformly on the image and clipped at its border."""
    batch, height, width = tf.shape(images)[0], images.shape[1], images.shape[2]
    centre = tf.random.stateless_uniform([batch, 2], seed) * [height, width]
    top_left = tf.cast(tf.floor(centre), tf.int32) - size // 2
    rows = tf.range(height)[None, :] - top_left[:, :1]
    columns = tf.range(width)[None, :] - top_left[:, 1:]
    inside_rows = (rows >= 0) & (rows < size)
    inside_columns = (columns >= 0) & (columns < size)
    square = inside_rows[:, :, None] & inside_columns[:, None, :]
    return tf.where(square[..., None], tf.zeros_like(images), images)


JITTER = (0.1399, 0.1308)  # hiverge/cifar10-speedrun's brightness and contrast ranges, on normalised pixels


def jitter(images, seed, brightness=JITTER[0], contrast=JITTER[1]):
    """hiverge/cifar10-speedrun's colour jitter: each image becomes (x + b) * c, with b ~ U(-brightness,
    brightness) and c ~ U(1 - contrast, 1 + contrast) drawn per image, on normalised pixels (so the contrast
    scales around the dataset's mean)."""
    batch = tf.shape(images)[0]
    offsets, scales = tf.unstack(tf.random.stateless_uniform([2, batch], seed, -1.0, 1.0), axis=0)
    offsets = tf.cast(offsets * brightness, images.dtype)[:, None, None, None]
    scales = tf.cast(1.0 + scales * contrast, images.dtype)[:, None, None, None]
    return (images + offsets) * scales
