"""The post's callbacks on Keras 3: weights after `fit` against NumPy re-implementations; errors before any step."""

import os
import subprocess
import sys

import keras
import launch
import numpy as np
import pytest
import tensorflow as tf
from test_optimizers import GLOBAL_BATCH, STEPS, W0, X, Y, linear_model, mse_gradient, numpy_rmsprop, schedule

import input_pipeline
import models
import onecycle
from configs.base import Config

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def post_fit(strategy, make_optimizer, scheduler, **compile_kwargs):
    """The post's usage: compile with the optimizer, fit with the callback."""
    with strategy.scope():
        model = linear_model()
        model.compile(optimizer=make_optimizer(), loss="mse", **compile_kwargs)
    model.fit(X, Y, batch_size=GLOBAL_BATCH, epochs=1, shuffle=False, verbose=0, callbacks=[scheduler])
    return model


def kernels(model):
    kernel = model.trainable_variables[0].value
    return [v.numpy() for v in kernel.values] if hasattr(kernel, "values") else [kernel.numpy()]


@pytest.mark.parametrize("steps_per_execution, replicas", [(1, 1), (4, 1), (1, 2)])
def test_post_usage_applies_onecycle_lr_and_momentum_at_every_step(two_replicas, steps_per_execution, replicas):
    # schedule() is OneCycle(0.2, STEPS, pct_start=0.5): the post's OneCycleScheduler(0.2, STEPS, phase_1_pct=0.5).
    strategy = two_replicas if replicas == 2 else tf.distribute.get_strategy()
    scheduler = onecycle.OneCycleScheduler(0.2, np.float64(STEPS), phase_1_pct=0.5)  # the post passes np.ceil(...)
    assert scheduler.schedule.get_config() == schedule().get_config()
    model = post_fit(
        strategy,
        lambda: onecycle.RMSprop(learning_rate=0.2),
        scheduler,
        steps_per_execution=steps_per_execution,
        jit_compile=False,
    )
    assert int(model.optimizer.iterations.numpy()) == STEPS
    for kernel in kernels(model):  # every replica
        np.testing.assert_allclose(kernel, numpy_rmsprop(), rtol=2e-5)


def test_a_second_fit_continues_the_schedule_from_the_optimizer_step():
    """Resumed training (here: fit called again on the same model) goes on from optimizer.iterations."""
    scheduler = onecycle.OneCycleScheduler(0.2, STEPS, phase_1_pct=0.5)
    model = linear_model()
    model.compile(optimizer=onecycle.RMSprop(learning_rate=0.2), loss="mse")
    half = GLOBAL_BATCH * STEPS // 2
    for start in (0, half):
        model.fit(
            X[start : start + half],
            Y[start : start + half],
            batch_size=GLOBAL_BATCH,
            shuffle=False,
            verbose=0,
            callbacks=[scheduler],
        )
    assert int(model.optimizer.iterations.numpy()) == STEPS
    np.testing.assert_allclose(model.get_weights()[0], numpy_rmsprop(), rtol=2e-5)


def numpy_rmsprop_constant_momentum(momentum, rho=0.9, epsilon=1e-7):
    s, w, mean_square, velocity = schedule(), W0.copy(), np.zeros_like(W0), np.zeros_like(W0)
    for k in range(STEPS):
        g = mse_gradient(w, k)
        mean_square = rho * mean_square + (1 - rho) * g**2
        velocity = momentum * velocity + float(s(k)) * g / np.sqrt(mean_square + epsilon)
        w = w - velocity
    return w


def test_stock_optimizer_with_momentum_stops_before_any_step():
    scheduler = onecycle.OneCycleScheduler(0.2, STEPS, phase_1_pct=0.5)
    model = linear_model()
    model.compile(optimizer=keras.optimizers.RMSprop(learning_rate=0.2, momentum=0.9), loss="mse")
    with pytest.raises(ValueError, match=r"use onecycle\.RMSprop\(\.\.\.\) with the same arguments, or pass "):
        model.fit(X, Y, batch_size=GLOBAL_BATCH, epochs=1, shuffle=False, verbose=0, callbacks=[scheduler])
    assert int(model.optimizer.iterations.numpy()) == 0
    np.testing.assert_array_equal(model.get_weights()[0], W0.astype("float32"))


def test_stock_optimizer_without_cycling_momentum_cycles_the_lr_only():
    scheduler = onecycle.OneCycleScheduler(0.2, STEPS, phase_1_pct=0.5, cycle_momentum=False)
    model = post_fit(tf.distribute.get_strategy(), lambda: keras.optimizers.RMSprop(0.2, momentum=0.9), scheduler)
    np.testing.assert_allclose(model.get_weights()[0], numpy_rmsprop_constant_momentum(0.9), rtol=2e-5)


def test_stock_optimizer_without_momentum_cycles_the_lr_and_warns(caplog):
    scheduler = onecycle.OneCycleScheduler(0.2, STEPS, phase_1_pct=0.5)
    model = post_fit(tf.distribute.get_strategy(), lambda: keras.optimizers.RMSprop(0.2), scheduler)
    np.testing.assert_allclose(model.get_weights()[0], numpy_rmsprop_constant_momentum(0.0), rtol=2e-5)
    assert "has no momentum to cycle" in caplog.text and "onecycle.RMSprop" in caplog.text


def test_curves_and_plot():
    scheduler = onecycle.OneCycleScheduler(1.0, 100)
    reference = onecycle.OneCycle(1.0, 100, pct_start=0.3, div_factor=25.0, final_div_factor=1e4)
    np.testing.assert_allclose(scheduler.lrs, reference(np.arange(100)))
    np.testing.assert_allclose(scheduler.moms, reference.momentum(np.arange(100)))
    assert scheduler.lrs[-1] == pytest.approx(1.0 / (25 * 1e4))  # the post's final rate
    figure = scheduler.plot()
    assert [axis.get_title() for axis in figure.axes] == ["Learning Rate", "Momentum"]


@pytest.mark.slow
def test_lr_finder_suggests_on_quickstart_and_restores_the_model():
    data = input_pipeline.load(Config(dataset="quickstart"))
    images = input_pipeline.normalise(data.train_images[:4096], data).numpy()
    model = models.create_model("airbench", (32, 32, 3), 10, width=0.25)
    model.compile(
        optimizer=onecycle.SGD(0.01, momentum=0.9, nesterov=True),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    before = [w.copy() for w in model.get_weights()]
    finder = onecycle.LRFinder(start_lr=1e-4, end_lr=10, max_steps=60, smoothing=0.9)
    model.fit(images, data.train_labels[:4096], batch_size=64, epochs=2, verbose=0, callbacks=[finder])

    assert 10 < len(finder.lrs) <= 60  # stopped at max_steps or at divergence, not at the end of the epochs
    np.testing.assert_allclose(finder.lrs, np.geomspace(1e-4, 10, 60)[: len(finder.lrs)], rtol=1e-5)
    suggestion = finder.suggestion
    assert suggestion["warning"] is None and 1e-4 < suggestion["suggested_max_lr"] < 10
    assert np.isfinite(finder.raw_losses[0]) and finder.raw_losses[0] == pytest.approx(np.log(10), rel=0.3)
    for a, b in zip(model.get_weights(), before):
        np.testing.assert_array_equal(a, b)
    assert int(model.optimizer.iterations.numpy()) == 0 and float(model.optimizer.learning_rate) == pytest.approx(0.01)
    assert len(finder.plot().axes[0].lines) >= 3

    # The same model then trains normally, at its own learning rate.
    history = model.fit(images, data.train_labels[:4096], batch_size=64, epochs=1, verbose=0)
    assert int(model.optimizer.iterations.numpy()) == 64 and np.isfinite(history.history["loss"][0])


@pytest.mark.slow
def test_example_script_runs_and_its_schedule_is_onecycle():
    done = launch.run("examples/keras_one_cycle.py", "--epochs=2", "--train_examples=1024")
    assert done.returncode == 0, done.stderr[-2000:]
    lines = [line for line in done.stdout.splitlines() if line.startswith("epoch ")]
    assert len(lines) == 2
    schedule = onecycle.OneCycle(5e-3, 16, pct_start=0.3)  # ceil(1024 / 128) * 2 steps, the post's defaults
    for epoch, line in enumerate(lines, start=1):
        words = line.split()
        assert int(words[3]) == 8 * epoch
        assert float(words[5]) == pytest.approx(float(schedule(8 * epoch)), rel=1e-5)
        assert float(words[9]) == pytest.approx(float(schedule.momentum(8 * epoch)), abs=1e-4)


def test_plot_returns_a_figure_pyplot_shows_even_headless():
    """`plt.show()` shows what `plot()` returns (pyplot tracks it), and on a machine without a display pyplot
    falls back to Agg instead of failing."""
    code = (
        "import onecycle, matplotlib, matplotlib.pyplot as plt; "
        "figure = onecycle.OneCycleScheduler(1.0, 100).plot(); "
        "print(plt.fignum_exists(figure.number), matplotlib.get_backend().lower())"
    )
    environment = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "MPLBACKEND", "WAYLAND_DISPLAY")}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, env=environment, timeout=300
    )
    assert done.stdout.split() == ["True", "agg"], done.stderr[-2000:]
