"""Lookahead as airbench94 does it: every k steps the weights move to an exponential average of themselves.

airbench94 (Keller Jordan, 2024) credits it with 13.5 -> 12.0 epochs to 94% on CIFAR-10. Its loop, after the
optimizer's update that brings it to step s (s = `optimizer.iterations` after the update), from `start_step` on
(airbench: 3 epochs):

    at the first s > start_step with s % k == 0:   average = weights   (the average begins)
    at every later s with s % k == 0:             average = decay(s) * average + (1 - decay(s)) * weights;
                                                  weights = average
    at every epoch's last step, and at s == T:    weights = average   (a copy, unless that step just moved)

with decay(s) = decay_per_step**k * (s / T)**3: the average follows the weights closely early (a small decay)
and holds on to its past late, when the learning rate anneals. A copy that is not a move puts the weights back to
the average of the last move: airbench's epoch-end copy discards the up to k-1 steps since then (its weights, not
its momentum), and this does the same. The weights include BatchNorm's moving statistics (airbench averages the
whole state dict). Everything is a function of s, computed in the graph without a branch, and the average is a
variable (saved in checkpoints), so a resumed run continues it exactly.

It is not Keras's `use_ema` (`ema_momentum`): that average is only evaluated and exported, never written back
into the weights being trained; this one is, every k steps.
"""

import tensorflow as tf


class Lookahead(tf.Module):
    """The average of `weights` and its update; create it in the strategy's scope. The average is taken from the
    weights at its first move, so their values when it is created do not matter.

    Args:
        weights: the model's float weights (`model.weights`: trainable ones and BatchNorm statistics).
        total_steps: the run's length T, at whose end the average is copied into the weights.
        every: k, the steps between moves (airbench: 5).
        decay_per_step: airbench's 0.95; a move's decay is `decay_per_step**every * (s / T)**3`.
        start_step: the average begins at the first multiple of k after it (airbench: 3 epochs' steps).
        copy_every: the average is also copied into the weights every this many steps (airbench: an epoch's);
            0: only at T.

    Example (a custom loop; `training.loops` does this after each `strategy.run` of a step):
        >>> lookahead = onecycle.Lookahead(model.weights, total_steps=475, start_step=144, copy_every=48)
        >>> ... optimizer.apply(gradients, model.trainable_variables); lookahead.update(optimizer.iterations)
    """

    def __init__(self, weights, total_steps, every=5, decay_per_step=0.95, start_step=0, copy_every=0):
        super().__init__(name="lookahead")
        if every < 1 or total_steps < 1 or not 0 <= decay_per_step < 1 or start_step < 0 or copy_every < 0:
            raise ValueError(
                "Lookahead needs every >= 1, total_steps >= 1, decay_per_step in [0, 1), start_step >= 0 and "
                f"copy_every >= 0, got {every}, {total_steps}, {decay_per_step}, {start_step} and {copy_every}"
            )
        self.total_steps, self.every, self.decay_per_step = int(total_steps), int(every), float(decay_per_step)
        self.first_step = (int(start_step) // self.every + 1) * self.every  # where the average begins
        self.copy_every = int(copy_every)
        self.weights = [w for w in weights if tf.as_dtype(w.dtype).is_floating]
        self.averages = [
            tf.Variable(tf.convert_to_tensor(w), trainable=False, name=f"lookahead_{i}")
            for i, w in enumerate(self.weights)
        ]
        # the step of the last move or copy: a step that float16 loss scaling skipped does not move twice
        self.moved_at = tf.Variable(tf.constant(0, tf.int64), trainable=False, name="lookahead_moved_at")

    def decay(self, step):
        """The decay of the update at step `step`: 0 where the average begins, 1 for a copy that is no move."""
        step = tf.cast(step, tf.int64)
        progress = tf.cast(step, tf.float32) / self.total_steps
        moving = self.decay_per_step**self.every * tf.minimum(progress, 1.0) ** 3
        moving = tf.where(step == self.first_step, 0.0, moving)
        return tf.where(step % self.every == 0, moving, 1.0)

    def update(self, step):
        """After the update that brought the optimizer to `step`: the move or copy if one is due, else nothing.
        In cross-replica context (outside `strategy.run`): every replica's copy gets the same values."""
        step = tf.cast(step, tf.int64)
        copy = step >= self.total_steps
        if self.copy_every:
            copy |= step % self.copy_every == 0
        due = (step >= self.first_step) & ((step % self.every == 0) | copy) & (step != self.moved_at)
        weight_of_weights = tf.where(due, 1.0 - self.decay(step), 0.0)
        for weight, average in zip(self.weights, self.averages):
            current = tf.convert_to_tensor(weight)
            moved = average + tf.cast(weight_of_weights, average.dtype) * (current - average)
            average.assign(moved)
            weight.assign(tf.where(due, moved, current))
        self.moved_at.assign(tf.where(due, step, self.moved_at))
