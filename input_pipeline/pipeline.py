"""Per-replica training and evaluation batches, distributed with tf.distribute, from a dataset in memory (`Data`)
or read from disk by index (`records.DiskData`).

Training epochs are index permutations: epoch e's order is `stateless_shuffle(range(N), seed=[seed, e])`, cut into
`steps_per_epoch` global batches (the remainder N mod global_batch is dropped, a different part each epoch), and
each global batch into one slice per replica. Each worker's input pipeline takes the columns of its own replicas,
so every example appears once per epoch across all replicas. Because the order is a function of (seed, epoch),
a run resumed at step k starts mid-epoch by slicing that index list: nothing consumed is read again.

Images are gathered a batch at a time (from memory, or read from disk and cropped: records.py), normalised, and
augmented batch-wise in the graph (or, with `augmentation=None`, left for the trainer to augment on the
accelerator). With the training set resident on the
accelerator, `resident_batch` computes the same batch inside the training step from (seed, step, replica).
Evaluation pads the last global batch with weight-0 examples, so each evaluation image counts exactly once
whatever the batch and replica count.

Host memory, read from disk: at most one batch of records per core being read and one image per core being
decoded (tf.data's autotuner runs no more calls than cores), the batch being assembled, `PREFETCH_STEPS` steps of
prefetched batches, and the epoch's index list (4 bytes an example); it does not grow with the dataset or the run.
"""

import numpy as np
import tensorflow as tf

from input_pipeline import crops, records
from input_pipeline.augmentations import augment
from input_pipeline.errors import DatasetError

_FOREVER = 2**62
_FLIP_STREAM = -1  # epoch_order's "epoch" of the alternating flip's first-epoch choice (never a real epoch)
PREFETCH_STEPS = 2  # steps of batches a worker's pipeline keeps ready, when it reads from disk


def per_replica_batch_size(global_batch, num_replicas):
    """The global batch split evenly over the replicas; an uneven split is an error, not a silent rounding."""
    if global_batch <= 0 or global_batch % num_replicas:
        raise DatasetError(
            f"--config.batch_size={global_batch} is not divisible by {num_replicas} replicas; use a multiple of "
            f"{num_replicas} (e.g. {max(num_replicas, global_batch // num_replicas * num_replicas)})"
        )
    return global_batch // num_replicas


def steps_per_epoch(num_examples, global_batch):
    """floor(num_examples / global_batch): every step sees a full global batch."""
    if global_batch > num_examples:
        raise DatasetError(f"--config.batch_size={global_batch} is larger than the {num_examples} training examples")
    return num_examples // global_batch


def normalise(images, data):
    """uint8 images -> float32, per-channel standardised with the dataset's own statistics."""
    return (tf.cast(images, tf.float32) - data.mean) / data.std


def epoch_order(num_examples, seed, epoch):
    """Epoch `epoch`'s order of the training examples: a permutation that is a function of (seed, epoch) only.

    int64, the index type GPU kernels hold in device memory (int32 tensors live on the host there)."""
    return tf.random.experimental.stateless_shuffle(tf.range(num_examples, dtype=tf.int64), seed=[seed, epoch])


def steps_examples(num_train, config, first_step, end_step):
    """The training examples of global steps first_step..end_step-1, every replica's, in the order they are read."""
    epoch_steps, batch = steps_per_epoch(num_train, config.batch_size), config.batch_size
    examples, orders = [], {}
    for step in range(first_step, end_step):
        epoch, position = divmod(step, epoch_steps)
        if epoch not in orders:
            orders[epoch] = epoch_order(num_train, config.seed, epoch).numpy()
        examples.append(orders[epoch][position * batch : (position + 1) * batch])
    return np.concatenate(examples) if examples else np.zeros([0], np.int64)


def first_epoch_flips(num_examples, seed):
    """uint8 [N]: 1 for the examples the alternating flip mirrors in epoch 0, exactly floor(N / 2) of them, chosen
    by the seed alone (a permutation's first half, computed on the host like the epoch orders)."""
    chosen = epoch_order(num_examples, seed, _FLIP_STREAM)[: num_examples // 2]
    return tf.scatter_nd(chosen[:, None], tf.ones_like(chosen, tf.uint8), [num_examples])


def alternately_flipped(images, indices, epoch, first_flips):
    """airbench's alternating flip: example i is mirrored in epoch e iff `first_flips[i]` xor (e is odd), so over
    two epochs every image is seen once each way (random flips repeat a side half the time)."""
    mirrored = tf.not_equal(tf.cast(_gather(first_flips, indices), tf.int64), tf.cast(epoch, tf.int64) % 2)
    return tf.where(mirrored[:, None, None, None], tf.reverse(images, axis=[2]), images)


def resident_batch(images, labels, data, config, num_replicas, step, replica, order=None, first_flips=None):
    """Replica `replica`'s batch of global step `step`, gathered from the whole training set held in `images` and
    `labels` (tensors on the replica's device): the same examples, normalisation and augmentation as
    `train_dataset` gives that replica at that step, computed inside the training step from (seed, step).
    `order`: the step's epoch's `epoch_order` (a tensor or variable), if the caller holds it (else it is
    computed here). `first_flips` (`first_epoch_flips`): flip by the alternating rule, before the augmentation."""
    global_batch, seed, augmentation = config.batch_size, config.seed, pipeline_augmentation(config)
    per_replica = per_replica_batch_size(global_batch, num_replicas)
    step, replica = tf.cast(step, tf.int64), tf.cast(replica, tf.int64)
    epoch_steps = steps_per_epoch(data.num_train, global_batch)
    epoch, position = step // epoch_steps, step % epoch_steps
    start = position * global_batch + replica * per_replica
    order = epoch_order(data.num_train, tf.constant(seed, tf.int64), epoch) if order is None else order
    indices = _gather(order, start + tf.range(per_replica, dtype=tf.int64))  # a slice whose start stays on the device
    batch = _gather(images, indices)
    if first_flips is not None:
        batch = alternately_flipped(batch, indices, epoch, first_flips)
    batch = normalise(batch, data)
    if augmentation is not None:
        batch = augment(batch, tf.stack([tf.constant(seed, tf.int64), step * num_replicas + replica]), augmentation)
    return batch, _gather(labels, indices)


def pipeline_augmentation(config):
    """The augmentation the input pipeline applies: none when the training step augments on the accelerator
    (`config.augment_on_device`)."""
    return None if config.augment_on_device else config.augmentation


def alternates_flips(config):
    """Whether the config flips by airbench's alternating rule (by example and epoch, in the pipeline)."""
    return config.augmentation.flip and config.augmentation.alternate_flip


def _gather(values, indices):
    """`tf.gather` of a variable's rows as `ResourceGather`: a mirrored variable read whole would be gathered by
    `GatherV2`, which has no GPU kernel for uint8."""
    if isinstance(values, tf.Variable):  # in a replica's step, a mirrored variable's handle is that replica's copy
        return tf.raw_ops.ResourceGather(resource=values.handle, indices=indices, dtype=values.dtype)
    return tf.gather(values, indices)


def train_dataset(strategy, data, config, start_step=0):
    """An endless distributed dataset of (images, labels) per-replica batches of `config.batch_size` (global),
    shuffled from `config.seed`, starting at global `start_step`, augmented by `pipeline_augmentation(config)`.

    Each element also carries its global step and replica index, from which the augmentation seed is derived,
    and its examples' indices, from which the alternating flip (applied here even when the augmentation is left
    to the accelerator: it comes first, and is exact) mirrors them.
    """
    global_batch, seed, augmentation = config.batch_size, config.seed, pipeline_augmentation(config)
    num_replicas = strategy.num_replicas_in_sync
    per_replica = per_replica_batch_size(global_batch, num_replicas)
    epoch_steps = steps_per_epoch(data.num_train, global_batch)
    first_epoch, skipped_steps = divmod(start_step, epoch_steps)
    source = _source(data, "train")
    first_flips = first_epoch_flips(data.num_train, seed) if alternates_flips(config) else None

    def dataset_fn(context):
        first_replica, local_replicas = _local_replicas(context, num_replicas)

        def epoch_batches(epoch):
            order = epoch_order(data.num_train, seed, epoch)
            order = tf.reshape(order[: epoch_steps * global_batch], [epoch_steps, num_replicas, per_replica])
            steps = epoch * epoch_steps + tf.range(epoch_steps, dtype=tf.int64)
            return tf.data.Dataset.from_tensor_slices((steps, order[:, first_replica : first_replica + local_replicas]))

        def replica_batches(step, indices):
            steps, replicas = tf.fill([local_replicas], step), first_replica + tf.range(local_replicas, dtype=tf.int64)
            return tf.data.Dataset.from_tensor_slices(((steps, replicas, indices), indices))

        def batch_seed(key):
            step, replica, _ = key
            return tf.stack([tf.cast(seed, tf.int64), step * num_replicas + replica])

        def crop(encoded, key, position):
            seed_of_example = tf.random.experimental.stateless_fold_in(batch_seed(key), position)
            return crops.random_resized_crop(encoded, data.image_size, seed_of_example)

        def finish(key, images, labels):
            step, _, indices = key
            if first_flips is not None:
                images = alternately_flipped(images, indices, step // epoch_steps, first_flips)
            batch = normalise(images, data)
            if augmentation is not None:
                batch = augment(batch, batch_seed(key), augmentation)
            return batch, labels

        dataset = tf.data.Dataset.range(first_epoch, _FOREVER).flat_map(epoch_batches).skip(skipped_steps)
        dataset = _batches(dataset.flat_map(replica_batches), source, per_replica, finish, crop)
        return dataset.prefetch(_prefetched(data, local_replicas))

    return strategy.distribute_datasets_from_function(dataset_fn)


def eval_dataset(strategy, data, config):
    """(distributed dataset of (images, labels, weights), number of steps) covering every eval example once, in
    global batches of `config.batch_size`."""
    global_batch = config.batch_size
    num_replicas = strategy.num_replicas_in_sync
    per_replica = per_replica_batch_size(global_batch, num_replicas)
    num_steps = -(-data.num_eval // global_batch)
    source = _source(data, "eval")

    def dataset_fn(context):
        first_replica, local_replicas = _local_replicas(context, num_replicas)
        positions = tf.reshape(tf.range(num_steps * global_batch), [num_steps, num_replicas, per_replica])
        positions = tf.reshape(positions[:, first_replica : first_replica + local_replicas], [-1, per_replica])

        def keyed(position):  # the key is the examples' weights: 0 for the padding past the last example
            return tf.cast(position < data.num_eval, tf.float32), tf.minimum(position, data.num_eval - 1)

        def crop(encoded, weights, position):
            return crops.centre_crop(encoded, data.image_size)

        def finish(weights, images, labels):
            return normalise(images, data), labels, weights

        dataset = tf.data.Dataset.from_tensor_slices(positions).map(keyed)
        dataset = _batches(dataset, source, per_replica, finish, crop)
        return dataset.prefetch(_prefetched(data, local_replicas))

    return strategy.distribute_datasets_from_function(dataset_fn), num_steps


def _source(data, split):
    """Where `split` ("train" or "eval") is gathered from: its `records.Split` on disk, or its (images, labels)
    as constants in memory."""
    if not data.in_memory:
        return data.train if split == "train" else data.eval
    arrays = (data.train_images, data.train_labels) if split == "train" else (data.eval_images, data.eval_labels)
    return tuple(tf.constant(array) for array in arrays)


def _batches(keyed, source, batch_size, finish, crop):
    """(key, indices [B]) elements -> `finish(key, uint8 images [B, H, W, 3], int32 labels [B])`: gathered from
    memory in the same map as `finish`, or read from disk and each image decoded by `crop(encoded, key, position)`
    (records.decoded_batches)."""
    if isinstance(source, records.Split):
        examples = records.decoded_batches(keyed, source, batch_size, crop)
        return examples.map(finish, num_parallel_calls=tf.data.AUTOTUNE)
    images, labels = source
    return keyed.map(
        lambda key, indices: finish(key, tf.gather(images, indices), tf.gather(labels, indices)),
        num_parallel_calls=tf.data.AUTOTUNE,
    )


def _prefetched(data, local_replicas):
    """Batches to prefetch: PREFETCH_STEPS steps' when read from disk (a stated bound); in memory, autotuned."""
    return tf.data.AUTOTUNE if data.in_memory else PREFETCH_STEPS * local_replicas


def _local_replicas(context, num_replicas):
    """(index of this input pipeline's first replica, how many replicas it feeds)."""
    local = num_replicas // context.num_input_pipelines
    return context.input_pipeline_id * local, local
