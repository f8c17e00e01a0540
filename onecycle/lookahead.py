"""Lookahead as airbench does it: every k steps the weights move to an exponential average of themselves.

airbench94 (Keller Jordan, 2024) credits it with 13.5 -> 12.0 epochs to 94% on CIFAR-10. After the optimizer's
update that brings it to step s (s = `optimizer.iterations` after the update):

    if s % k == 0:   average = decay(s) * average + (1 - decay(s)) * weights;   weights = average
    at s == T:       weights = average (and if T % k == 0, after that step's move)

with decay(s) = decay_per_step**k * (s / T)**3: the average follows the weights closely early (a small decay)
and holds on to its past late, when the learning rate anneals. The weights include BatchNorm's moving statistics
(airbench averages the whole state dict). Everything is a function of s, computed in the graph without a
branch, and the average is a variable (saved in checkpoints), so a resumed run continues it exactly.

It is not Keras's `use_ema` (`ema_momentum`): that average is only evaluated and exported, never written back
into the weights being trained; this one is, every k steps.
"""

import tensorflow as tf


class Lookahead(tf.Module):
    """The average of `weights` and its update; create it in the strategy's scope, after the weights' own
    initialisation (the average starts as a copy of them).

    Args:
        weights: the model's float weights (`model.weights`: trainable ones and BatchNorm statistics).
        total_steps: the run's length T, at whose end the average is copied into the weights.
        every: k, the steps between moves (airbench: 5).
        decay_per_step: airbench's 0.95; a move's decay is `decay_per_step**every * (s / T)**3`.

    Example (a custom loop; `training.loops` does this after each `strategy.run` of a step):
        >>> lookahead = onecycle.Lookahead(model.weights, total_steps=475)
        >>> ... optimizer.apply(gradients, model.trainable_variables); lookahead.update(optimizer.iterations)
    """

    def __init__(self, weights, total_steps, every=5, decay_per_step=0.95):
        super().__init__(name="lookahead")
        if every < 1 or total_steps < 1 or not 0 <= decay_per_step < 1:
            raise ValueError(
                f"Lookahead needs every >= 1, total_steps >= 1 and decay_per_step in [0, 1), got {every}, "
                f"{total_steps} and {decay_per_step}"
            )
        self.total_steps, self.every, self.decay_per_step = int(total_steps), int(every), float(decay_per_step)
        self.weights = [w for w in weights if tf.as_dtype(w.dtype).is_floating]
        self.averages = [
            tf.Variable(tf.convert_to_tensor(w), trainable=False, name=f"lookahead_{i}")
            for i, w in enumerate(self.weights)
        ]
        # the step of the last move: a step that float16 loss scaling skipped does not move twice
        self.moved_at = tf.Variable(tf.constant(0, tf.int64), trainable=False, name="lookahead_moved_at")

    def decay(self, step):
        """The decay of the move at step `step` (1.0 for the final copy of a run whose T is not a multiple of k)."""
        step = tf.cast(step, tf.int64)
        progress = tf.cast(step, tf.float32) / self.total_steps
        moving = self.decay_per_step**self.every * tf.minimum(progress, 1.0) ** 3
        return tf.where((step >= self.total_steps) & (step % self.every != 0), 1.0, moving)

    def update(self, step):
        """After the update that brought the optimizer to `step`: the move if it is due, else nothing.
        In cross-replica context (outside `strategy.run`): every replica's copy gets the same values."""
        step = tf.cast(step, tf.int64)
        due = ((step % self.every == 0) | (step >= self.total_steps)) & (step != self.moved_at) & (step > 0)
        weight_of_weights = tf.where(due, 1.0 - self.decay(step), 0.0)
        for weight, average in zip(self.weights, self.averages):
            current = tf.convert_to_tensor(weight)
            moved = average + tf.cast(weight_of_weights, average.dtype) * (current - average)
            average.assign(moved)
            weight.assign(tf.where(due, moved, current))
        self.moved_at.assign(tf.where(due, step, self.moved_at))
