"""Batch-wise augmentations: properties checked eagerly, inside Dataset.map and inside an XLA-compiled step."""

import numpy as np
import pytest
import tensorflow as tf

from input_pipeline import augmentations as aug

IMAGES = tf.constant(np.random.default_rng(0).normal(size=(16, 8, 10, 3)), tf.float32)
SEED = tf.constant([7, 11], tf.int64)


def run_in(mode, fn, *args):
    """Runs fn(*args) eagerly, inside Dataset.map, or in a jit-compiled tf.function."""
    if mode == "eager":
        return fn(*args)
    if mode == "dataset_map":
        return next(iter(tf.data.Dataset.from_tensors(args).map(fn)))
    return tf.function(fn, jit_compile=True)(*args)


MODES = ["eager", "dataset_map", "xla"]


@pytest.mark.parametrize("mode", MODES)
def test_random_crop_is_a_window_of_the_reflect_padded_image(mode):
    cropped = run_in(mode, lambda x, s: aug.random_crop(x, 2, s), IMAGES, SEED).numpy()
    padded = np.pad(IMAGES.numpy(), [(0, 0), (2, 2), (2, 2), (0, 0)], mode="reflect")
    assert cropped.shape == IMAGES.shape
    offsets = []
    for image, source in zip(cropped, padded):
        matches = [
            (dy, dx) for dy in range(5) for dx in range(5) if np.array_equal(source[dy : dy + 8, dx : dx + 10], image)
        ]
        assert matches, "a crop must be a window of the padded image"
        offsets.append(matches[0])
    assert len(set(offsets)) > 4  # offsets vary per example


@pytest.mark.parametrize("mode", MODES)
def test_random_flip_mirrors_about_half(mode):
    flipped = run_in(mode, aug.random_flip, IMAGES, SEED).numpy()
    mirrored = [np.array_equal(f, x[:, ::-1]) for f, x in zip(flipped, IMAGES.numpy())]
    unchanged = [np.array_equal(f, x) for f, x in zip(flipped, IMAGES.numpy())]
    assert all(m != u for m, u in zip(mirrored, unchanged))  # each image is exactly one of the two
    assert 3 <= sum(mirrored) <= 13


@pytest.mark.parametrize("mode", MODES)
def test_cutout_zeroes_one_square_and_nothing_else(mode):
    ones = tf.ones([32, 12, 12, 3])
    out = run_in(mode, lambda x, s: aug.cutout(x, 4, s), ones, SEED).numpy()
    for image in out:
        zero = image[..., 0] == 0
        assert np.all((image == 0) == zero[..., None])  # all channels together
        rows, columns = np.nonzero(zero)
        # A 4x4 square, clipped where its centre is near the border: a full rectangle of zeros, 1-4 on a side.
        assert 1 <= np.ptp(rows) + 1 <= 4 and 1 <= np.ptp(columns) + 1 <= 4
        assert zero.sum() == (np.ptp(rows) + 1) * (np.ptp(columns) + 1)
        assert np.all(image[~zero] == 1)
    assert sum(int((img[..., 0] == 0).sum()) == 16 for img in out) > 8  # most squares lie fully inside


def test_same_seed_same_batch_other_seed_other_batch():
    augmentation = aug.Augmentation(crop_padding=2, flip=True, cutout=3)
    first = aug.augment(IMAGES, SEED, augmentation)
    np.testing.assert_array_equal(first, aug.augment(IMAGES, SEED, augmentation))
    compiled = tf.function(lambda x, s: aug.augment(x, s, augmentation), jit_compile=True)
    np.testing.assert_array_equal(compiled(IMAGES, SEED), compiled(IMAGES, SEED))  # XLA draws its own numbers
    assert not np.array_equal(first, aug.augment(IMAGES, SEED + 1, augmentation))


def test_everything_off_is_the_identity():
    off = aug.Augmentation(crop_padding=0, flip=False, cutout=0)
    np.testing.assert_array_equal(aug.augment(IMAGES, SEED, off), IMAGES)
