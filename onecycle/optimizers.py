"""Keras optimizers whose momentum (Adam's beta_1) follows a schedule inside the compiled update step.

Keras 3 bakes `SGD.momentum` and `Adam.beta_1` into the traced step as Python floats: a callback that sets them
between batches changes nothing, and Keras refuses a variable or a callable there. These drop-in subclasses read
the momentum at `optimizer.iterations` - the same clock Keras uses for the learning-rate schedule - inside
`update_step`, so every replica, every `steps_per_execution` and every resumed run sees the same value.

Where the momentum comes from, in order:
1. `momentum=` / `beta_1=` given a schedule (any callable of the step, e.g. a `LearningRateSchedule`);
2. otherwise, when `learning_rate` is a `OneCycle` and `cycle_momentum=True` (the default): `OneCycle.momentum`;
3. otherwise the float, as in Keras.
Giving both 1. and a cycling `OneCycle` is ambiguous and raises; pass `cycle_momentum=False` to use your own.

Per variable, the learning rate can be multiplied (`multiply_learning_rate`: airbench's 64x for BatchNorm
biases) and the updates stopped from a step on (`freeze_from_step`: airbench's whitening bias after 3 epochs),
both inside the compiled step, so a resumed or replicated run agrees.
"""

import keras
import tensorflow as tf
from keras import ops
from tensorflow.python.distribute import device_util  # the device a traced op lands on (as tf.distribute does)

from onecycle.schedule import OneCycle

# Keras builds momentum slots only for a non-zero float; a scheduled momentum needs them, and this value is never
# read by the update rule.
_BUILD_SLOTS = 0.9


class ScheduledMomentum:
    """The mixin of this package's optimizers: resolves the momentum-like hyperparameter named `_momentum_name`
    to its value at the current step."""

    _momentum_name = "momentum"
    _slots_name = "_momentums"  # where Keras keeps the momentum slots (built only for a non-zero momentum)

    def _resolve_momentum(self, learning_rate, momentum, cycle_momentum):
        """Returns (float for Keras's constructor, schedule or None), validating the combination."""
        cycles = isinstance(learning_rate, OneCycle) and cycle_momentum
        if callable(momentum):
            if cycles:
                raise ValueError(
                    f"{self.__class__.__name__}: got a {self._momentum_name} schedule and a OneCycle learning rate "
                    f"that also cycles {self._momentum_name}; pass cycle_momentum=False to use your own schedule"
                )
            return _BUILD_SLOTS, momentum
        if cycles:
            return _BUILD_SLOTS, learning_rate.momentum
        return momentum, None

    def _keep_momentum(self, argument, schedule, cycle_momentum):
        """Stores the momentum source; called after Keras's constructor, which must run first."""
        self._momentum_argument = argument
        self._momentum_schedule = schedule
        self.cycle_momentum = cycle_momentum
        self._learning_rate_factors, self._freeze_steps = {}, {}

    def multiply_learning_rate(self, var_list, factor):
        """Updates `var_list` at `factor` times the learning rate (airbench: 64 for BatchNorm biases).

        Only the update's rate: the weight decay per step stays the optimizer's (Keras's decoupled
        `lr * weight_decay * w`; a coupled decay is divided by `factor`, as airbench's `weight_decay / lr_biases`).
        The variables' keys live in this Python object: call it again on a restored optimizer, before its step runs.
        """
        if not factor > 0:
            raise ValueError(f"multiply_learning_rate: factor must be > 0, got {factor!r}")
        self._learning_rate_factors.update({self._var_key(variable): float(factor) for variable in var_list})

    def freeze_from_step(self, var_list, step):
        """Stops updating `var_list` from optimizer step `step` on (the updates of steps 0..step-1 apply): the
        variables and their optimizer state keep their values, as PyTorch's `requires_grad = False` leaves them,
        weight decay included. In the graph, without a branch: the update's assignments write the old values back."""
        self._freeze_steps.update({self._var_key(variable): int(step) for variable in var_list})

    def learning_rate_factor(self, variable):
        """The factor `multiply_learning_rate` gave `variable` (1.0 if none)."""
        return self._learning_rate_factors.get(self._var_key(variable), 1.0)

    def update_step(self, gradient, variable, learning_rate):
        """The subclass's update (`_update`) at the variable's learning rate, with no effect once it is frozen."""
        base_learning_rate = learning_rate
        factor = self.learning_rate_factor(variable)
        if factor != 1.0:
            learning_rate = ops.cast(learning_rate, variable.dtype) * factor
        freeze_step = self._freeze_steps.get(self._var_key(variable))
        if freeze_step is None:
            return self._update(gradient, variable, learning_rate)
        self._still_training = ops.less(self._iterations, freeze_step)  # read by the assignments below
        try:
            if self._keras_decays() and self.weight_decay and self._use_weight_decay(variable):
                # Keras's decoupled decay (`_apply_weight_decay` leaves frozen variables here), masked like the rest
                decay = ops.cast(base_learning_rate, variable.dtype) * ops.cast(self.weight_decay, variable.dtype)
                self.assign_sub(variable, variable * decay)
            return self._update(gradient, variable, learning_rate)
        finally:
            self._still_training = None

    def _keras_decays(self):
        """Whether Keras's decoupled weight decay applies (PyTorch-form SGD couples its own into the gradient)."""
        return True

    def _apply_weight_decay(self, variables):
        """Keras's decoupled decay `w -= lr * weight_decay * w`, which writes around `assign`: a frozen variable's
        is applied in `update_step` instead, where the freeze masks it."""
        if self._keras_decays():
            super()._apply_weight_decay([v for v in variables if self._var_key(v) not in self._freeze_steps])

    def assign(self, variable, value):
        """Keras's assignment, which every update writes through: of the old value while the variable is frozen."""
        training = getattr(self, "_still_training", None)
        super().assign(variable, value if training is None else ops.where(training, value, variable))

    def assign_add(self, variable, value):
        training = getattr(self, "_still_training", None)
        super().assign_add(variable, value if training is None else ops.where(training, value, 0.0))

    def assign_sub(self, variable, value):
        training = getattr(self, "_still_training", None)
        super().assign_sub(variable, value if training is None else ops.where(training, value, 0.0))

    def follow_momentum_schedule(self, schedule):
        """Makes the momentum follow `schedule` (a callable of the step) from the next traced step on.

        For `OneCycleScheduler`, which installs its schedule at the start of `fit`. An optimizer built with zero
        momentum has no momentum slots: they are added here (zeros, as at build), on every replica.
        """
        self._momentum_schedule = schedule
        if not getattr(self, self._momentum_name):
            setattr(self, self._momentum_name, _BUILD_SLOTS)
            if self.built:
                with self._distribution_strategy.scope():
                    setattr(self, self._slots_name, self.add_optimizer_variables(self._trainable_variables, "momentum"))

    @property
    def current_momentum(self):
        """The momentum (beta_1 for Adam) of the next update, for logging."""
        return self._momentum_at_step("float32")

    def _momentum_at_step(self, dtype, step=None):
        """The momentum for the update being made now (or at `step`), cast to `dtype`."""
        if self._momentum_schedule is None:
            return ops.cast(getattr(self, self._momentum_name), dtype)
        if step is not None:
            return ops.cast(self._momentum_schedule(step), dtype)
        return ops.cast(self._once_per_step("momentum", lambda: self._momentum_schedule(self._iterations)), dtype)

    def _get_current_learning_rate(self):
        """The learning rate, once per step and device: Keras reads it again for every decayed variable."""
        return self._once_per_step("learning_rate", super()._get_current_learning_rate)

    def _backend_apply_gradients(self, grads, trainable_variables):
        """Keras's step, with each schedule evaluated once per step and device rather than once per variable
        (measured 4% of a small net's step on a CPU, benchmarks/README.md; on a GPU each evaluation is a few
        kernel launches per variable)."""
        self._values_of_this_step = {}
        try:
            return super()._backend_apply_gradients(grads, trainable_variables)
        finally:
            self._values_of_this_step = None

    def _once_per_step(self, name, compute):
        """`compute()`, reused within one traced step on one device (and one graph: a tf.cond branch has its own)."""
        values = getattr(self, "_values_of_this_step", None)
        if values is None or tf.executing_eagerly():
            return compute()
        key = (name, tf.compat.v1.get_default_graph(), device_util.current())
        if key not in values:
            values[key] = compute()
        return values[key]

    def get_config(self):
        config = super().get_config()
        config[self._momentum_name] = (
            keras.saving.serialize_keras_object(self._momentum_argument)
            if callable(self._momentum_argument)
            else self._momentum_argument
        )
        config["cycle_momentum"] = self.cycle_momentum
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        if isinstance(config.get(cls._momentum_name), dict):
            config[cls._momentum_name] = keras.saving.deserialize_keras_object(
                config[cls._momentum_name], custom_objects=custom_objects
            )
        return super().from_config(config, custom_objects=custom_objects)


@keras.saving.register_keras_serializable(package="onecycle")
class SGD(ScheduledMomentum, keras.optimizers.SGD):
    """`keras.optimizers.SGD` (plain or Nesterov) with the momentum evaluated at the optimizer step.

    The update is Keras's: `v = m*v - lr*g; w += v` (Nesterov: `w += m*v - lr*g`), with `m` and `lr` both
    functions of `iterations`. With `momentum_form="pytorch"` it is PyTorch's, which the recipes we port (airbench,
    Page's, fastai's) were tuned with: `b = m*b + g; w -= lr*b` (Nesterov: `w -= lr*(g + m*b)`), and
    `weight_decay` is PyTorch's coupled decay (`g += weight_decay * w` first). With a constant lr the two forms
    are the same; when the lr changes every step they are not, since Keras's velocity holds past learning rates.

    Args:
        learning_rate: a float, or a schedule of the step (`OneCycle`, a baseline, any `LearningRateSchedule`).
            Default 0.01.
        momentum: a float in [0, 1), or a schedule of the step. Default 0 (Keras's); with a cycling `OneCycle`
            learning rate the momentum follows `OneCycle.momentum` whatever float is given.
        nesterov: Nesterov momentum. Default False.
        cycle_momentum: follow a `OneCycle` learning rate's momentum. Default True.
        momentum_form: "keras" (default) or "pytorch": which update (above), and with it which weight decay.
        **kwargs: Keras's optimizer arguments (`weight_decay`, `use_ema`, `ema_momentum`, `clipnorm`, ...).

    Example:
        >>> optimizer = onecycle.SGD(onecycle.OneCycle(0.4, 2328), momentum=0.9, nesterov=True, weight_decay=5e-4)
        >>> model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy")
    """

    _slots_name = "momentums"
    MOMENTUM_FORMS = ("keras", "pytorch")

    def __init__(
        self, learning_rate=0.01, momentum=0.0, nesterov=False, cycle_momentum=True, momentum_form="keras", **kwargs
    ):
        if momentum_form not in self.MOMENTUM_FORMS:
            raise ValueError(f"onecycle.SGD: momentum_form must be one of {self.MOMENTUM_FORMS}, got {momentum_form!r}")
        keras_momentum, schedule = self._resolve_momentum(learning_rate, momentum, cycle_momentum)
        super().__init__(learning_rate=learning_rate, momentum=keras_momentum, nesterov=nesterov, **kwargs)
        self._keep_momentum(momentum, schedule, cycle_momentum)
        self.momentum_form = momentum_form

    def _keras_decays(self):
        return self.momentum_form == "keras"  # PyTorch's form couples the decay into the gradient, in `_update`

    def _update(self, gradient, variable, learning_rate):
        if self.momentum_form == "pytorch":
            return self._pytorch_update(gradient, variable, learning_rate)
        if self.momentum == 0:
            return keras.optimizers.SGD.update_step(self, gradient, variable, learning_rate)
        lr = ops.cast(learning_rate, variable.dtype)
        gradient = ops.cast(gradient, variable.dtype)
        m = self._momentum_at_step(variable.dtype)
        velocity = self.momentums[self._get_variable_index(variable)]
        self.assign(velocity, velocity * m - gradient * lr)
        if self.nesterov:
            self.assign_add(variable, velocity * m - gradient * lr)
        else:
            self.assign_add(variable, velocity)

    def _pytorch_update(self, gradient, variable, learning_rate):
        """torch.optim.SGD's step (dampening 0): `g += wd*w; b = m*b + g; w -= lr*(g + m*b if nesterov else b)`."""
        lr = ops.cast(learning_rate, variable.dtype)
        gradient = ops.cast(gradient, variable.dtype)
        if self.weight_decay and self._use_weight_decay(variable):  # per step lr*wd*w, whatever the lr factor
            decay = self.weight_decay / self.learning_rate_factor(variable)
            gradient = gradient + ops.cast(decay, variable.dtype) * variable
        if self.momentum == 0:
            return self.assign_sub(variable, lr * gradient)
        m = self._momentum_at_step(variable.dtype)
        buffer = self.momentums[self._get_variable_index(variable)]
        self.assign(buffer, m * buffer + gradient)
        self.assign_sub(variable, lr * (gradient + m * buffer if self.nesterov else buffer))

    def get_config(self):
        return super().get_config() | {"momentum_form": self.momentum_form}


@keras.saving.register_keras_serializable(package="onecycle")
class RMSprop(ScheduledMomentum, keras.optimizers.RMSprop):
    """`keras.optimizers.RMSprop` with its `momentum` evaluated at the optimizer step.

    Args:
        learning_rate: a float or a schedule of the step. Default 0.001.
        momentum: a float in [0, 1) or a schedule of the step. Default 0; with a cycling `OneCycle` learning rate
            it follows `OneCycle.momentum`.
        cycle_momentum: follow a `OneCycle` learning rate's momentum. Default True.
        **kwargs: Keras's RMSprop arguments (`rho`, `epsilon`, `weight_decay`, ...).

    Example:
        >>> optimizer = onecycle.RMSprop(onecycle.OneCycle(1e-3, 1000), momentum=0.9)
    """

    def __init__(self, learning_rate=0.001, momentum=0.0, cycle_momentum=True, **kwargs):
        keras_momentum, schedule = self._resolve_momentum(learning_rate, momentum, cycle_momentum)
        super().__init__(learning_rate=learning_rate, momentum=keras_momentum, **kwargs)
        self._keep_momentum(momentum, schedule, cycle_momentum)

    def _update(self, gradient, variable, learning_rate):
        if self.momentum == 0:
            return keras.optimizers.RMSprop.update_step(self, gradient, variable, learning_rate)
        lr = ops.cast(learning_rate, variable.dtype)
        gradient = ops.cast(gradient, variable.dtype)
        index = self._get_variable_index(variable)
        mean_square = self._velocities[index]
        self.assign(mean_square, self.rho * mean_square + (1 - self.rho) * ops.square(gradient))
        denominator = mean_square + self.epsilon
        if self.centered:
            mean = self._average_gradients[index]
            self.assign(mean, self.rho * mean + (1 - self.rho) * gradient)
            denominator = denominator - ops.square(mean)
        velocity = self._momentums[index]
        m = self._momentum_at_step(variable.dtype)
        self.assign(velocity, m * velocity + lr * gradient / ops.sqrt(denominator))
        self.assign_sub(variable, velocity)


@keras.saving.register_keras_serializable(package="onecycle")
class Adam(ScheduledMomentum, keras.optimizers.Adam):
    """`keras.optimizers.Adam` with beta_1 evaluated at the optimizer step, and exact bias correction.

    Keras and PyTorch correct the first moment by `1 - beta_1**t` with the *current* beta_1. When beta_1 changes
    every step that is not the weight the moving average actually put on the gradients, which is
    `1 - prod_{k<=t} beta_1(k)`: with 1Cycle (beta_1 falling 0.95 -> 0.85) the Keras formula under-corrects the
    first steps by up to ~17% at T=100. This class uses the exact product, at O(1) per step: the product over the
    steps already applied is an optimizer variable (saved in checkpoints, so a resumed run continues it exactly)
    that each applied step multiplies by its beta_1; a step that float16 loss scaling skips does not. For a
    float beta_1 the correction is Keras's own `1 - beta_1**(t+1)`.

    Args:
        learning_rate: a float or a schedule of the step. Default 0.001.
        beta_1: a float in [0, 1) or a schedule of the step. Default 0.9; with a cycling `OneCycle` learning
            rate it follows `OneCycle.momentum` (0.95 -> 0.85 -> 0.95 by default).
        cycle_momentum: follow a `OneCycle` learning rate's momentum. Default True.
        **kwargs: Keras's Adam arguments (`beta_2`, `epsilon`, `amsgrad`, `weight_decay`, ...).

    Example:
        >>> optimizer = onecycle.Adam(onecycle.OneCycle(3e-3, 1000))  # beta_1 cycles with the learning rate
    """

    _momentum_name = "beta_1"

    def __init__(self, learning_rate=0.001, beta_1=0.9, cycle_momentum=True, **kwargs):
        keras_beta_1, schedule = self._resolve_momentum(learning_rate, beta_1, cycle_momentum)
        super().__init__(learning_rate=learning_rate, beta_1=keras_beta_1, **kwargs)
        self._keep_momentum(beta_1, schedule, cycle_momentum)
        if self.gradient_accumulation_steps and schedule is not None:
            raise ValueError("onecycle.Adam: a beta_1 schedule with gradient_accumulation_steps is not supported")

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        # prod beta_1(k) over the steps applied so far; one value for all replicas.
        self._applied_beta_1_product = self.add_variable(
            (), initializer="ones", dtype="float32", aggregation="only_first_replica", name="beta_1_product"
        )

    def follow_momentum_schedule(self, schedule):
        constant = self.beta_1
        super().follow_momentum_schedule(schedule)
        if self.built:  # the steps already applied used the constant
            self._applied_beta_1_product.assign(ops.power(constant, ops.cast(self._iterations, "float32")))

    def beta_1_product(self, dtype="float32"):
        """prod_{k=0..t} beta_1(k) for the update at step t: the exact first-moment bias correction is 1 - this."""
        if self._momentum_schedule is None:
            return ops.power(ops.cast(self.beta_1, dtype), ops.cast(self._iterations + 1, dtype))
        return ops.cast(self._applied_beta_1_product, dtype) * self._momentum_at_step(dtype)

    def _backend_apply_gradients(self, grads, trainable_variables):
        """Keras's step (the updates, then `iterations += 1`), then the product advanced by this step's beta_1."""
        if self._momentum_schedule is None:
            return super()._backend_apply_gradients(grads, trainable_variables)
        through_this_step = self.beta_1_product()  # before `iterations` moves on
        super()._backend_apply_gradients(grads, trainable_variables)
        self._applied_beta_1_product.assign(through_this_step)

    def _update(self, gradient, variable, learning_rate):
        dtype = variable.dtype
        lr = ops.cast(learning_rate, dtype)
        gradient = ops.cast(gradient, dtype)
        beta_1 = self._momentum_at_step(dtype)
        beta_2_power = ops.power(ops.cast(self.beta_2, dtype), ops.cast(self._iterations + 1, dtype))
        index = self._get_variable_index(variable)
        m, v = self._momentums[index], self._velocities[index]
        self.assign_add(m, (gradient - m) * (1 - beta_1))
        self.assign_add(v, (ops.square(gradient) - v) * (1 - self.beta_2))
        if self.amsgrad:
            v_hat = self._velocity_hats[index]
            self.assign(v_hat, ops.maximum(v_hat, v))
            v = v_hat
        alpha = lr * ops.sqrt(1 - beta_2_power) / (1 - self.beta_1_product(dtype))
        self.assign_sub(variable, m * alpha / (ops.sqrt(v) + self.epsilon))


@keras.saving.register_keras_serializable(package="onecycle")
class AdamW(Adam):
    """Adam with decoupled weight decay (Keras's AdamW: `w -= lr * weight_decay * w` before each update).

    Args:
        learning_rate: a float or a schedule of the step. Default 0.001.
        weight_decay: the decoupled decay per unit of learning rate, > 0. Default 0.004 (Keras's).
        **kwargs: `Adam`'s arguments (`beta_1` as a float or schedule, `cycle_momentum`, `beta_2`, ...).

    Example:
        >>> optimizer = onecycle.AdamW(onecycle.OneCycle(3e-3, 1000), weight_decay=0.01)
    """

    def __init__(self, learning_rate=0.001, weight_decay=0.004, **kwargs):
        if not weight_decay:
            raise ValueError(f"AdamW: weight_decay must be > 0, got {weight_decay!r}; for none, use Adam")
        super().__init__(learning_rate=learning_rate, weight_decay=weight_decay, **kwargs)


def exclude_biases_and_norms_from_weight_decay(optimizer, variables):
    """Exempt 1-D variables (biases, BatchNorm/LayerNorm scales and offsets) from weight decay.

    The usual rule (timm's `ndim <= 1`), keyed by shape rather than by name so it works for any model. Call it
    before the optimizer is built.

    Example:
        >>> optimizer = onecycle.SGD(0.1, momentum=0.9, weight_decay=5e-4)
        >>> onecycle.exclude_biases_and_norms_from_weight_decay(optimizer, model.trainable_variables)
    """
    optimizer.exclude_from_weight_decay(var_list=[v for v in variables if len(v.shape) <= 1])


@keras.saving.register_keras_serializable(package="onecycle")
class LossScaleOptimizer(keras.optimizers.LossScaleOptimizer):
    """Dynamic loss scaling that skips a step on *every* replica when *any* replica's gradients overflow.

    Keras checks finiteness on each replica's local gradients before they are all-reduced, then either lets
    replicas disagree or takes replica 0's verdict: an overflow on replica 1 alone is summed into the update and
    the weights become inf. Here the verdict is reduced across replicas first. A skipped step does not advance
    `iterations`, so the 1Cycle schedule counts applied updates.

    Args:
        inner_optimizer: the optimizer to scale for (e.g. an `onecycle.SGD`).
        **kwargs: Keras's `LossScaleOptimizer` arguments (`initial_scale`, `dynamic_growth_steps`).

    Example:
        >>> keras.mixed_precision.set_global_policy("mixed_float16")
        >>> optimizer = onecycle.LossScaleOptimizer(onecycle.SGD(onecycle.OneCycle(0.4, 2328), momentum=0.9))
    """

    def check_finite(self, grads):
        finite = super().check_finite(grads)
        context = tf.distribute.get_replica_context()
        if context is None or context.num_replicas_in_sync == 1:
            return finite
        # float32, not int32: GPU collectives (MultiWorkerMirroredStrategy's) refuse to all-reduce int32
        overflowing_replicas = context.all_reduce(tf.distribute.ReduceOp.SUM, tf.cast(~finite, tf.float32))
        return tf.equal(overflowing_replicas, 0.0)
