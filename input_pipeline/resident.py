"""The training set resident on every replica's device, batched inside the compiled step (airbench's trick)."""

import tensorflow as tf

from input_pipeline.pipeline import alternates_flips, epoch_order, first_epoch_flips, resident_batch, steps_per_epoch


class ResidentTrainingSet:
    """The training set as variables on every replica's device; `batch(step, replica)` cuts a replica's batch of
    a global step from them inside the compiled step (`resident_batch`: the tf.data path's batch, bit for bit).

    The epoch's order of the examples is held on the device too: `prepare_call(step, most_steps)`, called on the
    host before each call into the loop, sets it for the call's epoch and cuts the call at the epoch's end, so
    the step reads the order with no branch: on a GPU a `tf.cond` waits for its predicate to reach the host,
    and the shuffle has no GPU kernel.

    A synthetic training set (throughput trials) is generated on the device from the seed, never copied from the
    host: random images and labels like the host's synthetic set, but not the same values.

    Args:
        strategy: the run's `tf.distribute` strategy; the variables are mirrored on each of its replicas.
        data: the training set in memory (`input_pipeline.Data`).
        config: the run's config: its batch (global), seed (the epoch order and the augmentation derive from
            it) and augmentation (with the alternating flip, `first_epoch_flips` are held on the device).
    """

    def __init__(self, strategy, data, config):
        self.data, self.config, self.seed = data, config, config.seed
        self.num_replicas = strategy.num_replicas_in_sync
        self.steps_per_epoch = steps_per_epoch(data.num_train, config.batch_size)
        images, labels = (
            _synthetic_on_device(data, self.seed) if data.synthetic else (data.train_images, data.train_labels)
        )
        flips = first_epoch_flips(data.num_train, self.seed) if alternates_flips(config) else None  # on the host
        with strategy.scope():
            self.images = tf.Variable(images, trainable=False, name="resident_images", dtype=tf.uint8)
            # int64: GPUs hold no int32 variable (it would live on the host, gathered there every step)
            self.labels = tf.Variable(labels, trainable=False, name="resident_labels", dtype=tf.int64)
            self.order = tf.Variable(tf.zeros([data.num_train], tf.int64), trainable=False, name="epoch_order")
            self.first_flips = None
            if flips is not None:
                self.first_flips = tf.Variable(flips, trainable=False, name="first_epoch_flips", dtype=tf.uint8)
        self.order_epoch = None  # the epoch whose order `order` holds

    def prepare_call(self, step, most_steps):
        """How many steps a call into the loop from global step `step` runs: `most_steps`, cut at the end of its
        epoch, whose order this sets on the device first (host code, between calls; the order is computed once
        an epoch)."""
        epoch, offset = divmod(int(step), self.steps_per_epoch)
        if epoch != self.order_epoch:
            self.order.assign(epoch_order(self.data.num_train, self.seed, epoch))
            self.order_epoch = epoch
        return min(int(most_steps), self.steps_per_epoch - offset)

    def batch(self, step, replica):
        """(images, labels) of replica `replica` at global step `step`, inside the compiled step; `step` is in
        the epoch of the last `prepare_call`."""
        return resident_batch(
            self.images,
            self.labels,
            self.data,
            self.config,
            self.num_replicas,
            step,
            replica,
            order=self.order,
            first_flips=self.first_flips,
        )


def _synthetic_on_device(data, seed):
    """Initial values, as functions that run where the variables are made, for random images and labels of the
    synthetic training set's shapes."""
    seed = tf.constant([seed, 0], tf.int64)

    def images():
        return tf.cast(tf.random.stateless_uniform(data.train_images.shape, seed, maxval=256, dtype=tf.int32), tf.uint8)

    def labels():
        return tf.random.stateless_uniform(data.train_labels.shape, seed + 1, maxval=data.num_classes, dtype=tf.int64)

    return images, labels
