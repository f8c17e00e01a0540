"""Distributed training/eval batches: sharding over replicas, exact evaluation, determinism and resume."""

import numpy as np
import pytest
import tensorflow as tf
from tiny import pipeline_config

import input_pipeline
from configs.base import Config
from input_pipeline import Augmentation, Data


def numbered_data(num_train=40, num_eval=13):
    """Images whose every pixel is their example number, so a batch says which examples it holds."""

    def images(n):
        return np.broadcast_to(np.arange(n, dtype=np.uint8)[:, None, None, None], (n, 4, 4, 3)).copy()

    return Data(
        "numbered",
        images(num_train),
        np.arange(num_train, dtype=np.int32) % 10,
        images(num_eval),
        np.arange(num_eval, dtype=np.int32) % 10,
        10,
        (0.0, 0.0, 0.0),
        (1.0, 1.0, 1.0),
    )


def per_replica(strategy, value):
    return [t.numpy() for t in strategy.experimental_local_results(value)]


def take_steps(strategy, dataset, count):
    """[(replica 0 batch, replica 1 batch), ...] for `count` steps."""
    iterator = iter(dataset)
    return [tuple(zip(*(per_replica(strategy, part) for part in next(iterator)))) for _ in range(count)]


def example_ids(batch):
    return batch[0][:, 0, 0, 0].astype(int)


def test_each_example_once_per_epoch_across_replicas(two_replicas):
    data = numbered_data(num_train=40)
    dataset = input_pipeline.train_dataset(two_replicas, data, pipeline_config(8, seed=1))
    steps = take_steps(two_replicas, dataset, 10)  # two epochs of 5 steps
    for epoch in (steps[:5], steps[5:]):
        seen = np.concatenate([example_ids(batch) for step in epoch for batch in step])
        assert sorted(seen) == list(range(40))
        for step in epoch:
            assert [len(batch[0]) for batch in step] == [4, 4]  # per-replica batch = global / replicas
            for images, labels in step:
                np.testing.assert_array_equal(labels, example_ids((images,)) % 10)
    first, second = (np.concatenate([example_ids(b) for s in e for b in s]) for e in (steps[:5], steps[5:]))
    assert not np.array_equal(first, second)  # reshuffled every epoch


def test_remainder_is_dropped_and_varies(two_replicas):
    data = numbered_data(num_train=43)  # 5 steps of 8 use 40; 3 examples sit out, different ones each epoch
    steps = take_steps(two_replicas, input_pipeline.train_dataset(two_replicas, data, pipeline_config(8, seed=2)), 10)
    left_out = [
        set(range(43)) - set(np.concatenate([example_ids(b) for s in e for b in s])) for e in (steps[:5], steps[5:])
    ]
    assert [len(s) for s in left_out] == [3, 3] and left_out[0] != left_out[1]


def test_same_seed_same_batches_and_resume_continues_exactly(two_replicas):
    data = numbered_data(num_train=40)
    augmentation = Augmentation(crop_padding=1, flip=True, cutout=2)

    def steps(start_step, count, seed=5):
        dataset = input_pipeline.train_dataset(
            two_replicas, data, pipeline_config(8, seed=seed, augmentation=augmentation), start_step
        )
        return take_steps(two_replicas, dataset, count)

    uninterrupted = steps(0, 12)
    for mine, theirs in zip(uninterrupted, steps(0, 12)):
        for a, b in zip(mine, theirs):
            np.testing.assert_array_equal(a[0], b[0])
    for k in (3, 5, 7):  # mid-epoch, at an epoch boundary, in the second epoch
        for resumed, original in zip(steps(k, 12 - k), uninterrupted[k:]):
            for a, b in zip(resumed, original):
                np.testing.assert_array_equal(a[0], b[0])  # same examples, same augmentation
                np.testing.assert_array_equal(a[1], b[1])
    other_seed = steps(0, 1, seed=6)[0][0][0]
    assert not np.array_equal(other_seed, uninterrupted[0][0][0])


def test_evaluation_counts_every_example_once(two_replicas):
    data = numbered_data(num_eval=13)
    dataset, num_steps = input_pipeline.eval_dataset(two_replicas, data, pipeline_config(4))
    assert num_steps == 4
    counted = []
    for images, labels, weights in dataset:
        for image, label, weight in zip(*(per_replica(two_replicas, t) for t in (images, labels, weights))):
            ids = image[:, 0, 0, 0].astype(int)
            counted += list(ids[weight == 1])
            np.testing.assert_array_equal(label, ids % 10)
    assert sorted(counted) == list(range(13))


def test_normalisation_uses_the_dataset_statistics():
    data = numbered_data()
    data = Data(**{**data.__dict__, "mean": (10.0, 20.0, 30.0), "std": (2.0, 4.0, 5.0)})
    out = input_pipeline.normalise(tf.constant(data.train_images[12:13]), data).numpy()
    np.testing.assert_allclose(out[0, 0, 0], [(12 - 10) / 2, (12 - 20) / 4, (12 - 30) / 5])
    assert out.dtype == np.float32


def test_batch_sizes_are_checked():
    with pytest.raises(ValueError, match="batch_size=10 is not divisible by 4 replicas; use a multiple of 4"):
        input_pipeline.per_replica_batch_size(10, 4)
    with pytest.raises(ValueError, match="batch_size=64 is larger than the 40 training examples"):
        input_pipeline.steps_per_epoch(40, 64)
    assert input_pipeline.steps_per_epoch(50_000, 512) == 97


@pytest.mark.parametrize("replicas", [1, 2])
def test_resident_batches_are_the_tf_data_batches(two_replicas, replicas):
    """With the training set on the device, the batch of (step, replica) is bit for bit the tf.data path's:
    same examples, normalisation and augmentation, across an epoch boundary, on every replica."""
    strategy = two_replicas if replicas == 2 else tf.distribute.get_strategy()
    data = input_pipeline.load(Config(dataset="quickstart"))
    augmentation = Augmentation()
    fed = take_steps(
        strategy,
        input_pipeline.train_dataset(strategy, data, pipeline_config(2000, seed=3, augmentation=augmentation)),
        7,
    )
    images, labels = tf.constant(data.train_images), tf.constant(data.train_labels)
    for step, batches in enumerate(fed):  # 5 steps an epoch; a (images, labels) pair per replica
        assert len(batches) == replicas
        for replica, (fed_images, fed_labels) in enumerate(batches):
            config = pipeline_config(2000, seed=3, augmentation=augmentation)
            resident = input_pipeline.resident_batch(images, labels, data, config, replicas, step, replica)
            np.testing.assert_array_equal(resident[0].numpy(), fed_images)
            np.testing.assert_array_equal(resident[1].numpy(), fed_labels)


@pytest.mark.parametrize("num_examples, seed, epoch", [(10, 0, 0), (1000, 7, 3), (50000, 1234, 17)])
def test_the_int64_epoch_order_is_the_int32_permutation_of_before(num_examples, seed, epoch):
    """The order became int64 (GPU kernels keep int64 in device memory, int32 on the host): the same permutation,
    so runs and checkpoints from before see the same batches."""
    before = tf.random.experimental.stateless_shuffle(tf.range(num_examples, dtype=tf.int32), seed=[seed, epoch])
    after = input_pipeline.pipeline.epoch_order(num_examples, seed, epoch)
    assert after.dtype == tf.int64
    np.testing.assert_array_equal(after.numpy(), before.numpy())


def oriented_data(num_train=40):
    """Images whose channel 0 is their example number and channel 1 their column, so a batch says which
    examples it holds and which of them are mirrored."""
    images = np.zeros((num_train, 4, 4, 3), np.uint8)
    images[..., 0] = np.arange(num_train)[:, None, None]
    images[..., 1] = np.arange(4)[None, None, :]
    labels = np.arange(num_train, dtype=np.int32) % 10
    return Data("oriented", images, labels, images[:8], labels[:8], 10, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0))


def flip_states(steps):
    """{example: mirrored} over the batches of `steps`."""
    states = {}
    for step in steps:
        for images, _ in step:
            states.update({int(image[0, 0, 0]): bool(image[0, 0, 1] == 3) for image in images})
    return states


def test_the_alternating_flip_mirrors_half_in_epoch_0_then_every_image_in_alternate_epochs(two_replicas):
    data = oriented_data()
    augmentation = Augmentation(crop_padding=0, cutout=0, flip=True, alternate_flip=True)
    dataset = input_pipeline.train_dataset(two_replicas, data, pipeline_config(8, seed=5, augmentation=augmentation))
    steps = take_steps(two_replicas, dataset, 15)  # 3 epochs of 5 steps
    epochs = [flip_states(steps[5 * e : 5 * e + 5]) for e in range(3)]
    assert all(sorted(states) == list(range(40)) for states in epochs)
    assert sum(epochs[0].values()) == 20  # exactly half in epoch 0
    for i in range(40):
        assert epochs[1][i] != epochs[0][i] and epochs[2][i] == epochs[0][i]
    # A function of the seed: another seed mirrors another half.
    other = take_steps(
        two_replicas,
        input_pipeline.train_dataset(two_replicas, data, pipeline_config(8, seed=6, alternate_flip=True)),
        5,
    )
    assert flip_states(other) != epochs[0] and sum(flip_states(other).values()) == 20
    # Resumed mid-epoch-1, and on one replica: the same images, flipped the same way.
    resumed = take_steps(
        two_replicas,
        input_pipeline.train_dataset(two_replicas, data, pipeline_config(8, seed=5, alternate_flip=True), 7),
        3,
    )
    for a, b in zip(resumed, steps[7:10]):
        for (images_a, _), (images_b, _) in zip(a, b):
            np.testing.assert_array_equal(images_a, images_b)
    one = tf.distribute.get_strategy()
    single = take_steps(
        one, input_pipeline.train_dataset(one, data, pipeline_config(8, seed=5, alternate_flip=True)), 10
    )
    assert flip_states(single[5:]) == epochs[1]
    # The device-resident path: the same batches, bit for bit.
    images, labels = tf.constant(data.train_images), tf.constant(data.train_labels)
    flips = input_pipeline.first_epoch_flips(40, 5)
    for step in range(15):
        for replica in range(2):
            config = pipeline_config(8, seed=5, alternate_flip=True)
            resident = input_pipeline.resident_batch(images, labels, data, config, 2, step, replica, first_flips=flips)
            np.testing.assert_array_equal(resident[0].numpy(), steps[step][replica][0])
