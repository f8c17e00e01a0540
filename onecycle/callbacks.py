"""The well-known Keras 1Cycle callback interface, made to work on Keras 3: `OneCycleScheduler` and `LRFinder`.

The TensorFlow 2 super-convergence post's callbacks set `optimizer.lr` and `optimizer.momentum` from the host
between batches. On Keras 3 that silently does nothing (`optimizer.lr` is gone and the error was swallowed;
momentum is a Python float baked into the traced step), and with `steps_per_execution > 1` a host callback fires
once per execution, not per step. These keep the post's names and defaults but install a step-keyed schedule
into the optimizer *before the train function is traced*, so the values are evaluated in-graph from
`optimizer.iterations`: right under `steps_per_execution`, tf.distribute and resumed training.

    model.compile(optimizer=onecycle.RMSprop(learning_rate=lr), loss=..., metrics=[...])
    model.fit(train_ds, epochs=epochs, callbacks=[onecycle.OneCycleScheduler(lr, steps)])
"""

import keras
import numpy as np
from absl import logging

from onecycle.figures import new_figure
from onecycle.lr_range import RULES, ExponentialSweep, plot_sweep, smooth, suggest
from onecycle.optimizers import ScheduledMomentum
from onecycle.schedule import OneCycle


def _inner(optimizer):
    return getattr(optimizer, "inner_optimizer", optimizer)


class OneCycleScheduler(keras.callbacks.Callback):
    """1Cycle for `model.fit`, with the TensorFlow 2 post's parameters and defaults.

    The schedule is `OneCycle(lr_max, steps, pct_start=phase_1_pct, anneal_strategy="cos", div_factor,
    final_div_factor=1e4, base_momentum=mom_min, max_momentum=mom_max)`: cosine from `lr_max / div_factor` up to
    `lr_max`, then down to `lr_max / (div_factor * 1e4)` (the post's final rate), with momentum mirroring it
    between `mom_max` and `mom_min`. The phase boundary follows PyTorch and fastai (the peak is at step
    `phase_1_pct * steps - 1`); the post's annealers put it one step later.

    Momentum (Adam: beta_1) is cycled when the optimizer is one of this package's (`onecycle.SGD`, `Adam`,
    `AdamW`, `RMSprop`). A stock Keras optimizer cannot cycle it: with a non-zero momentum/beta_1 `fit` stops
    before its first step with the fix; with none, the learning rate cycles and a warning says how to cycle
    momentum too. `cycle_momentum=False` cycles the learning rate only, with any optimizer.

    Args:
        lr_max: the peak learning rate.
        steps: the run's length in optimizer steps (`epochs * steps_per_epoch`), a whole number.
        mom_min: the momentum at the peak. Default 0.85.
        mom_max: the momentum at the start and the end. Default 0.95.
        phase_1_pct: the fraction of the steps warming up. Default 0.3.
        div_factor: the first learning rate is `lr_max / div_factor`. Default 25.
        cycle_momentum: cycle the momentum too. Default True.

    Example:
        >>> model.compile(optimizer=onecycle.SGD(momentum=0.9), loss="sparse_categorical_crossentropy")
        >>> model.fit(train_ds, epochs=24, callbacks=[onecycle.OneCycleScheduler(0.4, 24 * steps_per_epoch)])
    """

    def __init__(
        self, lr_max, steps, mom_min=0.85, mom_max=0.95, phase_1_pct=0.3, div_factor=25.0, cycle_momentum=True
    ):
        super().__init__()
        if int(steps) != steps:
            raise ValueError(f"OneCycleScheduler: steps must be a whole number of optimizer steps, got {steps}")
        self.cycle_momentum = cycle_momentum
        self.schedule = OneCycle(
            lr_max,
            int(steps),
            pct_start=phase_1_pct,
            anneal_strategy="cos",
            div_factor=div_factor,
            final_div_factor=1e4,
            base_momentum=mom_min,
            max_momentum=mom_max,
        )

    def on_train_begin(self, logs=None):
        optimizer = _inner(self.model.optimizer)
        if self.cycle_momentum:
            if isinstance(optimizer, ScheduledMomentum):
                optimizer.follow_momentum_schedule(self.schedule.momentum)
            else:
                self._refuse_or_warn(optimizer)
        optimizer.learning_rate = self.schedule
        # Keras made the train function, untraced, just before on_train_begin; a new one is traced with the
        # schedule even if an earlier fit had traced the step with the old rate.
        self.model.make_train_function(force=True)

    def _refuse_or_warn(self, optimizer):
        name = type(optimizer).__name__
        ours = (
            f"onecycle.{name}(...) with the same arguments"
            if name in ("SGD", "Adam", "AdamW", "RMSprop")
            else ("an optimizer of the onecycle package (SGD, Adam, AdamW or RMSprop)")
        )
        momentum = next((a for a in ("momentum", "beta_1") if getattr(optimizer, a, 0)), None)
        if momentum:
            raise ValueError(
                f"OneCycleScheduler cannot cycle the {momentum}={getattr(optimizer, momentum)} of "
                f"keras.optimizers.{name} (Keras 3 bakes it into the compiled step): use {ours}, or pass "
                f"cycle_momentum=False to cycle the learning rate only"
            )
        logging.warning(
            "OneCycleScheduler: keras.optimizers.%s has no momentum to cycle; the learning rate "
            "cycles. For momentum cycling use %s.",
            name,
            ours,
        )

    @property
    def lrs(self):
        """The learning rate at every step 0..steps-1."""
        return np.asarray(self.schedule(np.arange(self.schedule.total_steps)))

    @property
    def moms(self):
        """The momentum (Adam: beta_1) at every step 0..steps-1."""
        return np.asarray(self.schedule.momentum(np.arange(self.schedule.total_steps)))

    def plot(self):
        """Learning rate and momentum against the step, side by side; returns the pyplot figure (`plt.show()` and
        notebooks display it)."""
        figure = new_figure((10, 4))
        lr_axis, momentum_axis = figure.subplots(1, 2)
        lr_axis.plot(self.lrs)
        lr_axis.set_title("Learning Rate")
        momentum_axis.plot(self.moms)
        momentum_axis.set_title("Momentum")
        for axis in (lr_axis, momentum_axis):
            axis.set_xlabel("step")
            axis.grid(alpha=0.3)
        return figure


class LRFinder(keras.callbacks.Callback):
    """The LR range test for `model.fit`, with the companion notebook's parameters and defaults.

    For up to `max_steps` steps the learning rate grows exponentially from `start_lr` to `end_lr`, in-graph
    (`onecycle.lr_range.ExponentialSweep` at `optimizer.iterations`). Each step's loss is smoothed
    (`smoothing`, bias-corrected); the sweep stops when the smoothed loss passes 4x its minimum or the loss is
    not finite. Afterwards the model's weights, the optimizer's state and its learning rate are put back as
    they were, so the same model can then be trained. `suggestion` holds `rule`'s `max_lr` and what the other
    rules read (see `onecycle.lr_range.suggest`); `lrs`, `losses` (smoothed, as in the notebook) and
    `raw_losses` the curve.

    Keras reports a running mean of the loss over the epoch; the loss of the last step (or, under
    `steps_per_execution`, of the last execution) is recovered from two consecutive means.

    Args:
        start_lr: the sweep's first learning rate. Default 1e-7.
        end_lr: its last. Default 10.
        max_steps: steps of the sweep, at most. Default 100.
        smoothing: the loss's exponential smoothing. Default 0.9.
        divergence: stop once the smoothed loss passes this multiple of its minimum. Default 4.
        rule: how `suggestion["suggested_max_lr"]` is read: "onecycle" (where the smoothed loss stops falling,
            for 1Cycle's max_lr; the default), or fastai's "valley", "minimum_over_10" or "steepest".

    Example:
        >>> finder = onecycle.LRFinder(start_lr=1e-5, end_lr=10.0, max_steps=200)
        >>> model.fit(train_ds, epochs=1, steps_per_epoch=200, callbacks=[finder])
        >>> finder.suggestion["suggested_max_lr"], finder.plot()
    """

    def __init__(self, start_lr=1e-7, end_lr=10.0, max_steps=100, smoothing=0.9, divergence=4.0, rule="onecycle"):
        super().__init__()
        if rule not in RULES:
            raise ValueError(f"LRFinder: rule must be one of {RULES}, got {rule!r}")
        self.rule = rule
        self.sweep = ExponentialSweep(start_lr, end_lr, int(max_steps))
        self.max_steps, self.smoothing, self.divergence = int(max_steps), smoothing, divergence
        self.lrs, self.losses, self.raw_losses, self.suggestion = [], [], [], None

    def on_train_begin(self, logs=None):
        optimizer = _inner(self.model.optimizer)
        if not optimizer.built:
            with optimizer._distribution_strategy.scope():
                optimizer.build(self.model.trainable_variables)
        self._saved_weights = self.model.get_weights()
        self._saved_optimizer = [(variable, variable.numpy()) for variable in optimizer.variables]
        self._first_step = int(optimizer.iterations.numpy())
        start, end, steps = self.sweep.start_lr, self.sweep.end_lr, self.sweep.num_steps
        self.sweep = ExponentialSweep(start, end, steps, first_step=self._first_step)
        # Set privately, not through the setter, which would untrack (and so reorder) the rate variable.
        self._previous_lr = optimizer._learning_rate
        optimizer._learning_rate = self.sweep
        self.model.make_train_function(force=True)  # traced with the sweep, whatever an earlier fit traced
        self.lrs, self.losses, self.raw_losses, self.suggestion = [], [], [], None

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_start = self._epoch_batches = int(_inner(self.model.optimizer).iterations.numpy())
        self._epoch_mean = 0.0

    def on_train_batch_end(self, batch, logs=None):
        now = int(_inner(self.model.optimizer).iterations.numpy())
        mean, batches, before = float(logs["loss"]), now - self._epoch_start, self._epoch_batches - self._epoch_start
        loss = (mean * batches - self._epoch_mean * before) / (batches - before)
        self._epoch_mean, self._epoch_batches = mean, now
        step = now - self._first_step - 1  # the last step run, counted from the sweep's start
        self.lrs.append(float(self.sweep(now - 1)))
        self.raw_losses.append(loss)
        self.losses.append(float(smooth(self.raw_losses, self.smoothing)[-1]))
        diverged = not np.isfinite(loss) or self.losses[-1] > self.divergence * min(self.losses)
        if diverged or step + 1 >= self.max_steps:
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        optimizer = _inner(self.model.optimizer)
        self.model.set_weights(self._saved_weights)
        for variable, value in self._saved_optimizer:
            variable.assign(value)
        optimizer._learning_rate = self._previous_lr
        self.model.make_train_function(force=True)
        finite = [(lr, s) for lr, s in zip(self.lrs, self.losses) if np.isfinite(s)]
        self.suggestion = suggest([lr for lr, _ in finite], [s for _, s in finite], rule=self.rule)
        for key in ("warning", "note"):
            if self.suggestion.get(key):
                logging.warning("LRFinder: %s", self.suggestion[key])

    def plot(self):
        """Loss against the learning rate, raw and smoothed, the suggestion marked; returns the pyplot figure."""
        return plot_sweep(self.lrs, self.raw_losses, self.losses, self.suggestion or {})
