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


import pytest  # noqa: E402


@pytest.fixture(scope="session")
def two_replicas():
    """One MirroredStrategy over the two logical CPUs for the whole session.

    Each MirroredStrategy numbers its collective ops from the same start, so a second one in the same process
    can collide with the first's cached collectives ("Shape mismatch in the collective instance"): share one.
    """
    return tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
