"""The compiled training and evaluation loops over `strategy.run`.

Each replica computes per-example losses, scales them by the *global* batch (so the all-reduced SUM of gradients
is the gradient of the global mean), and hands local gradients to the optimizer, which all-reduces them and
updates. Only the per-replica forward/backward is XLA-compiled: Keras 3's own `fit(jit_compile=True)` compiles
the cross-replica step and breaks with 2+ replicas. Several steps run per call, to cut Python overhead.
"""

from typing import NamedTuple

import keras
import tensorflow as tf

from input_pipeline import augment


def _sum_over_replicas(name):
    """A counter each replica adds to, read back as the sum over all replicas and workers."""
    return tf.Variable(
        0.0,
        name=name,
        trainable=False,
        synchronization=tf.VariableSynchronization.ON_READ,
        aggregation=tf.VariableAggregation.SUM,
    )


class Sums:
    """Loss, correct predictions and example count, accumulated on every replica; created in strategy scope."""

    def __init__(self):
        self.loss, self.correct, self.count = (_sum_over_replicas(n) for n in ("loss", "correct", "count"))

    def add(self, per_example_loss, logits, labels, weights):
        self.loss.assign_add(tf.reduce_sum(per_example_loss * weights))
        # int64: on a GPU an int32 argmax would be compared on the host, a copy every step
        predicted = tf.argmax(logits, axis=-1, output_type=tf.int64)
        correct = tf.cast(tf.equal(predicted, tf.cast(labels, tf.int64)), tf.float32)
        self.correct.assign_add(tf.reduce_sum(correct * weights))
        self.count.assign_add(tf.reduce_sum(weights))

    def result_and_reset(self):
        """(mean loss, accuracy) since the last reset."""
        count = max(float(self.count.read_value()), 1.0)
        result = float(self.loss.read_value()) / count, float(self.correct.read_value()) / count
        for variable in (self.loss, self.correct, self.count):
            variable.assign(0.0)
        return result


def predict_logits(model, images, flip=False, translate=False):
    """Evaluation logits (float32); with `flip`, the mean of the logits of each image and of its mirror image;
    with `translate` too, airbench's multi-crop TTA (its level 2): half that, plus a quarter each of the same
    for the image shifted one pixel down-right and one up-left (views (0,0) and (2,2) of it reflect-padded by 1)."""

    def logits_of(views):
        logits = tf.cast(model(views, training=False), tf.float32)
        if flip:
            logits = (logits + tf.cast(model(tf.reverse(views, axis=[2]), training=False), tf.float32)) / 2
        return logits

    logits = logits_of(images)
    if translate:
        height, width = images.shape[1], images.shape[2]
        padded = tf.pad(images, [[0, 0], [1, 1], [1, 1], [0, 0]], mode="REFLECT")
        shifted = [padded[:, :height, :width], padded[:, 2 : height + 2, 2 : width + 2]]
        logits = logits / 2 + (logits_of(shifted[0]) + logits_of(shifted[1])) / 4
    return logits


def tta_views(config):
    """How many forward passes an evaluation with the config's test-time augmentation makes of each image."""
    return (6 if config.eval_translate else 2) if config.eval_flip else 1


class Loops(NamedTuple):
    """The compiled loops of a run and the sums they accumulate into."""

    train: object  # train(train_input, num_steps, side=None): num_steps training steps, images resized to `side`
    eval: object  # eval(iterator, num_steps): num_steps evaluation steps, with the config's test-time augmentation
    train_sums: Sums
    eval_sums: Sums
    eval_plain: object = None  # the same without test-time augmentation (None when the config has none)


def make_loops(run, resident=None):
    """The `Loops` of a run (a `training.setup.Run`): `train(train_input, num_steps)` and `eval(iterator,
    num_steps)`, compiled (the per-replica part with XLA if the plan says so).

    `train_input` is an iterator over the distributed training dataset, or, with `resident` (a
    `ResidentTrainingSet`, whose `batch(global step, replica)` gives that replica's batch from data held on the
    device), a variable holding the global step of the call's first batch. With the run's Lookahead each step
    ends with its update, in cross-replica context.
    """
    strategy, model, optimizer, config, lookahead = run.strategy, run.model, run.optimizer, run.config, run.lookahead
    num_classes, global_batch = run.data.num_classes, config.batch_size
    loss_fn = keras.losses.CategoricalCrossentropy(
        from_logits=True, label_smoothing=config.label_smoothing, reduction=None
    )
    with strategy.scope():
        train_sums, eval_sums = Sums(), Sums()

    def per_example_loss(labels, logits):
        return loss_fn(tf.one_hot(labels, num_classes), tf.cast(logits, tf.float32))

    def forward_backward(images, labels, augmentation_seed=None, side=None):
        if augmentation_seed is not None:  # inside the XLA cluster when compiled, where no seed waits on the host
            images = augment(images, augmentation_seed, config.augmentation)
        if side is not None:  # progressive resizing: the whole scene downsampled, after its augmentation
            images = tf.image.resize(images, (side, side), method="bilinear", antialias=False)
        with tf.GradientTape() as tape:
            logits = model(images, training=True)
            losses = per_example_loss(labels, logits)
            loss = tf.nn.compute_average_loss(losses, global_batch_size=global_batch)
            scaled_loss = optimizer.scale_loss(loss)  # the loss scale under mixed_float16, else unchanged
        return tape.gradient(scaled_loss, model.trainable_variables), losses, logits

    def predict(images):
        return predict_logits(model, images, config.eval_flip, config.eval_translate)

    def predict_plain(images):
        return predict_logits(model, images)

    if run.plan.jit_compile:
        forward_backward = tf.function(forward_backward, jit_compile=True)
        predict = tf.function(predict, jit_compile=True)
        predict_plain = tf.function(predict_plain, jit_compile=True)

    def train_step(images, labels, side=None):
        seed = None
        if config.augment_on_device:
            context = tf.distribute.get_replica_context()
            replica = tf.cast(context.replica_id_in_sync_group, tf.int64)
            step = tf.cast(optimizer.iterations, tf.int64)
            seed = tf.stack([tf.constant(config.seed, tf.int64), step * context.num_replicas_in_sync + replica])
        gradients, losses, logits = forward_backward(images, labels, seed, side)
        optimizer.apply(gradients, model.trainable_variables)
        train_sums.add(losses, logits, labels, tf.ones_like(losses))

    def evaluation_loop(predict):
        def eval_step(images, labels, weights):
            logits = predict(images)
            eval_sums.add(per_example_loss(labels, logits), logits, labels, weights)

        @tf.function
        def eval_loop(iterator, num_steps):
            for _ in tf.range(num_steps):
                strategy.run(eval_step, args=next(iterator))

        return eval_loop

    def resident_train_step(step, side=None):
        images, labels = resident.batch(step, tf.distribute.get_replica_context().replica_id_in_sync_group)
        train_step(images, labels, side)

    @tf.function
    def train_loop(train_input, num_steps, side=None):  # a Python `side`: a trace (and XLA program) per size
        for i in tf.range(num_steps):
            if resident is None:
                strategy.run(train_step, args=next(train_input), kwargs={"side": side})
            else:
                step = tf.convert_to_tensor(train_input) + tf.cast(i, tf.int64)
                strategy.run(resident_train_step, args=(step,), kwargs={"side": side})
            if lookahead is not None:
                lookahead.update(optimizer.iterations)

    plain = evaluation_loop(predict_plain) if tta_views(config) > 1 else None
    return Loops(train_loop, evaluation_loop(predict), train_sums, eval_sums, plain)
