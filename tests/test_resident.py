"""input_pipeline.resident: the training set held on the device gives the pipeline's batches, cut per epoch."""

import numpy as np
import pytest
import tensorflow as tf
import tiny

import input_pipeline
from configs.base import Config
from input_pipeline.resident import ResidentTrainingSet
from training import trainer

TINY = tiny.RESNET9 | dict(steps_per_loop=4, log_every_steps=4, checkpoint_every_steps=8)


def test_the_resident_sets_batches_are_the_pipelines_and_a_call_is_cut_at_its_epochs_end():

    data = input_pipeline.load(Config(dataset="quickstart"))
    config = Config(**TINY | dict(batch_size=2000, lr_reference_batch=2000, seed=3, data_on_device=True))
    resident = ResidentTrainingSet(tf.distribute.get_strategy(), data, config)  # augmented in the set
    for step in (0, 4, 5, 7):  # 5 steps an epoch
        images, labels = tf.constant(data.train_images), tf.constant(data.train_labels)
        expected = input_pipeline.resident_batch(images, labels, data, config, 1, step, 0)
        resident.prepare_call(step, 5)
        images, labels = resident.batch(tf.constant(step, tf.int64), 0)
        np.testing.assert_array_equal(images.numpy(), expected[0].numpy())
        np.testing.assert_array_equal(labels.numpy(), expected[1].numpy())
    assert [resident.prepare_call(step, 3) for step in (0, 2, 4, 5, 9)] == [3, 3, 1, 3, 1]  # cut at an epoch's end


@pytest.mark.slow
def test_synthetic_data_on_the_device_is_made_there_and_trains(tmp_path, two_replicas):

    data = input_pipeline.load(Config(dataset="synthetic", batch_size=512 // 8))
    resident = ResidentTrainingSet(two_replicas, data, Config(**TINY))
    copies = [two_replicas.experimental_local_results(v) for v in (resident.images, resident.labels)]
    for values in copies:
        assert [c.device.split(":")[-1] for c in values] == ["0", "1"]  # one copy on each replica's device
        np.testing.assert_array_equal(values[0].numpy(), values[1].numpy())
    images, labels = copies[0][0].numpy(), copies[1][0].numpy()
    assert images.shape == data.train_images.shape and images.dtype == np.uint8 and 100 < images.mean() < 155
    assert labels.min() >= 0 and labels.max() < data.num_classes and not np.array_equal(images, data.train_images)
    config = Config(**TINY | dict(dataset="synthetic", data_on_device=True, stop_at_step=3))
    assert trainer.train_and_evaluate(config, str(tmp_path), strategy=two_replicas)["steps"] == 3
