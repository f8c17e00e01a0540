"""An offline, procedurally generated image-classification set: 10 classes of shapes and textures at 32x32.

Each image is one class's pattern in a random foreground colour on a random background colour, at a random
position and size, with Gaussian pixel noise. It is deterministic by seed, built in memory in about a second,
and learnable: a small CNN gets far above chance within a minute on 2 CPU cores (see configs/quickstart.py).
The HARD variant ("quickstart_hard": more noise, less contrast) is for comparing schedules: the easy set reaches
100% under almost any schedule, the hard one takes several epochs and separates them (configs/quickstart_race.py).
"""

import numpy as np

CLASS_NAMES = (
    "disk",
    "square",
    "diamond",
    "ring",
    "plus",
    "triangle",
    "frame",
    "horizontal_stripes",
    "vertical_stripes",
    "checkerboard",
)
SIZE = 32


# Pixel noise (standard deviation) and the least brightness gap between foreground and background, out of 255.
EASY = dict(noise=12.0, contrast=60.0)
HARD = dict(noise=56.0, contrast=15.0)


def generate(num_examples, seed, noise=EASY["noise"], contrast=EASY["contrast"]):
    """Returns (images uint8 [N, 32, 32, 3], labels int32 [N]), balanced over the 10 classes."""
    rng = np.random.default_rng(seed)
    labels = (np.arange(num_examples) % len(CLASS_NAMES)).astype(np.int32)
    rng.shuffle(labels)
    masks = _masks(labels, rng)
    foreground, background = _contrasting_colours(num_examples, rng, contrast)
    images = np.where(masks[..., None], foreground[:, None, None, :], background[:, None, None, :])
    images = images + rng.normal(0.0, noise, size=images.shape)
    return np.clip(np.rint(images), 0, 255).astype(np.uint8), labels


def _masks(labels, rng):
    """Boolean [N, 32, 32] masks: each label's shape at a random centre, radius and stripe period."""
    n = len(labels)
    y, x = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)
    radius = rng.uniform(6.0, 11.0, size=(n, 1, 1)).astype(np.float32)
    centre = rng.uniform(11.0, SIZE - 11.0, size=(n, 2, 1, 1)).astype(np.float32)
    dy, dx = y - centre[:, 0], x - centre[:, 1]
    distance = np.sqrt(dx**2 + dy**2)
    box = np.maximum(np.abs(dx), np.abs(dy))
    period = rng.uniform(3.0, 6.0, size=(n, 1, 1)).astype(np.float32)
    phase = rng.uniform(0.0, 2 * np.pi, size=(n, 1, 1)).astype(np.float32)
    bar = radius / 3
    patterns = [
        distance < radius,
        box < radius,
        np.abs(dx) + np.abs(dy) < radius,
        (distance < radius) & (distance > 0.55 * radius),
        ((np.abs(dx) < bar) & (np.abs(dy) < radius)) | ((np.abs(dy) < bar) & (np.abs(dx) < radius)),
        (np.abs(dy) < radius) & (np.abs(dx) < (dy + radius) / 2),
        (box < radius) & (box > 0.6 * radius),
        np.sin(2 * np.pi * y / period + phase) > 0,
        np.sin(2 * np.pi * x / period + phase) > 0,
        (np.floor((x + phase) / period) + np.floor((y + phase) / period)) % 2 == 0,
    ]
    return np.stack(patterns)[labels, np.arange(n)]


def _contrasting_colours(n, rng, contrast):
    """Foreground and background RGB colours whose brightness differs by at least `contrast` (of 255)."""
    foreground = rng.uniform(0, 255, size=(n, 3))
    background = rng.uniform(0, 255, size=(n, 3))
    gap = foreground.mean(axis=1) - background.mean(axis=1)
    push = np.where(np.abs(gap) < contrast, np.sign(gap + 1e-6) * (contrast - np.abs(gap)) / 2, 0.0)[:, None]
    return np.clip(foreground + push, 0, 255), np.clip(background - push, 0, 255)
