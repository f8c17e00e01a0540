"""Data sources: the real tfds path on a tiny prepared CIFAR-10, image folders, quick-start and synthetic data."""

import time

import numpy as np
import pytest
import tensorflow as tf

from configs.base import Config
from input_pipeline import quickstart, sources, statistics


def test_tfds_cifar10_reads_what_the_builder_prepared(cifar10_data_dir):
    data_dir, written = cifar10_data_dir
    data = sources.load(Config(dataset="cifar10", data_dir=data_dir))
    assert (data.num_train, data.num_eval, data.num_classes) == (20, 7, 10)
    assert data.train_images.shape == (20, 32, 32, 3) and data.train_images.dtype == np.uint8
    assert data.train_labels.dtype == np.int32
    assert (data.mean, data.std) == statistics.PUBLISHED["cifar10"]
    # Every record written comes back exactly once (tfds shuffles the order), with its own label.
    test_pixels, test_labels = written["test_batch.bin"]
    expected = sorted((image.tobytes(), int(label)) for image, label in zip(test_pixels, test_labels))
    actual = sorted((image.tobytes(), int(label)) for image, label in zip(data.eval_images, data.eval_labels))
    assert actual == expected
    all_train = np.concatenate([written[f"data_batch_{i}.bin"][0] for i in range(1, 6)])
    assert sorted(i.tobytes() for i in data.train_images) == sorted(i.tobytes() for i in all_train)


def test_tfds_resizes_when_asked(cifar10_data_dir):
    data = sources.load(Config(dataset="cifar10", data_dir=cifar10_data_dir[0], image_size=(16, 16)))
    assert data.train_images.shape == (20, 16, 16, 3) and data.train_images.dtype == np.uint8


def test_missing_tfds_data_fails_at_once_with_instructions(tmp_path):
    start = time.monotonic()
    with pytest.raises(sources.DatasetError) as error:
        sources.load(Config(dataset="cifar10", data_dir=str(tmp_path)))
    assert time.monotonic() - start < 5
    message = str(error.value)
    assert f"not prepared in '{tmp_path}'" in message and "--config.data_dir=/data/tfds" in message
    assert "download_and_prepare()" in message and "--config.download=True" in message


def test_unknown_dataset_name_is_an_error():
    with pytest.raises(
        sources.DatasetError, match=r"unknown dataset --config.dataset='cifar11' \(did you mean cifar10"
    ):
        sources.load(Config(dataset="cifar11"))


def write_image_folder(root, sizes, colours=None):
    """root/<split>/<class>/*.png with solid colours that identify the class."""
    colours = colours or {"cats": (200, 30, 30), "dogs": (30, 200, 30), "owls": (30, 30, 200)}
    for split, count in sizes.items():
        for name, colour in colours.items():
            (root / split / name).mkdir(parents=True)
            for i in range(count):
                image = np.broadcast_to(np.array(colour, np.uint8), (12 + i, 10, 3))
                tf.io.write_file(str(root / split / name / f"{i}.png"), tf.io.encode_png(image))
    return colours


def test_image_folder(tmp_path):
    colours = write_image_folder(tmp_path, {"train": 3, "test": 2})
    data = sources.load(Config(dataset="image_folder", data_dir=str(tmp_path), image_size=(8, 8)))
    assert (data.num_train, data.num_eval, data.num_classes) == (9, 6, 3)
    assert data.class_names == ("cats", "dogs", "owls")  # the folders, sorted: label i is class_names[i]
    assert data.train_images.shape == (9, 8, 8, 3) and data.train_images.dtype == np.uint8
    for images, labels in [(data.train_images, data.train_labels), (data.eval_images, data.eval_labels)]:
        for image, label in zip(images, labels):
            np.testing.assert_array_equal(image[4, 4], list(colours.values())[label])  # classes in sorted order


def test_image_folder_needs_a_root_and_a_size(tmp_path):
    with pytest.raises(sources.DatasetError, match="train/<class>/ and test/<class>/"):
        sources.load(Config(dataset="image_folder", data_dir=str(tmp_path)))
    write_image_folder(tmp_path, {"train": 1, "test": 1})
    with pytest.raises(sources.DatasetError, match="image_folder needs --config.image_size=height,width"):
        sources.load(Config(dataset="image_folder", data_dir=str(tmp_path)))


def test_quickstart_is_deterministic_balanced_and_varied():
    images, labels = quickstart.generate(1000, seed=3)
    again, _ = quickstart.generate(1000, seed=3)
    other, _ = quickstart.generate(1000, seed=4)
    np.testing.assert_array_equal(images, again)
    assert not np.array_equal(images, other)
    assert images.shape == (1000, 32, 32, 3) and images.dtype == np.uint8
    assert np.all(np.bincount(labels) == 100)
    assert len({image.tobytes() for image in images}) == 1000


def test_quickstart_is_not_solvable_from_class_mean_pixels():
    # Colour and position are random, so a nearest-class-mean classifier on raw pixels stays near chance: a model
    # has to learn shapes (tests/test_train.py shows a small CNN does).
    images, labels = quickstart.generate(2000, seed=0)
    flat = images.reshape(len(images), -1).astype(np.float32)
    means = np.stack([flat[labels == c].mean(0) for c in range(10)])
    nearest = np.argmin(((flat[:, None] - means[None]) ** 2).sum(-1), axis=1)
    assert np.mean(nearest == labels) < 0.35


def test_quickstart_source():
    data = sources.load(Config(dataset="quickstart"))
    assert (data.num_train, data.num_eval, data.num_classes) == (10_000, 2_000, 10) and not data.synthetic
    np.testing.assert_allclose(data.mean, data.train_images.reshape(-1, 3).mean(0), rtol=1e-6)


def test_synthetic_is_labelled():
    data = sources.load(Config(dataset="synthetic", image_size=(24, 24), batch_size=64 // 8))
    assert data.synthetic and data.name == "synthetic"
    assert data.train_images.shape == (64, 24, 24, 3)


def test_image_folder_names_an_undecodable_file_or_skips_it(tmp_path):
    write_image_folder(tmp_path, {"train": 3, "test": 1})
    (tmp_path / "train" / "dogs" / "9.jpg").write_bytes(b"not an image")
    (tmp_path / "train" / "owls" / "9.png").write_bytes(b"")
    with pytest.raises(ValueError, match=r"cannot decode .*train/dogs/9\.jpg.*--config\.skip_bad_images=True"):
        sources.load(Config(dataset="image_folder", data_dir=str(tmp_path), image_size=(8, 8)))
    data = sources.load(Config(dataset="image_folder", data_dir=str(tmp_path), image_size=(8, 8), skip_bad_images=True))
    assert data.num_train == 9 and np.bincount(data.train_labels).tolist() == [3, 3, 3]


def test_image_folder_refuses_a_class_without_images(tmp_path):
    write_image_folder(tmp_path, {"train": 2, "test": 1})
    (tmp_path / "test" / "owls" / "0.png").unlink()
    with pytest.raises(ValueError, match=r"class folder .*test/owls has no images"):
        sources.load(Config(dataset="image_folder", data_dir=str(tmp_path), image_size=(8, 8)))


@pytest.mark.parametrize("input_path", ["memory", "disk"])
@pytest.mark.parametrize(
    "make, reason",
    [
        (lambda path: path.symlink_to(path.parent / "nowhere.png"), "unreadable: No such file or directory"),
        (lambda path: path.symlink_to(path), "unreadable: Too many levels of symbolic links"),
        (lambda path: path.mkdir(), "a folder, not an image file"),
    ],
    ids=["dangling symlink", "symlink loop", "folder named like an image"],
)
def test_image_folder_names_a_file_that_cannot_be_an_image_or_skips_it(tmp_path, make, reason, input_path):
    write_image_folder(tmp_path, {"train": 3, "test": 1})
    bad = tmp_path / "train" / "cats" / "9.png"
    make(bad)
    options = dict(data_dir=str(tmp_path), image_size=(8, 8), input_path=input_path)
    with pytest.raises(sources.DatasetError, match=rf"cannot decode {bad} \({reason}\).*skip_bad_images=True"):
        sources.load(Config(dataset="image_folder", **options))
    assert sources.load(Config(dataset="image_folder", skip_bad_images=True, **options)).num_train == 9


def test_image_folder_without_test_is_refused_before_anything_is_read(tmp_path):
    write_image_folder(tmp_path, {"train": 1})
    with pytest.raises(sources.DatasetError, match=r"has no test/"):
        sources.check_source(Config(dataset="image_folder", data_dir=str(tmp_path), image_size=(8, 8)))
