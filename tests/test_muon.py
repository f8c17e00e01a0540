"""onecycle.Muon against a NumPy transcription of the records' update (hiverge/cifar10-speedrun, fulcrum's E1):
Nesterov momentum, Newton-Schulz orthogonalisation of each filter's update as a (D, K) matrix, the periodic
projection of each filter to norm sqrt(D), decoupled weight decay; the other variables by PyTorch's Nesterov SGD
with coupled decay at their own rate. The rate and both momenta change every step; 1 and 2 replicas; exact resume;
the trainer with it under float16 loss scaling and XLA."""

import dataclasses

import numpy as np
import pytest
import tensorflow as tf
import tiny

import onecycle
from configs.base import Config
from onecycle.muon import RECORD_COEFFICIENTS, newton_schulz, projection_steps
from training import trainer

STEPS = 12
SHAPES = {"filter": (3, 3, 4, 8), "dense": (8, 5), "bias": (5,)}
BIAS_FACTOR, WEIGHT_DECAY, MUON_WEIGHT_DECAY = 4.0, 0.01, 0.05


def orthogonalised_numpy(matrix, coefficients=RECORD_COEFFICIENTS, steps=3):
    a, b, c = coefficients
    x = matrix / (np.linalg.norm(matrix) + 1e-7)
    tall = x.shape[0] > x.shape[1]
    x = x.T if tall else x
    for _ in range(steps):
        gram = x @ x.T
        x = a * x + (b * gram + c * gram @ gram) @ x
    return x.T if tall else x


def schedules():
    """(learning rate, SGD momentum, Muon momentum) schedules, each moving every step."""
    rate = onecycle.OneCycle(0.3, STEPS, pct_start=0.4, anneal_strategy="linear")

    def muon_momentum(step):
        return 0.5 + 0.03 * tf.cast(step, tf.float32)

    return rate, rate.momentum, muon_momentum


def gradients(step):
    rng = np.random.default_rng(100 + step)
    return {name: rng.normal(size=shape).astype(np.float32) for name, shape in SHAPES.items()}


def initial():
    rng = np.random.default_rng(7)
    return {name: rng.normal(size=shape).astype(np.float32) for name, shape in SHAPES.items()}


def numpy_muon(steps):
    """The records' update, transcribed: the filter and the dense kernel by Muon, the bias by Nesterov SGD."""
    rate, momentum, muon_momentum = schedules()
    weights = {name: value.astype(np.float64) for name, value in initial().items()}
    buffers = {name: np.zeros_like(value) for name, value in weights.items()}
    projecting = projection_steps(STEPS)
    for step in range(steps):
        lr, mu, mu_muon = float(rate(step)), float(momentum(step)), float(muon_momentum(step))
        for name, gradient in gradients(step).items():
            w, gradient = weights[name], gradient.astype(np.float64)
            if name == "bias":  # PyTorch's SGD: coupled decay divided by the rate's factor, Nesterov
                gradient = gradient + WEIGHT_DECAY / BIAS_FACTOR * w
                buffers[name] = mu * buffers[name] + gradient
                weights[name] = w - lr * BIAS_FACTOR * (gradient + mu * buffers[name])
                continue
            buffers[name] = mu_muon * buffers[name] + gradient
            update = gradient + mu_muon * buffers[name]
            outputs = w.shape[-1]
            matrix = update.reshape(-1, outputs).T  # a row per output channel
            orthogonal = orthogonalised_numpy(matrix).T.reshape(w.shape)
            if projecting[step + 1]:
                w = w * np.sqrt(outputs) / (np.linalg.norm(w) + 1e-7)
            weights[name] = (w - lr * orthogonal) * (1 - lr * MUON_WEIGHT_DECAY)
    return weights


def make(strategy):
    rate, _, muon_momentum = schedules()
    with strategy.scope():
        variables = {name: tf.Variable(value, name=name) for name, value in initial().items()}
        optimizer = onecycle.Muon(
            rate,
            muon_momentum=muon_momentum,
            muon_weight_decay=MUON_WEIGHT_DECAY,
            total_steps=STEPS,
            weight_decay=WEIGHT_DECAY,
            orthogonalised=lambda v: len(v.shape) >= 2,  # the records': 4-D only; a dense kernel too, here
        )
        optimizer.multiply_learning_rate([variables["bias"]], BIAS_FACTOR)
        optimizer.build(list(variables.values()))
    return variables, optimizer


def apply(strategy, optimizer, variables, step):
    """One step; on 2 replicas one holds a third of the gradient and the other two thirds, which the optimizer
    all-reduces (a value the same on every replica would not be summed)."""
    replicas = strategy.num_replicas_in_sync
    whole = [tf.constant(g) for g in gradients(step).values()]

    def replica_step():
        replica = tf.cast(tf.distribute.get_replica_context().replica_id_in_sync_group, tf.float32)
        share = (replica + 1) / (replicas * (replicas + 1) / 2)
        optimizer.apply([g * share for g in whole], list(variables.values()))

    tf.function(lambda: strategy.run(replica_step))()


@pytest.mark.parametrize("replicas", [1, 2])
def test_muons_update_is_the_records_step_by_step(replicas, two_replicas):
    strategy = two_replicas if replicas == 2 else tf.distribute.get_strategy()
    variables, optimizer = make(strategy)
    for step in range(STEPS):
        apply(strategy, optimizer, variables, step)
    expected = numpy_muon(STEPS)
    for name, variable in variables.items():
        for copy in strategy.experimental_local_results(variable):  # every replica holds the same values
            np.testing.assert_allclose(copy.numpy(), expected[name], rtol=2e-4, atol=2e-5, err_msg=name)


def test_a_resume_mid_run_is_exact():
    strategy = tf.distribute.get_strategy()
    variables, optimizer = make(strategy)
    for step in range(5):
        apply(strategy, optimizer, variables, step)
    saved = tf.train.Checkpoint(optimizer=optimizer, **variables).write("/tmp/muon_resume_test/ckpt")
    resumed_variables, resumed = make(strategy)
    tf.train.Checkpoint(optimizer=resumed, **resumed_variables).read(saved).assert_consumed()
    for step in range(5, STEPS):
        apply(strategy, optimizer, variables, step)
        apply(strategy, resumed, resumed_variables, step)
    for name in variables:
        np.testing.assert_array_equal(variables[name].numpy(), resumed_variables[name].numpy())


@pytest.mark.parametrize("shape", [(16, 72), (72, 16), (64, 576)])
def test_newton_schulz_is_the_records_and_nearly_orthogonal(shape):
    matrix = np.random.default_rng(3).normal(size=shape).astype(np.float32)
    result = newton_schulz(tf.constant(matrix)).numpy()
    np.testing.assert_allclose(result, orthogonalised_numpy(matrix.astype(np.float64)), rtol=1e-4, atol=1e-5)
    singular = np.linalg.svd(result, compute_uv=False)
    assert singular.min() > 0.7 and singular.max() < 1.3, singular  # U S' V^T, S' near 1
    u, _, vt = np.linalg.svd(matrix, full_matrices=False)
    np.testing.assert_allclose(np.abs(np.sum(result * (u @ vt))) / min(shape), 1.0, atol=0.1)  # aligned with U V^T


def test_the_filters_are_projected_at_a_growing_interval():
    steps = np.flatnonzero(projection_steps(284))
    assert steps[:9].tolist() == [2, 4, 6, 8, 10, 12, 14, 16, 18] and steps[9] == 21  # 2 + floor(15 k / 284)
    gaps = np.diff(steps)
    assert gaps.min() == 2 and 15 <= gaps.max() <= 17 and np.all(np.diff(gaps) >= 0)


@pytest.mark.slow
@pytest.mark.parametrize("precision", ["float32", "mixed_float16"])
def test_the_trainer_trains_and_resumes_with_muon_on_two_replicas(tmp_path, precision, two_replicas):
    """airbench94 with Muon for its filters and the records' linear decay, XLA on, loss-scaled under float16: a run
    stopped and resumed ends where the straight one does, on 2 replicas."""
    config = Config(
        **tiny.AIRBENCH
        | dict(model="airbench94", optimizer="muon", schedule="linear_decay", lr=0.2, epochs=1, jit_compile=True),
        lr_multipliers=("norm_bias=20", "bias=20", "kernel=20"),
        precision=precision,
        stop_at_step=8,
        log_every_steps=1,
        checkpoint_every_steps=100,
    )
    whole = trainer.train_and_evaluate(config, str(tmp_path / "whole"), strategy=two_replicas)
    trainer.train_and_evaluate(dataclasses.replace(config, stop_at_step=4), str(tmp_path / "split"), two_replicas)
    resumed = trainer.train_and_evaluate(config, str(tmp_path / "split"), strategy=two_replicas)
    losses = [h["loss"] for h in whole["history"]]
    assert all(np.isfinite(losses)) and losses[-1] < losses[0]
    for a, b in zip(resumed["history"], whole["history"]):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-5)
