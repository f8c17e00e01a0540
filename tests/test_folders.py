"""input_pipeline/folders.py and statistics.py: an image folder is read once, in parallel, within a small factor of
the same images from a tfds data_dir, decoded as PIL decodes it, and normalised with its training images' own
statistics (not its test images', not ImageNet's), which the exported model uses too."""

import io

import numpy as np
import tensorflow as tf
from PIL import Image

import input_pipeline
from benchmarks import folder_load
from configs.base import Config
from input_pipeline.statistics import pixel_statistics, sampled_statistics
from training import export


def write_folder(root, per_class, brightness, seed=0):
    """root/<split>/<CIFAR-10 label>/*.jpg: 32x32 JPEGs of smooth random colour fields around `brightness`
    (per split), per_class of them per class and split."""
    rng = np.random.default_rng(seed)
    for split, count in per_class.items():
        for label in folder_load.CIFAR10_LABELS:
            (root / split / label).mkdir(parents=True)
            for i in range(count):
                coarse = rng.normal(brightness[split], 40, (4, 4, 3))
                image = np.clip(np.kron(coarse, np.ones((8, 8, 1))) + rng.normal(0, 10, (32, 32, 3)), 0, 255)
                buffer = io.BytesIO()
                Image.fromarray(image.astype(np.uint8)).save(buffer, format="JPEG", quality=75)
                (root / split / label / f"{i:04d}.jpg").write_bytes(buffer.getvalue())


def test_a_folder_loads_within_a_small_factor_of_tfds_with_the_same_pixels(tmp_path):
    folder = tmp_path / "folder"
    write_folder(folder, {"train": 300, "test": 50}, {"train": 128, "test": 128})  # 3,500 JPEGs
    data_dir = folder_load.prepare_tfds(folder, tmp_path / "workspace")
    seconds = folder_load.timed_loads(folder, data_dir, windows=3)
    ratio = min(seconds["image folder"]) / min(seconds["tfds data_dir"])  # each at its least disturbed
    # A file at a time took 5x tfds's time on CIFAR-10 and 5.9x on this folder; in parallel, 0.45x on CIFAR-10 and
    # 1.0-2.4x here, where the fixed costs weigh more and another test shares the 2 cores.
    assert ratio < 3.0, seconds
    from_folder = input_pipeline.load(Config(dataset="image_folder", data_dir=str(folder), image_size=(32, 32)))
    from_tfds = input_pipeline.load(Config(dataset="cifar10", data_dir=data_dir))
    assert sorted(i.tobytes() for i in from_folder.train_images) == sorted(i.tobytes() for i in from_tfds.train_images)


def test_a_folders_statistics_are_its_training_images_own_and_the_exported_model_uses_them(tmp_path):
    write_folder(tmp_path, {"train": 20, "test": 20}, {"train": 170, "test": 60})  # bright train, dark test
    data = input_pipeline.load(Config(dataset="image_folder", data_dir=str(tmp_path), image_size=(32, 32)))
    pixels = data.train_images.reshape(-1, 3).astype(np.float64)
    np.testing.assert_allclose(data.mean, pixels.mean(0), rtol=1e-9)
    np.testing.assert_allclose(data.std, pixels.std(0), rtol=1e-9)
    assert min(data.mean) > 140 and max(data.eval_images.reshape(-1, 3).mean(0)) < 90  # the test images are not in
    served = export.serving_model(tf.keras.Sequential([tf.keras.layers.Flatten()]), data)
    normalise = served.get_layer("normalise")
    np.testing.assert_allclose(np.ravel(normalise.mean), data.mean, rtol=1e-6)
    np.testing.assert_allclose(np.sqrt(np.ravel(normalise.variance)), data.std, rtol=1e-6)


def test_read_from_disk_its_statistics_are_a_samples_of_the_training_images(tmp_path):
    write_folder(tmp_path, {"train": 30, "test": 5}, {"train": 150, "test": 50})
    config = Config(dataset="image_folder", data_dir=str(tmp_path), image_size=(32, 32), input_path="disk")
    on_disk = input_pipeline.load(config)
    in_memory = input_pipeline.load(Config(dataset="image_folder", data_dir=str(tmp_path), image_size=(32, 32)))
    np.testing.assert_allclose(on_disk.mean, in_memory.mean, atol=2.0)  # the centre crop, resized: nearly the same
    every = sampled_statistics(on_disk.train, (32, 32), count=300)  # a sample as large as the set: all of it
    assert every == sampled_statistics(on_disk.train, (32, 32), count=10**6)
    half = sampled_statistics(on_disk.train, (32, 32), count=150)
    assert half == sampled_statistics(on_disk.train, (32, 32), count=150) and half != every  # seeded, a sample


def test_pixel_statistics_are_numpys():
    images = np.random.default_rng(1).integers(0, 256, (5000, 4, 4, 3), dtype=np.uint8)
    mean, std = pixel_statistics(images, chunk=333)
    np.testing.assert_allclose(mean, images.reshape(-1, 3).mean(0), rtol=1e-12)
    np.testing.assert_allclose(std, images.reshape(-1, 3).std(0), rtol=1e-10)
