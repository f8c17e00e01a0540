"""Test-wide setup: two logical CPU devices, so MirroredStrategy runs with 2 replicas on any machine.

This must happen before TensorFlow initialises its devices, which is why it lives here, at import time.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402

_cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    _cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()]
)


import keras  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def float32_policy():
    """Each test starts with Keras's float32 policy: a run sets the global policy to its precision and keeps it, so a
    mixed_float16 run would otherwise make the next test in the same worker build float16 layers."""
    keras.mixed_precision.set_global_policy("float32")
    yield


@pytest.fixture(scope="session")
def two_replicas():
    """One MirroredStrategy over the two logical CPUs for the whole session.

    Each MirroredStrategy numbers its collective ops from the same start, so a second one in the same process
    can collide with the first's cached collectives ("Shape mismatch in the collective instance"): share one.
    """
    return tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])


CIFAR10_LABELS = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


@pytest.fixture(scope="session")
def cifar10_data_dir(tmp_path_factory):
    """A tfds data_dir holding a tiny CIFAR-10 prepared by the real tfds builder, and the records written.

    The records are written in CIFAR-10's binary format (1 label byte + 3072 pixel bytes, channel-major) under
    cifar-10-batches-bin/, and only the download step is redirected to them: parsing, encoding and the tfrecord
    files are tfds's own. Production code then reads the data_dir unpatched with download=False.
    """
    from unittest import mock

    import numpy as np
    import tensorflow_datasets as tfds

    root = tmp_path_factory.mktemp("cifar10")
    extracted = root / "extracted" / "cifar-10-batches-bin"
    extracted.mkdir(parents=True)
    rng = np.random.default_rng(0)
    written = {}
    for name, count in [(f"data_batch_{i}.bin", 4) for i in range(1, 6)] + [("test_batch.bin", 7)]:
        labels = rng.integers(0, 10, count).astype(np.uint8)
        pixels = rng.integers(0, 256, (count, 3, 32, 32)).astype(np.uint8)
        (extracted / name).write_bytes(np.concatenate([labels[:, None], pixels.reshape(count, -1)], 1).tobytes())
        written[name] = (pixels.transpose(0, 2, 3, 1), labels)
    (extracted / "batches.meta.txt").write_text("\n".join(CIFAR10_LABELS) + "\n")
    data_dir = root / "tfds"
    redirect = mock.patch.object(
        tfds.download.DownloadManager, "download_and_extract", return_value=str(root / "extracted")
    )
    with redirect:
        tfds.builder("cifar10", data_dir=str(data_dir)).download_and_prepare(
            download_config=tfds.download.DownloadConfig(try_download_gcs=False)
        )
    return str(data_dir), written


@pytest.fixture(scope="session")
def jpegs_data_dir(tmp_path_factory):
    """A tfds data_dir holding `benchmarks.jpegs`: 240 training and 60 evaluation JPEGs of 40-90 pixels a side, in
    3 ArrayRecord shards, written by tfds's builder; each label is the example's number."""
    from benchmarks import jpegs

    data_dir = tmp_path_factory.mktemp("jpegs")
    jpegs.prepare(data_dir)
    return data_dir
