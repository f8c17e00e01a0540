"""The conventional schedules 1Cycle is measured against, as pure functions of the optimizer step.

Like `OneCycle`, each is a Keras `LearningRateSchedule`: elementwise on numbers or tensors, evaluated inside the
compiled step at `optimizer.iterations`, serializable, and usable alone in any Keras optimizer. They schedule the
learning rate only; their momentum is the optimizer's constant (the trainer uses `max_momentum`).

- `Constant(lr)`: the same rate at every step.
- `StepDecay(max_lr, total_steps, milestones=(0.5, 0.75), factor=0.1)`: piecewise constant; the rate is multiplied
  by `factor` at each milestone, given as a fraction of the run (the classic ResNet schedule: x0.1 at 50% and 75%).
- `WarmupCosine(max_lr, total_steps, warmup_pct=0.05, final_lr_ratio=0.0)`: a linear warm-up to `max_lr`, then a
  cosine decay to `max_lr * final_lr_ratio` at the last step (Goyal et al.'s warm-up, Loshchilov & Hutter's cosine).
- `LinearDecay(max_lr, total_steps, final_lr_ratio=0.0)`: straight down from `max_lr` at step 0, floored at
  `max_lr * final_lr_ratio` (the newest CIFAR-10 speed records' schedule, with Muon).

Past `total_steps` each holds its final value, as `OneCycle` does.
"""

import keras
import tensorflow as tf

from onecycle.schedule import anneal


def _check(condition, schedule, message):
    if not condition:
        raise ValueError(f"{schedule}: {message}")


def _check_run(schedule, max_lr, total_steps):
    _check(max_lr > 0, schedule, f"max_lr must be > 0, got {max_lr}")
    _check(
        isinstance(total_steps, int) and total_steps > 0,
        schedule,
        f"total_steps must be a positive int, got {total_steps!r}",
    )


@keras.saving.register_keras_serializable(package="onecycle")
class Constant(keras.optimizers.schedules.LearningRateSchedule):
    """The same learning rate `lr` at every step.

    Args:
        lr: the learning rate, > 0.

    Example:
        >>> optimizer = onecycle.SGD(onecycle.Constant(0.1), momentum=0.9)
    """

    def __init__(self, lr):
        super().__init__()
        _check(lr > 0, "Constant", f"lr must be > 0, got {lr}")
        self.lr = float(lr)

    def __call__(self, step):
        return tf.fill(tf.shape(step), tf.constant(self.lr, tf.float32))

    def get_config(self):
        return {"lr": self.lr}


@keras.saving.register_keras_serializable(package="onecycle")
class StepDecay(keras.optimizers.schedules.LearningRateSchedule):
    """`max_lr * factor**k`, k the number of milestones reached; milestone i is step `round(milestones[i] * T)`.

    Args:
        max_lr: the learning rate before the first milestone, > 0.
        total_steps: the run's length T in optimizer steps, an int > 0.
        milestones: increasing fractions of the run in (0, 1). Default (0.5, 0.75).
        factor: the learning rate's factor at each milestone, in (0, 1). Default 0.1.

    Example:
        >>> schedule = onecycle.StepDecay(0.1, 1000)  # 0.1, then 0.01 from step 500, 0.001 from step 750
    """

    def __init__(self, max_lr, total_steps, milestones=(0.5, 0.75), factor=0.1):
        super().__init__()
        _check_run("StepDecay", max_lr, total_steps)
        milestones = tuple(float(m) for m in milestones)
        _check(
            all(0 < m < 1 for m in milestones) and list(milestones) == sorted(set(milestones)),
            "StepDecay",
            f"milestones must be increasing fractions of the run in (0, 1), got {milestones} (0.5 means half way)",
        )
        _check(0 < factor < 1, "StepDecay", f"factor must be in (0, 1), got {factor}")
        self.max_lr, self.total_steps, self.milestones, self.factor = float(max_lr), total_steps, milestones, factor
        self._boundaries = [round(m * total_steps) for m in milestones]

    def __call__(self, step):
        step = tf.cast(step, tf.int64)
        reached = tf.zeros_like(step, tf.float32)
        for boundary in self._boundaries:
            reached += tf.cast(step >= boundary, tf.float32)
        return self.max_lr * tf.pow(tf.constant(self.factor, tf.float32), reached)

    def get_config(self):
        return {
            "max_lr": self.max_lr,
            "total_steps": self.total_steps,
            "milestones": list(self.milestones),
            "factor": self.factor,
        }


@keras.saving.register_keras_serializable(package="onecycle")
class WarmupCosine(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up over `W = round(warmup_pct * T)` steps, then cosine decay to `max_lr * final_lr_ratio`.

    Step s < W gets `max_lr * (s + 1) / W` (the first update is already non-zero; step W-1 reaches `max_lr`).
    Steps W..T-1 follow `final + (max_lr - final) * (1 + cos(pi * (s - W) / (T - 1 - W))) / 2`, so step W is at
    `max_lr` and the last step at the floor.

    Args:
        max_lr: the peak learning rate, > 0.
        total_steps: the run's length T in optimizer steps, an int > 0.
        warmup_pct: the fraction of the run warming up, in [0, 1). Default 0.05.
        final_lr_ratio: the last learning rate as a fraction of `max_lr`, in [0, 1). Default 0.

    Example:
        >>> schedule = onecycle.WarmupCosine(0.4, 2328, warmup_pct=0.05)
    """

    def __init__(self, max_lr, total_steps, warmup_pct=0.05, final_lr_ratio=0.0):
        super().__init__()
        _check_run("WarmupCosine", max_lr, total_steps)
        _check(
            0 <= warmup_pct < 1,
            "WarmupCosine",
            f"warmup_pct must be a fraction in [0, 1), got {warmup_pct} (0.05 means 5% of the steps)",
        )
        _check(0 <= final_lr_ratio < 1, "WarmupCosine", f"final_lr_ratio must be in [0, 1), got {final_lr_ratio}")
        self.max_lr, self.total_steps = float(max_lr), total_steps
        self.warmup_pct, self.final_lr_ratio = float(warmup_pct), float(final_lr_ratio)
        self.warmup_steps = round(self.warmup_pct * total_steps)
        _check(
            total_steps - 1 - self.warmup_steps > 0,
            "WarmupCosine",
            f"the cosine phase would span {total_steps - 1 - self.warmup_steps} steps with total_steps={total_steps} "
            f"and warmup_pct={warmup_pct}; use more steps or a smaller warmup_pct",
        )

    def __call__(self, step):
        step = tf.cast(step, tf.float32)
        warmup = self.max_lr * (step + 1) / max(self.warmup_steps, 1)
        span = float(self.total_steps - 1 - self.warmup_steps)
        decaying = tf.clip_by_value(step - self.warmup_steps, 0.0, span)
        cosine = anneal(
            "cos", self.max_lr, self.max_lr * self.final_lr_ratio, decaying / span, (span - decaying) / span
        )
        return tf.where(step < self.warmup_steps, warmup, cosine)

    def get_config(self):
        return {
            "max_lr": self.max_lr,
            "total_steps": self.total_steps,
            "warmup_pct": self.warmup_pct,
            "final_lr_ratio": self.final_lr_ratio,
        }


@keras.saving.register_keras_serializable(package="onecycle")
class LinearDecay(keras.optimizers.schedules.LearningRateSchedule):
    """A straight line from `max_lr` at step 0 to 0 at step `total_steps`, held at `max_lr * final_lr_ratio` once
    it gets there: the newest CIFAR-10 speed records' schedule (airbench94_muon, hiverge: no warm-up, to 0; E1:
    floored at 0.05).

    Args:
        max_lr: the first (and highest) learning rate, > 0.
        total_steps: the step at which the line reaches 0, an int > 0.
        final_lr_ratio: the floor, as a fraction of `max_lr`, in [0, 1). Default 0.

    Example:
        >>> schedule = onecycle.LinearDecay(0.2255, 284, final_lr_ratio=0.05)
    """

    def __init__(self, max_lr, total_steps, final_lr_ratio=0.0):
        super().__init__()
        _check_run("LinearDecay", max_lr, total_steps)
        _check(0 <= final_lr_ratio < 1, "LinearDecay", f"final_lr_ratio must be in [0, 1), got {final_lr_ratio}")
        self.max_lr, self.total_steps, self.final_lr_ratio = float(max_lr), total_steps, float(final_lr_ratio)

    def __call__(self, step):
        fraction = 1.0 - tf.cast(step, tf.float32) / self.total_steps
        return self.max_lr * tf.maximum(fraction, self.final_lr_ratio)

    def get_config(self):
        return {"max_lr": self.max_lr, "total_steps": self.total_steps, "final_lr_ratio": self.final_lr_ratio}
