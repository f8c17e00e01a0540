"""The 1Cycle learning-rate and momentum schedule, as a pure function of the optimizer step.

Semantics follow PyTorch's `torch.optim.lr_scheduler.OneCycleLR` (same parameter names, defaults and values at
every step 0..T-1), with one deliberate difference: past the last step the schedule holds its final value instead
of extrapolating (PyTorch goes negative with the linear anneal, then raises).

fastai's `fit_one_cycle` defaults are the same curve family:

    OneCycle(max_lr, total_steps, pct_start=0.25, div_factor=25.0, final_div_factor=1e5 / 25.0,
             base_momentum=0.85, max_momentum=0.95)

(fastai's `div_final=1e5` divides `max_lr`; PyTorch's `final_div_factor` divides the *initial* lr
`max_lr / div_factor`, hence `1e5 / 25`.)
"""

import math

import keras
import tensorflow as tf

ANNEAL_STRATEGIES = ("cos", "linear")


@keras.saving.register_keras_serializable(package="onecycle")
class OneCycle(keras.optimizers.schedules.LearningRateSchedule):
    """Leslie Smith's 1Cycle policy: learning rate up then down, momentum down then up.

    `schedule(step)` is the learning rate and `schedule.momentum(step)` the momentum (or Adam's beta_1) for the
    update made at optimizer step `step` (0-based). Both accept Python numbers or tensors of any shape (they are
    elementwise), and run inside `tf.function` and XLA, so the optimizer evaluates them inside the compiled step.

    Two-phase (default): lr goes `max_lr / div_factor -> max_lr` over the first `pct_start` of the steps, then
    `max_lr -> max_lr / div_factor / final_div_factor`; momentum mirrors it `max_momentum -> base_momentum ->
    max_momentum`. Three-phase (Smith's original): up, back down to the initial lr symmetrically, then a final
    anneal to the minimum with momentum held at `max_momentum`. For `step >= total_steps` the final values hold.

    Args:
        max_lr: the peak learning rate (at the global batch size the optimizer sees).
        total_steps: the run's length in optimizer steps (`epochs * steps_per_epoch`), an int > 0.
        pct_start: the fraction of the steps spent warming up, in (0, 1); default 0.3 (PyTorch's).
        anneal_strategy: "cos" (default) or "linear".
        div_factor: the first learning rate is `max_lr / div_factor`; default 25.
        final_div_factor: the last is `max_lr / div_factor / final_div_factor`; default 1e4.
        three_phase: Smith's three phases instead of two; needs `pct_start <= 0.5`. Default False.
        base_momentum: the momentum at the peak learning rate; default 0.85.
        max_momentum: the momentum at the start and the end; default 0.95.

    Example:
        >>> schedule = onecycle.OneCycle(max_lr=0.4, total_steps=97 * 24)
        >>> optimizer = onecycle.SGD(schedule, momentum=0.9, nesterov=True)  # momentum follows the schedule
        >>> float(schedule(0)), float(schedule.momentum(0))  # (0.016, 0.95)
    """

    def __init__(
        self,
        max_lr,
        total_steps,
        pct_start=0.3,
        anneal_strategy="cos",
        div_factor=25.0,
        final_div_factor=1e4,
        three_phase=False,
        base_momentum=0.85,
        max_momentum=0.95,
    ):
        super().__init__()
        _check(max_lr > 0, f"max_lr must be > 0, got {max_lr}")
        _check(
            isinstance(total_steps, int) and total_steps > 0,
            f"total_steps must be a positive int, got {total_steps!r}",
        )
        _check(
            0 < pct_start < 1,
            f"pct_start must be a fraction in (0, 1), got {pct_start} (0.3 means 30% of the steps)",
        )
        _check(
            anneal_strategy in ANNEAL_STRATEGIES,
            f"anneal_strategy must be one of {ANNEAL_STRATEGIES}, got {anneal_strategy!r}",
        )
        _check(div_factor > 0, f"div_factor must be > 0, got {div_factor}")
        _check(final_div_factor > 0, f"final_div_factor must be > 0, got {final_div_factor}")
        _check(
            not (three_phase and pct_start > 0.5),
            f"three_phase needs pct_start <= 0.5 (warm-up and cool-down each take pct_start), got {pct_start}",
        )
        _check(
            0 <= base_momentum <= max_momentum,
            f"need 0 <= base_momentum <= max_momentum, got base_momentum={base_momentum}, max_momentum={max_momentum}",
        )
        self.max_lr = float(max_lr)
        self.total_steps = total_steps
        self.pct_start = float(pct_start)
        self.anneal_strategy = anneal_strategy
        self.div_factor = float(div_factor)
        self.final_div_factor = float(final_div_factor)
        self.three_phase = bool(three_phase)
        self.base_momentum = float(base_momentum)
        self.max_momentum = float(max_momentum)

        initial_lr = self.max_lr / self.div_factor
        min_lr = initial_lr / self.final_div_factor
        warmup_end = self.pct_start * total_steps - 1
        last = total_steps - 1.0
        if self.three_phase:
            self._boundaries = (0.0, warmup_end, 2 * self.pct_start * total_steps - 2, last)
            self._lrs = (initial_lr, self.max_lr, initial_lr, min_lr)
            self._momenta = (max_momentum, base_momentum, max_momentum, max_momentum)
        else:
            self._boundaries = (0.0, warmup_end, last)
            self._lrs = (initial_lr, self.max_lr, min_lr)
            self._momenta = (max_momentum, base_momentum, max_momentum)
        widths = [b - a for a, b in zip(self._boundaries, self._boundaries[1:])]
        _check(
            min(widths) > 0,
            f"a phase of the schedule would span {min(widths):g} steps with total_steps={total_steps} and "
            f"pct_start={pct_start}; use more steps or a pct_start that leaves each phase at least one step",
        )

    @property
    def initial_lr(self):
        return self.max_lr / self.div_factor

    @property
    def final_lr(self):
        return self.initial_lr / self.final_div_factor

    def __call__(self, step):
        return self._interpolate(step, self._lrs)

    def momentum(self, step):
        """Momentum (SGD/RMSprop `momentum`, Adam `beta_1`) for the update at optimizer step `step`."""
        return self._interpolate(step, self._momenta)

    def _interpolate(self, step, values):
        with tf.name_scope("OneCycle"):
            step = tf.clip_by_value(tf.cast(step, tf.float32), 0.0, self._boundaries[-1])
            # Phase k holds steps in (boundaries[k], boundaries[k + 1]]; step 0 belongs to phase 0. Each phase's
            # value is computed and the step's is selected elementwise: float ops only, so on a GPU nothing of
            # the lookup waits for a copy to the host (an index would be an int32, which lives there).
            value = None
            for k in reversed(range(len(self._boundaries) - 1)):
                start, end = self._boundaries[k], self._boundaries[k + 1]
                # Both fractions come straight from step counts: 1 - done would lose float32 digits near the end.
                done, left = (step - start) / (end - start), (end - step) / (end - start)
                phase = anneal(self.anneal_strategy, values[k], values[k + 1], done, left)
                value = phase if value is None else tf.where(step <= end, phase, value)
            return value

    def get_config(self):
        return {
            "max_lr": self.max_lr,
            "total_steps": self.total_steps,
            "pct_start": self.pct_start,
            "anneal_strategy": self.anneal_strategy,
            "div_factor": self.div_factor,
            "final_div_factor": self.final_div_factor,
            "three_phase": self.three_phase,
            "base_momentum": self.base_momentum,
            "max_momentum": self.max_momentum,
        }


def anneal(strategy, start, end, done, left):
    """Anneals start -> end, `done` and `left` (= 1 - done) of the way; full float32 precision at both ends."""
    if strategy == "cos":
        # end + (start - end)/2 * (1 + cos(pi*done)), rewritten with 1 + cos(x) = 2 cos^2(x/2) and
        # cos(pi/2 * done) = sin(pi/2 * left), so neither end suffers cancellation.
        half_pi = math.pi / 2.0
        return start * tf.square(tf.sin(half_pi * left)) + end * tf.square(tf.sin(half_pi * done))
    return start * left + end * done


def _check(condition, message):
    if not condition:
        raise ValueError(f"OneCycle: {message}")


class StepFunction(keras.optimizers.schedules.LearningRateSchedule):
    """A plain function of the step as a Keras schedule: `StepFunction(fn)(step)` is `fn(step as float32)`.

    Keras calls a bare callable learning rate with no argument; this calls `fn` with `optimizer.iterations`
    inside the compiled step, like every schedule here. `fn` must be written with tensor operations (`keras.ops`
    or `tf`) to trace, e.g. `lambda step: 0.1 * keras.ops.exp(-step / 1000)`.
    """

    def __init__(self, function):
        super().__init__()
        self.function = function

    def __call__(self, step):
        return tf.cast(self.function(tf.cast(step, tf.float32)), tf.float32)

    def get_config(self):
        return {"function": getattr(self.function, "__qualname__", repr(self.function))}  # for reading: not reloadable
