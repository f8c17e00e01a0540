"""The optimizer a config asks for: its learning-rate schedule, its momentum cycling, its moving average.

Everything here is built once per run, in the strategy's scope, and evaluated inside the compiled step from
`optimizer.iterations` (the one clock).
"""

import contextlib
import types

import keras
import numpy as np
import tensorflow as tf

import models
import onecycle
from configs import registry
from configs.base import ConfigError
from configs.validation import VARIABLE_KINDS, learning_rate_multipliers


def create_schedule(config, max_lr, total_steps, steps_per_epoch=None):
    """The learning-rate schedule `config.schedule` names (configs/registry.py), peaking at `max_lr`, over
    `total_steps` steps: a `LearningRateSchedule`, or a user's plain function of the step, wrapped as one."""
    factory = registry.resolve("schedule", config.schedule)
    run_values = {"max_lr": max_lr, "total_steps": total_steps, "steps_per_epoch": steps_per_epoch}
    schedule = registry.call_with(factory, "schedule", run_values, config)
    if isinstance(schedule, keras.optimizers.schedules.LearningRateSchedule):
        return schedule
    if not callable(schedule):
        raise ConfigError(
            f"--config.schedule={config.schedule} returned {schedule!r}: a schedule is a function of the step (or a "
            "keras LearningRateSchedule)"
        )
    return onecycle.StepFunction(schedule)


def constant(max_lr):
    """The "constant" baseline: `max_lr` at every step."""
    return onecycle.Constant(max_lr)


def step(max_lr, total_steps, step_milestones, step_factor):
    """The "step" baseline: `max_lr` times `step_factor` at each milestone (fractions of the run)."""
    return onecycle.StepDecay(max_lr, total_steps, step_milestones, step_factor)


def schedule_curves(config, max_lr, total_steps):
    """(learning rate, momentum) at every step 0..total_steps-1, as the optimizer will use them: a schedule with a
    `momentum` of its own (1Cycle's) sets it, others hold `max_momentum`."""
    schedule = create_schedule(config, max_lr, total_steps)
    steps = tf.range(total_steps)
    lrs = np.asarray(schedule(steps), np.float32)
    if hasattr(schedule, "momentum"):
        return lrs, np.asarray(schedule.momentum(steps), np.float32)
    return lrs, np.full(total_steps, config.max_momentum, np.float32)


def sgd(learning_rate, momentum, momentum_form, weight_decay, use_ema, ema_momentum, nesterov=False):
    """ "sgd": `onecycle.SGD` (momentum cycling under 1Cycle), in Keras's or PyTorch's form."""
    common = _common(weight_decay, use_ema, ema_momentum)
    return onecycle.SGD(learning_rate, momentum, nesterov=nesterov, momentum_form=momentum_form, **common)


def nesterov(learning_rate, momentum, momentum_form, weight_decay, use_ema, ema_momentum):
    """ "nesterov": `sgd` with Nesterov momentum."""
    return sgd(learning_rate, momentum, momentum_form, weight_decay, use_ema, ema_momentum, nesterov=True)


def adam(learning_rate, momentum, weight_decay, use_ema, ema_momentum):
    """ "adam": `onecycle.Adam`, its beta_1 the momentum (cycling under 1Cycle), with exact bias correction."""
    return onecycle.Adam(learning_rate, beta_1=momentum, **_common(weight_decay, use_ema, ema_momentum))


def adamw(learning_rate, momentum, weight_decay, use_ema, ema_momentum):
    """ "adamw": `onecycle.AdamW`, Adam with decoupled weight decay."""
    return onecycle.AdamW(learning_rate, beta_1=momentum, **_common(weight_decay, use_ema, ema_momentum))


def rmsprop(learning_rate, momentum, weight_decay, use_ema, ema_momentum):
    """ "rmsprop": `onecycle.RMSprop`, its momentum cycling under 1Cycle."""
    return onecycle.RMSprop(learning_rate, momentum=momentum, **_common(weight_decay, use_ema, ema_momentum))


def muon(learning_rate, momentum, weight_decay, use_ema, ema_momentum, muon_momentum, muon_weight_decay, total_steps):
    """ "muon": `onecycle.Muon`, Muon for convolution filters (at the schedule's rate, `muon_momentum`,
    `muon_weight_decay`) and PyTorch's Nesterov SGD for the rest (`momentum`, coupled `weight_decay`, their rate
    set by `lr_multipliers`)."""
    common = _common(weight_decay, use_ema, ema_momentum)
    return onecycle.Muon(learning_rate, momentum, muon_momentum, muon_weight_decay, total_steps, **common)


def _common(weight_decay, use_ema, ema_momentum):
    """Keras's optimizer arguments that every built-in takes alike."""
    return {"weight_decay": weight_decay} | ({"use_ema": True, "ema_momentum": ema_momentum} if use_ema else {})


def create_optimizer(config, model, schedule, momentum=None, whiten_bias_freeze_step=0, spec=None, total_steps=None):
    """`config.optimizer` (configs/registry.py, or the user's own) following `schedule`, loss-scaled under
    mixed_float16.

    The optimizer is called with the arguments it names (`registry.call_with`): `learning_rate` (the schedule),
    `momentum` (`momentum`, default `config.max_momentum`: onecycle's optimizers cycle it under 1Cycle whatever
    is given; a stock Keras one holds it), `use_ema`, `total_steps`, and any config field by its name (`weight_decay`,
    `ema_momentum`, `momentum_form`...). Weight decay skips biases and normalisation weights (unless
    `config.decay_biases_and_norms`). `config.lr_multipliers` scale the rate by variable kind (`variable_kinds`);
    from `whiten_bias_freeze_step` (> 0) on, the whitening bias of the model (`spec`, a `models.ModelSpec`) is
    frozen: both need one of onecycle's optimizers.
    """
    factory = registry.resolve("optimizer", config.optimizer)
    run_values = {
        "learning_rate": schedule,
        "total_steps": total_steps,
        "momentum": config.max_momentum if momentum is None else momentum,
        "use_ema": bool(config.ema_momentum),
        "weight_decay": config.weight_decay or None,
    }
    if config.ema_momentum and not {"use_ema", "ema_momentum"} <= set(registry.parameters(factory)[0]):
        raise ConfigError(
            f"--config.ema_momentum: --config.optimizer={config.optimizer} takes no use_ema and ema_momentum "
            "arguments, so it keeps no moving average: add them (Keras's optimizers take them), or set "
            "--config.ema_momentum=0"
        )
    optimizer = registry.call_with(factory, "optimizer", run_values, config)
    if not isinstance(optimizer, keras.optimizers.Optimizer):
        raise ConfigError(f"--config.optimizer={config.optimizer} returned {optimizer!r}, not a keras Optimizer")
    if not config.decay_biases_and_norms:
        onecycle.exclude_biases_and_norms_from_weight_decay(optimizer, model.trainable_variables)
    factors = learning_rate_multipliers(config.lr_multipliers)
    if (factors or whiten_bias_freeze_step) and not isinstance(optimizer, onecycle.ScheduledMomentum):
        raise ConfigError(
            f"--config.lr_multipliers and --config.whiten_bias_epochs act per variable inside the update, which "
            f"only onecycle's optimizers (sgd, nesterov, adam, adamw, rmsprop) do; --config.optimizer="
            f"{config.optimizer} is {type(optimizer).__name__}: use one of them, or leave both unset"
        )
    for kind, variables in variable_kinds(model).items():
        if kind in factors:
            optimizer.multiply_learning_rate(variables, factors[kind])
    if whiten_bias_freeze_step:
        bias_layer = (spec or models.MODELS[config.model]).whitening_bias
        optimizer.freeze_from_step(model.get_layer(bias_layer).trainable_variables, whiten_bias_freeze_step)
    if config.precision == "mixed_float16":
        return onecycle.LossScaleOptimizer(optimizer)
    return optimizer


NORMALIZATIONS = (keras.layers.BatchNormalization, keras.layers.LayerNormalization, keras.layers.GroupNormalization)


def variable_kinds(model):
    """{kind: trainable variables} by `configs.validation.VARIABLE_KINDS`: a normalisation layer's offset
    ("norm_bias", BatchNorm's beta) and scale ("norm_scale", gamma); any other 1-D variable is a "bias", a 2-D
    one a "kernel" (a dense layer's), the rest "filter"s (convolutions')."""
    kinds = {kind: [] for kind in VARIABLE_KINDS}
    normalisation = {}
    for layer in model._flatten_layers(include_self=False):
        if isinstance(layer, NORMALIZATIONS):
            for name, kind in (("beta", "norm_bias"), ("gamma", "norm_scale")):
                if getattr(layer, name, None) is not None:
                    normalisation[id(getattr(layer, name))] = kind
    for variable in model.trainable_variables:
        rank = len(variable.shape)
        kind = normalisation.get(id(variable)) or ("bias" if rank <= 1 else "kernel" if rank == 2 else "filter")
        kinds[kind].append(variable)
    return kinds


def momentum_of(optimizer):
    """The momentum (Adam: beta_1) the optimizer's next update uses, or None for an optimizer without one (a
    stock Keras optimizer's is its constant `momentum` or `beta_1`)."""
    optimizer = getattr(optimizer, "inner_optimizer", optimizer)
    if isinstance(optimizer, onecycle.ScheduledMomentum):
        return float(optimizer.current_momentum)
    value = next((getattr(optimizer, name) for name in ("momentum", "beta_1") if hasattr(optimizer, name)), None)
    return float(value) if isinstance(value, (int, float)) else None


def swap_in_ema_weights(optimizer):
    """A context manager factory: inside it the model's trainable weights are the optimizer's moving averages.

    Keras's own `SwapEMAWeights` does the swap on every replica's copy (in place, by additions); it only needs an
    object with the optimizer, not a compiled model, so the exported model stays free of optimizer state.
    """
    swap = keras.callbacks.SwapEMAWeights()
    swap.set_model(types.SimpleNamespace(optimizer=optimizer))

    @contextlib.contextmanager
    def ema_weights():
        swap.on_test_begin()
        try:
            yield
        finally:
            swap.on_test_end()

    return ema_weights
