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
from configs.validation import VARIABLE_KINDS, learning_rate_multipliers


def create_schedule(config, max_lr, total_steps):
    """The learning-rate schedule `config.schedule` names, peaking at `max_lr`, over `total_steps` steps."""
    if config.schedule == "constant":
        return onecycle.Constant(max_lr)
    if config.schedule == "step":
        return onecycle.StepDecay(max_lr, total_steps, config.step_milestones, config.step_factor)
    if config.schedule == "warmup_cosine":
        return onecycle.WarmupCosine(max_lr, total_steps, config.warmup_pct, config.final_lr_ratio)
    return onecycle.OneCycle(
        max_lr,
        total_steps,
        pct_start=config.pct_start,
        anneal_strategy=config.anneal_strategy,
        div_factor=config.div_factor,
        final_div_factor=config.final_div_factor,
        three_phase=config.three_phase,
        base_momentum=config.base_momentum,
        max_momentum=config.max_momentum,
    )


def schedule_curves(config, max_lr, total_steps):
    """(learning rate, momentum) at every step 0..total_steps-1, as the optimizer will use them."""
    schedule = create_schedule(config, max_lr, total_steps)
    steps = tf.range(total_steps)
    if isinstance(schedule, onecycle.OneCycle):
        return schedule(steps).numpy(), schedule.momentum(steps).numpy()
    return schedule(steps).numpy(), np.full(total_steps, config.max_momentum, np.float32)


OPTIMIZERS = {  # config.optimizer: the optimizer of (schedule, momentum, weight decay and EMA arguments, config)
    "sgd": lambda schedule, momentum, config, **common: onecycle.SGD(
        schedule, momentum, momentum_form=config.momentum_form, **common
    ),
    "nesterov": lambda schedule, momentum, config, **common: onecycle.SGD(
        schedule, momentum, nesterov=True, momentum_form=config.momentum_form, **common
    ),
    "adam": lambda schedule, momentum, config, **common: onecycle.Adam(schedule, momentum, **common),
    "adamw": lambda schedule, momentum, config, **common: onecycle.AdamW(schedule, beta_1=momentum, **common),
    "rmsprop": lambda schedule, momentum, config, **common: onecycle.RMSprop(schedule, momentum=momentum, **common),
}


def create_optimizer(config, model, schedule, momentum=None, whiten_bias_freeze_step=0):
    """`config.optimizer` following `schedule`, loss-scaled under mixed_float16.

    Under 1Cycle the momentum (Adam: beta_1) follows the schedule; under a baseline it is held at `momentum`
    (default `config.max_momentum`). Weight decay skips biases and normalisation weights (unless
    `config.decay_biases_and_norms`). `config.lr_multipliers` scale the rate by variable kind (`variable_kinds`);
    from `whiten_bias_freeze_step` (> 0) on, the model's whitening bias is frozen. With `config.ema_momentum` the
    optimizer also keeps a moving average of the weights (Keras's `use_ema`).
    """
    momentum = config.max_momentum if momentum is None else momentum  # unused when a OneCycle cycles it
    common = {"weight_decay": config.weight_decay or None}
    if config.ema_momentum:
        common |= {"use_ema": True, "ema_momentum": config.ema_momentum}
    optimizer = OPTIMIZERS[config.optimizer](schedule, momentum, config, **common)
    if not config.decay_biases_and_norms:
        onecycle.exclude_biases_and_norms_from_weight_decay(optimizer, model.trainable_variables)
    factors = learning_rate_multipliers(config.lr_multipliers)
    for kind, variables in variable_kinds(model).items():
        if kind in factors:
            optimizer.multiply_learning_rate(variables, factors[kind])
    if whiten_bias_freeze_step:
        bias_layer = models.MODELS[config.model].whitening_bias
        optimizer.freeze_from_step(model.get_layer(bias_layer).trainable_variables, whiten_bias_freeze_step)
    if config.precision == "mixed_float16":
        return onecycle.LossScaleOptimizer(optimizer)
    return optimizer


NORMALIZATIONS = (keras.layers.BatchNormalization, keras.layers.LayerNormalization, keras.layers.GroupNormalization)


def variable_kinds(model):
    """{kind: trainable variables} by `configs.validation.VARIABLE_KINDS`: a normalisation layer's offset
    ("norm_bias", BatchNorm's beta) and scale ("norm_scale", gamma); any other 1-D variable is a "bias", the
    rest are "kernel"s."""
    kinds = {kind: [] for kind in VARIABLE_KINDS}
    normalisation = {}
    for layer in model._flatten_layers(include_self=False):
        if isinstance(layer, NORMALIZATIONS):
            for name, kind in (("beta", "norm_bias"), ("gamma", "norm_scale")):
                if getattr(layer, name, None) is not None:
                    normalisation[id(getattr(layer, name))] = kind
    for variable in model.trainable_variables:
        kind = normalisation.get(id(variable)) or ("bias" if len(variable.shape) <= 1 else "kernel")
        kinds[kind].append(variable)
    return kinds


def momentum_of(optimizer):
    """The momentum (Adam: beta_1) the optimizer's next update uses."""
    return getattr(optimizer, "inner_optimizer", optimizer).current_momentum


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
