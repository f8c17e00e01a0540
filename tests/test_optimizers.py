"""Momentum-cycling optimizers: weights after N steps against NumPy re-implementations of each update rule."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import onecycle

GLOBAL_BATCH, FEATURES, STEPS = 8, 3, 6
RNG = np.random.default_rng(0)
X = RNG.normal(size=(GLOBAL_BATCH * STEPS, FEATURES)).astype("float32")
Y = (X @ np.array([[1.5], [-2.0], [0.5]]) + 0.1 * RNG.normal(size=(GLOBAL_BATCH * STEPS, 1))).astype("float32")
W0 = np.array([[0.3], [0.2], [-0.1]])


def schedule():
    return onecycle.OneCycle(max_lr=0.2, total_steps=STEPS, pct_start=0.5)


def mse_gradient(w, step):
    """Gradient of the mean squared error over global batch `step`, as the replicas together must compute it."""
    x, y = X[step * GLOBAL_BATCH : (step + 1) * GLOBAL_BATCH], Y[step * GLOBAL_BATCH : (step + 1) * GLOBAL_BATCH]
    return 2.0 / GLOBAL_BATCH * x.T @ (x @ w - y)


def numpy_sgd(nesterov, steps=STEPS):
    s, w, velocity = schedule(), W0.copy(), np.zeros_like(W0)
    for k in range(steps):
        lr, m, g = float(s(k)), float(s.momentum(k)), mse_gradient(w, k)
        velocity = m * velocity - lr * g
        w = w + (m * velocity - lr * g if nesterov else velocity)
    return w


def numpy_adam(weight_decay=0.0, beta_2=0.999, epsilon=1e-7):
    """Adam whose first-moment bias correction is 1 - prod(beta_1 of every step so far)."""
    s, w, m, v, beta_1_product = schedule(), W0.copy(), np.zeros_like(W0), np.zeros_like(W0), 1.0
    for k in range(STEPS):
        lr, beta_1, g = float(s(k)), float(s.momentum(k)), mse_gradient(w, k)
        w = w - lr * weight_decay * w
        m, v = beta_1 * m + (1 - beta_1) * g, beta_2 * v + (1 - beta_2) * g**2
        beta_1_product *= beta_1
        w = w - lr * np.sqrt(1 - beta_2 ** (k + 1)) / (1 - beta_1_product) * m / (np.sqrt(v) + epsilon)
    return w


def numpy_rmsprop(rho=0.9, epsilon=1e-7):
    s, w, mean_square, velocity = schedule(), W0.copy(), np.zeros_like(W0), np.zeros_like(W0)
    for k in range(STEPS):
        lr, m, g = float(s(k)), float(s.momentum(k)), mse_gradient(w, k)
        mean_square = rho * mean_square + (1 - rho) * g**2
        velocity = m * velocity + lr * g / np.sqrt(mean_square + epsilon)
        w = w - velocity
    return w


def linear_model():
    model = keras.Sequential([keras.Input((FEATURES,)), keras.layers.Dense(1, use_bias=False)])
    model.set_weights([W0.astype("float32")])
    return model


def train_with_fit(strategy, make_optimizer, **fit_kwargs):
    with strategy.scope():
        model, optimizer = linear_model(), make_optimizer()
        model.compile(optimizer, loss="mse", **fit_kwargs)
    model.fit(X, Y, batch_size=GLOBAL_BATCH, epochs=1, shuffle=False, verbose=0)
    return model, optimizer


def mse_step(strategy, model, optimizer):
    """The step our trainer takes: per-example losses scaled by the global batch, applied inside strategy.run."""

    @tf.function
    def train_step(x, y):
        def replica_step(x, y):
            with tf.GradientTape() as tape:
                per_example = tf.reduce_mean(tf.square(model(x, training=True) - y), axis=-1)
                loss = tf.nn.compute_average_loss(per_example, global_batch_size=GLOBAL_BATCH)
            optimizer.apply_gradients(zip(tape.gradient(loss, model.trainable_variables), model.trainable_variables))

        strategy.run(replica_step, args=(x, y))

    return train_step


def train_with_custom_loop(strategy, make_optimizer):
    """The loop our trainer uses (`mse_step`) over the linear model."""
    with strategy.scope():
        model, optimizer = linear_model(), make_optimizer()
        optimizer.build(model.trainable_variables)  # slots are variables: create them in scope, not in a replica
    dataset = tf.data.Dataset.from_tensor_slices((X, Y)).batch(GLOBAL_BATCH)

    train_step = mse_step(strategy, model, optimizer)
    for x, y in strategy.experimental_distribute_dataset(dataset):
        train_step(x, y)
    return model, optimizer


def replica_kernels(model):
    """The kernel as each replica holds it (MirroredVariable has one copy per device)."""
    kernel = model.trainable_variables[0].value
    return [v.numpy() for v in kernel.values] if hasattr(kernel, "values") else [kernel.numpy()]


@pytest.mark.parametrize("nesterov", [False, True], ids=["sgd", "nesterov"])
@pytest.mark.parametrize("train", [train_with_fit, train_with_custom_loop], ids=["fit", "custom_loop"])
def test_sgd_on_two_replicas_matches_numpy(two_replicas, train, nesterov):
    model, optimizer = train(two_replicas, lambda: onecycle.SGD(schedule(), nesterov=nesterov))
    assert int(optimizer.iterations.numpy()) == STEPS
    expected = numpy_sgd(nesterov)
    for kernel in replica_kernels(model):
        np.testing.assert_allclose(kernel, expected, rtol=2e-5)
    # Discriminates: a constant momentum (what a Keras 3 callback would silently leave in place) lands elsewhere.
    assert not np.allclose(expected, numpy_sgd_constant_momentum(nesterov), rtol=1e-3)


def numpy_sgd_constant_momentum(nesterov, momentum=0.95):
    s, w, velocity = schedule(), W0.copy(), np.zeros_like(W0)
    for k in range(STEPS):
        g = mse_gradient(w, k)
        velocity = momentum * velocity - float(s(k)) * g
        w = w + (momentum * velocity - float(s(k)) * g if nesterov else velocity)
    return w


@pytest.mark.parametrize(
    "make_optimizer, reference",
    [
        (lambda: onecycle.Adam(schedule()), numpy_adam),
        (lambda: onecycle.AdamW(schedule(), weight_decay=0.1), lambda: numpy_adam(weight_decay=0.1)),
        (lambda: onecycle.RMSprop(schedule()), numpy_rmsprop),
    ],
    ids=["adam", "adamw", "rmsprop"],
)
def test_adaptive_optimizers_on_two_replicas_match_numpy(two_replicas, make_optimizer, reference):
    model, optimizer = train_with_custom_loop(two_replicas, make_optimizer)
    assert int(optimizer.iterations.numpy()) == STEPS
    for kernel in replica_kernels(model):
        np.testing.assert_allclose(kernel, reference(), rtol=2e-5)
    if isinstance(optimizer, onecycle.Adam):  # the running product, advanced once per step, not per replica
        product = optimizer._applied_beta_1_product.value
        for value in getattr(product, "values", [product]):
            np.testing.assert_allclose(value.numpy(), np.prod(schedule().momentum(np.arange(STEPS))), rtol=1e-6)


def test_adam_bias_correction_is_the_product_of_the_betas_used(tmp_path):
    schedule_100 = onecycle.OneCycle(1e-3, 100)
    betas = schedule_100.momentum(np.arange(100)).numpy()

    def optimizer_and_weight():
        optimizer, weight = onecycle.Adam(schedule_100), keras.Variable(np.zeros(1, "float32"))
        optimizer.build([weight])
        return optimizer, weight, tf.train.Checkpoint(optimizer=optimizer, weight=weight)

    optimizer, weight, checkpoint = optimizer_and_weight()
    for t in range(100):  # the product for the update at step t, at every step of a run (O(1): kept, not summed)
        exact = np.prod(betas[: t + 1].astype("float64"))
        np.testing.assert_allclose(optimizer.beta_1_product().numpy(), exact, rtol=1e-5)
        optimizer.apply([tf.constant([1.0])], [weight])
        if t == 39:
            path = checkpoint.write(str(tmp_path / "at40"))
    # A run resumed at step 40 from its checkpoint continues the same product.
    resumed, resumed_weight, restore = optimizer_and_weight()
    restore.read(path).assert_consumed()
    for t in range(40, 100):
        exact = np.prod(betas[: t + 1].astype("float64"))
        np.testing.assert_allclose(resumed.beta_1_product().numpy(), exact, rtol=1e-5)
        resumed.apply([tf.constant([1.0])], [resumed_weight])

    # Keras and PyTorch divide by 1 - beta_1(t)**(t+1) instead: at T=100 their early steps are up to 17% too small.
    keras_correction = 1 - betas.astype("float64") ** np.arange(1, 101)
    exact_correction = 1 - np.cumprod(betas.astype("float64"))
    step_size_ratio = exact_correction / keras_correction
    assert np.argmin(step_size_ratio) == 13
    np.testing.assert_allclose(1 - step_size_ratio.min(), 0.173, atol=5e-4)


def test_constant_beta_1_keeps_keras_adam_exactly():
    ours, theirs = onecycle.Adam(0.01, beta_1=0.8), keras.optimizers.Adam(0.01, beta_1=0.8)
    results = []
    for optimizer in (ours, theirs):
        w = keras.Variable(np.array([1.0, -2.0], "float32"))
        for k in range(5):
            optimizer.apply([tf.constant([0.5, 0.1]) * (k + 1)], [w])
        results.append(w.numpy())
    np.testing.assert_array_equal(*results)


def test_steps_per_execution_sees_the_same_schedule():
    one = train_with_fit(tf.distribute.get_strategy(), lambda: onecycle.SGD(schedule()))[0]
    three = train_with_fit(tf.distribute.get_strategy(), lambda: onecycle.SGD(schedule()), steps_per_execution=3)[0]
    np.testing.assert_allclose(one.get_weights()[0], three.get_weights()[0], rtol=1e-6)
    np.testing.assert_allclose(one.get_weights()[0], numpy_sgd(nesterov=False), rtol=2e-5)


def test_momentum_sources():
    # cycle_momentum=False keeps the float, as in Keras.
    fixed = onecycle.SGD(schedule(), momentum=0.9, cycle_momentum=False)
    fixed.build([keras.Variable(np.zeros(1, "float32"))])
    assert float(fixed.current_momentum) == pytest.approx(0.9)
    # Any callable of the step is accepted as the momentum schedule.
    ramp = keras.optimizers.schedules.PolynomialDecay(0.5, decay_steps=10, end_learning_rate=0.9)
    custom = onecycle.SGD(0.1, momentum=ramp)
    custom.build([keras.Variable(np.zeros(1, "float32"))])
    custom.iterations.assign(5)
    assert float(custom.current_momentum) == pytest.approx(0.7)
    # Two momentum sources at once is ambiguous.
    with pytest.raises(ValueError, match="pass cycle_momentum=False"):
        onecycle.Adam(schedule(), beta_1=ramp)
    with pytest.raises(ValueError, match="weight_decay must be > 0"):
        onecycle.AdamW(schedule(), weight_decay=0.0)


def test_exclude_biases_and_norms_from_weight_decay():
    model = keras.Sequential([keras.Input((4, 4, 3)), keras.layers.Conv2D(2, 3), keras.layers.BatchNormalization()])
    optimizer = onecycle.SGD(0.1, weight_decay=0.5)
    onecycle.exclude_biases_and_norms_from_weight_decay(optimizer, model.trainable_variables)
    before = [v.numpy() for v in model.trainable_variables]
    optimizer.apply([tf.zeros_like(v) for v in model.trainable_variables], model.trainable_variables)
    kernel, bias, gamma, beta = [v.numpy() for v in model.trainable_variables]
    np.testing.assert_allclose(kernel, before[0] * (1 - 0.1 * 0.5), rtol=1e-6)
    for after, original in zip((bias, gamma, beta), before[1:]):
        np.testing.assert_array_equal(after, original)


@pytest.mark.parametrize(
    "make_optimizer",
    [
        lambda: onecycle.SGD(schedule(), nesterov=True),
        lambda: onecycle.AdamW(schedule(), weight_decay=0.01),
        lambda: onecycle.RMSprop(schedule(), centered=True),
    ],
    ids=["sgd", "adamw", "rmsprop"],
)
def test_keras_file_round_trip_keeps_schedule_and_state(tmp_path, make_optimizer):
    model, optimizer = train_with_fit(tf.distribute.get_strategy(), make_optimizer)
    path = str(tmp_path / "model.keras")
    model.save(path)
    restored = keras.models.load_model(path)
    assert type(restored.optimizer) is type(optimizer)
    assert restored.optimizer.get_config() == optimizer.get_config()  # schedule, momentum source, hyperparameters
    assert int(restored.optimizer.iterations.numpy()) == STEPS
    assert float(restored.optimizer.learning_rate) == pytest.approx(float(schedule()(STEPS)))
    for saved, loaded in zip(optimizer.variables, restored.optimizer.variables):
        np.testing.assert_array_equal(saved.numpy(), loaded.numpy())
    # Both continue identically: the schedule and momentum resume at step STEPS.
    for m in (model, restored):
        m.fit(X[:GLOBAL_BATCH], Y[:GLOBAL_BATCH], batch_size=GLOBAL_BATCH, verbose=0)
    np.testing.assert_allclose(model.get_weights()[0], restored.get_weights()[0], rtol=1e-6)


def test_float16_overflow_on_one_replica_skips_the_step_on_all(two_replicas, monkeypatch):
    strategy = two_replicas
    reduced = []  # the dtypes all-reduced across replicas: GPU collectives refuse int32
    all_reduce = tf.distribute.ReplicaContext.all_reduce
    monkeypatch.setattr(
        tf.distribute.ReplicaContext,
        "all_reduce",
        lambda self, op, value, options=None: (
            reduced.extend(t.dtype for t in tf.nest.flatten(value)) or all_reduce(self, op, value, options)
        ),
    )
    with strategy.scope():
        optimizer = onecycle.LossScaleOptimizer(onecycle.SGD(schedule()))
        weights = tf.Variable([1.0, 2.0])
        optimizer.build([weights])

    @tf.function
    def step(overflowing_replica):
        def replica_step():
            replica = tf.distribute.get_replica_context().replica_id_in_sync_group
            gradient = tf.where(replica == overflowing_replica, tf.constant([np.inf, 1.0]), tf.constant([1.0, 1.0]))
            optimizer.apply([gradient * optimizer.dynamic_scale], [weights])

        strategy.run(replica_step)

    step(tf.constant(1))  # only the second replica overflows
    assert reduced and tf.int32 not in reduced
    for replica_weights in weights.values:
        np.testing.assert_array_equal(replica_weights.numpy(), [1.0, 2.0])
    assert int(optimizer.iterations.numpy()) == 0  # the schedule does not advance on a skipped step
    assert optimizer.dynamic_scale.numpy() == 2.0**14

    step(tf.constant(-1))  # no replica overflows: a normal update with the lr of step 0, all-reduced (summed)
    expected = np.array([1.0, 2.0]) - float(schedule()(0)) * 2.0
    for replica_weights in weights.values:
        np.testing.assert_allclose(replica_weights.numpy(), expected, rtol=1e-6)
    assert int(optimizer.iterations.numpy()) == 1


def test_a_skipped_float16_step_does_not_advance_adams_product(two_replicas):
    with two_replicas.scope():
        optimizer = onecycle.LossScaleOptimizer(onecycle.Adam(schedule()))
        weights = tf.Variable([1.0, 2.0])
        optimizer.build([weights])

    @tf.function
    def step(gradient):
        two_replicas.run(lambda: optimizer.apply([gradient * optimizer.dynamic_scale], [weights]))

    step(tf.constant([np.inf, 1.0]))  # skipped on both replicas
    step(tf.constant([1.0, 1.0]))  # applied: step 0
    product = optimizer.inner_optimizer._applied_beta_1_product.value
    for value in product.values:
        np.testing.assert_allclose(value.numpy(), float(schedule().momentum(0)), rtol=1e-6)
    assert int(optimizer.iterations.numpy()) == 1


class CountingOneCycle(onecycle.OneCycle):
    """A OneCycle that counts how often its rate and its momentum are built into a traced step."""

    calls = {"lr": 0, "momentum": 0}

    def __call__(self, step):
        CountingOneCycle.calls["lr"] += not tf.executing_eagerly()
        return super().__call__(step)

    def momentum(self, step):
        CountingOneCycle.calls["momentum"] += not tf.executing_eagerly()
        return super().momentum(step)


@pytest.mark.parametrize("replicas", [1, 2])
@pytest.mark.parametrize(
    "make_optimizer",
    [
        lambda s: onecycle.SGD(s, momentum=0.9, nesterov=True, weight_decay=5e-4),
        lambda s: onecycle.AdamW(s, weight_decay=0.01),
        lambda s: onecycle.RMSprop(s, weight_decay=1e-3),
    ],
    ids=["sgd", "adamw", "rmsprop"],
)
def test_each_schedule_is_evaluated_once_per_step_and_replica(two_replicas, replicas, make_optimizer):
    """Keras reads the learning rate once more for every decayed variable; here three variables share one value
    per replica's device (the update itself is checked against NumPy above)."""
    strategy = two_replicas if replicas == 2 else tf.distribute.get_strategy()
    with strategy.scope():
        variables = [tf.Variable(tf.ones([3, 3])), tf.Variable(tf.ones([3])), tf.Variable(tf.ones([2, 2]))]
        optimizer = make_optimizer(CountingOneCycle(0.1, 10))
        optimizer.build(variables)

    @tf.function
    def step():
        strategy.run(lambda: optimizer.apply([tf.ones_like(v) for v in variables], variables))

    CountingOneCycle.calls.update(lr=0, momentum=0)
    step.get_concrete_function()
    momentum_reads = 1 if isinstance(optimizer, onecycle.Adam) else 0  # the product's advance, in the replica
    assert CountingOneCycle.calls == {"lr": replicas, "momentum": replicas * (1 + momentum_reads)}


def dense_with_bias():
    model = keras.Sequential([keras.Input((FEATURES,)), keras.layers.Dense(1)])
    model.set_weights([W0.astype("float32"), np.array([0.25], "float32")])
    return model


def train_dense(strategy, make_optimizer, prepare=lambda optimizer, model: None, steps=range(STEPS), state=None):
    """The custom loop over a dense layer with a bias, `prepare(optimizer, model)` run before the optimizer is
    built; `state` (model, optimizer) continues a run instead of starting one."""
    with strategy.scope():
        model, optimizer = state or (dense_with_bias(), make_optimizer())
        if state is None:
            prepare(optimizer, model)
            optimizer.build(model.trainable_variables)

    train_step = mse_step(strategy, model, optimizer)
    for k in steps:
        batch = tf.data.Dataset.from_tensor_slices((X, Y)).batch(GLOBAL_BATCH).skip(k).take(1)
        for x, y in strategy.experimental_distribute_dataset(batch):
            train_step(x, y)
    return model, optimizer


def dense_gradients(w, b, step):
    """(kernel gradient, bias gradient) of the mean squared error of global batch `step`."""
    x, y = X[step * GLOBAL_BATCH : (step + 1) * GLOBAL_BATCH], Y[step * GLOBAL_BATCH : (step + 1) * GLOBAL_BATCH]
    residual = x @ w + b - y
    return 2.0 / GLOBAL_BATCH * x.T @ residual, 2.0 / GLOBAL_BATCH * residual.sum(axis=0)


def numpy_torch_sgd(nesterov, weight_decay, bias_factor, freeze_bias_at=None):
    """torch.optim.SGD's documented step, one param group per variable as airbench builds them: the bias at
    `bias_factor` x the lr with weight decay weight_decay / bias_factor; lr and momentum change every step."""
    s = schedule()
    params, buffers = [W0.copy(), np.array([0.25])], [0.0, 0.0]
    for k in range(STEPS):
        lr, m = float(s(k)), float(s.momentum(k))
        for i, g in enumerate(dense_gradients(*params, k)):
            if i == 1 and freeze_bias_at is not None and k >= freeze_bias_at:
                continue  # requires_grad = False: no update, the buffer kept
            factor = bias_factor if i == 1 else 1.0
            g = g + weight_decay / factor * params[i]
            buffers[i] = m * buffers[i] + g if k else g  # PyTorch starts the buffer at the first gradient
            params[i] = params[i] - lr * factor * (g + m * buffers[i] if nesterov else buffers[i])
    return params


@pytest.mark.parametrize("nesterov", [False, True], ids=["sgd", "nesterov"])
def test_pytorch_form_with_a_bias_lr_factor_matches_torchs_update_on_two_replicas(two_replicas, nesterov):
    def prepare(optimizer, model):
        optimizer.multiply_learning_rate([model.layers[0].bias], 4.0)

    def make():
        return onecycle.SGD(schedule(), nesterov=nesterov, momentum_form="pytorch", weight_decay=0.05)

    model, optimizer = train_dense(two_replicas, make, prepare)
    kernel, bias = numpy_torch_sgd(nesterov, 0.05, 4.0)
    for replica in range(2):
        weights = [v.value.values[replica].numpy() for v in model.trainable_variables]
        np.testing.assert_allclose(weights[0], kernel, rtol=2e-5)
        np.testing.assert_allclose(weights[1], bias, rtol=2e-5)
    # Discriminates: without the factor, and in Keras's form (the lr inside the velocity), the weights differ.
    assert not np.allclose(numpy_torch_sgd(nesterov, 0.05, 1.0)[1], bias, rtol=1e-3)
    keras_form, _ = train_dense(two_replicas, lambda: onecycle.SGD(schedule(), nesterov=nesterov), prepare)
    torch_form, _ = train_dense(
        two_replicas, lambda: onecycle.SGD(schedule(), nesterov=nesterov, momentum_form="pytorch"), prepare
    )
    assert not np.allclose(keras_form.get_weights()[0], torch_form.get_weights()[0], rtol=1e-3)


def numpy_adaptive_with_a_bias_factor(kind, bias_factor, weight_decay=0.0, epsilon=1e-7):
    """Adam (`kind="adam"`, decoupled decay at the base lr) or RMSprop over the kernel and the bias, the bias
    at `bias_factor` x the lr, the same moments otherwise: each variable its own update."""
    s = schedule()
    params = [W0.copy(), np.array([0.25])]
    first, second = [np.zeros_like(p) for p in params], [np.zeros_like(p) for p in params]
    beta_1_product = 1.0
    for k in range(STEPS):
        lr, m = float(s(k)), float(s.momentum(k))
        beta_1_product *= m
        for i, g in enumerate(dense_gradients(*params, k)):
            factored_lr = lr * (bias_factor if i == 1 else 1.0)
            if kind == "adam":
                params[i] = params[i] - lr * weight_decay * params[i]  # Keras's decay: the base lr, unmultiplied
                first[i], second[i] = m * first[i] + (1 - m) * g, 0.999 * second[i] + 0.001 * g**2
                correction = np.sqrt(1 - 0.999 ** (k + 1)) / (1 - beta_1_product)
                params[i] = params[i] - factored_lr * correction * first[i] / (np.sqrt(second[i]) + epsilon)
            else:  # RMSprop with momentum: the velocity holds lr * g / rms
                second[i] = 0.9 * second[i] + 0.1 * g**2
                first[i] = m * first[i] + factored_lr * g / np.sqrt(second[i] + epsilon)
                params[i] = params[i] - first[i]
    return params


@pytest.mark.parametrize(
    "make_optimizer, kind, weight_decay",
    [
        (lambda: onecycle.Adam(schedule()), "adam", 0.0),
        (lambda: onecycle.AdamW(schedule(), weight_decay=0.1), "adam", 0.1),
        (lambda: onecycle.RMSprop(schedule()), "rmsprop", 0.0),
    ],
    ids=["adam", "adamw", "rmsprop"],
)
def test_a_bias_lr_factor_in_the_adaptive_optimizers_matches_numpy_on_two_replicas(
    two_replicas, make_optimizer, kind, weight_decay
):
    def prepare(optimizer, model):
        optimizer.multiply_learning_rate([model.layers[0].bias], 4.0)

    model, _ = train_dense(two_replicas, make_optimizer, prepare)
    kernel, bias = numpy_adaptive_with_a_bias_factor(kind, 4.0, weight_decay)
    for replica in range(2):
        weights = [v.value.values[replica].numpy() for v in model.trainable_variables]
        np.testing.assert_allclose(weights[0], kernel, rtol=2e-5)
        np.testing.assert_allclose(weights[1], bias, rtol=2e-5)
    # Discriminates: without the factor the bias ends elsewhere.
    assert not np.allclose(numpy_adaptive_with_a_bias_factor(kind, 1.0, weight_decay)[1], bias, rtol=1e-3)


@pytest.mark.parametrize(
    "make_optimizer",
    [
        lambda: onecycle.SGD(schedule(), nesterov=True, momentum_form="pytorch", weight_decay=0.05),
        lambda: onecycle.SGD(schedule(), nesterov=True, weight_decay=0.05),  # Keras's decoupled decay: frozen too
        lambda: onecycle.Adam(schedule(), weight_decay=0.05),
        lambda: onecycle.RMSprop(schedule()),
    ],
    ids=["sgd_pytorch", "sgd_keras", "adam", "rmsprop"],
)
def test_a_frozen_variable_and_its_state_stop_at_the_freeze_step_across_a_resume(
    two_replicas, make_optimizer, tmp_path
):
    freeze_at = 3

    def prepare(optimizer, model):
        optimizer.freeze_from_step([model.layers[0].bias], freeze_at)

    unfrozen, _ = train_dense(two_replicas, make_optimizer, steps=range(freeze_at))
    straight, optimizer = train_dense(two_replicas, make_optimizer, prepare)
    kernel, bias = straight.trainable_variables
    np.testing.assert_array_equal(bias.numpy(), unfrozen.trainable_variables[1].numpy())  # steps 0..2 applied only
    assert not np.allclose(kernel.numpy(), unfrozen.trainable_variables[0].numpy())  # the kernel trained on
    if isinstance(optimizer, onecycle.SGD) and optimizer.momentum_form == "pytorch":
        np.testing.assert_allclose(
            bias.numpy(), numpy_torch_sgd(True, 0.05, 1.0, freeze_bias_at=freeze_at)[1], rtol=2e-5
        )

    # Resumed from a checkpoint of step 2: the freeze is a function of the restored step.
    first, first_optimizer = train_dense(two_replicas, make_optimizer, prepare, steps=range(2))
    path = tf.train.Checkpoint(model=first, optimizer=first_optimizer).save(str(tmp_path / "ckpt"))
    with two_replicas.scope():
        model, optimizer = dense_with_bias(), make_optimizer()
        prepare(optimizer, model)
        optimizer.build(model.trainable_variables)
    tf.train.Checkpoint(model=model, optimizer=optimizer).restore(path)
    resumed, _ = train_dense(two_replicas, None, steps=range(2, STEPS), state=(model, optimizer))
    for a, b in zip(resumed.get_weights(), straight.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6)
