"""The per-channel statistics a dataset is normalised with: published ones, or its own training images'.

Published (`PUBLISHED`) for CIFAR-10, CIFAR-100 and ImageNet; any other dataset, an image folder or the user's own
arrays, gets its training images' own mean and standard deviation (`pixel_statistics`, exact, over all of them in
memory; `sampled_statistics`, over a seeded sample, for one read from disk). Never silently another dataset's: the
run records which it used (config.json's `data`), and the exported model normalises with them.
"""

import numpy as np
import tensorflow as tf

from input_pipeline import crops

# Per-channel mean and standard deviation on the 0-255 scale, published for each training split. Any other
# dataset is normalised with its own training images' (`pixel_statistics`; from disk, a sample's).
CIFAR10_STATS = ((125.307, 122.961, 113.8575), (62.9932, 62.0887, 66.7048))
CIFAR100_STATS = ((129.304, 124.070, 112.434), (68.170, 65.392, 70.418))
IMAGENET_STATS = ((123.675, 116.28, 103.53), (58.395, 57.12, 57.375))
PUBLISHED = {"cifar10": CIFAR10_STATS, "cifar100": CIFAR100_STATS, "imagenet2012": IMAGENET_STATS}
STATISTICS_SAMPLE = 5000  # training images a dataset read from disk computes its statistics from (seeded)


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


def sampled_statistics(split, image_size, count=STATISTICS_SAMPLE, seed=0):
    """`pixel_statistics` of a seeded sample of `count` images of a `records.Split` read from disk, each decoded
    and centre-cropped to `image_size` as evaluation crops it: a dataset too large to hold is not read whole for
    its mean (5,000 images put each channel's mean within about half a level of the whole set's)."""
    chosen = np.sort(np.random.default_rng(seed).choice(split.count, min(count, split.count), replace=False))
    images = tf.data.Dataset.from_tensor_slices(chosen).batch(256).map(lambda indices: split.read(indices)[0])
    images = images.unbatch().map(lambda encoded: crops.centre_crop(encoded, image_size), tf.data.AUTOTUNE)
    images = images.ignore_errors()  # an image that does not decode is named when training reads it
    return pixel_statistics(np.concatenate(list(images.batch(1024).as_numpy_iterator())))
