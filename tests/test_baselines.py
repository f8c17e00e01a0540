"""The baseline schedules against hand-computed values and a plain-Python formula, inside Keras and serialized."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

import onecycle
from onecycle import Constant, StepDecay, WarmupCosine


def reference_step(step, max_lr, total_steps, milestones, factor):
    return max_lr * factor ** sum(step >= round(m * total_steps) for m in milestones)


def reference_warmup_cosine(step, max_lr, total_steps, warmup_pct, final_lr_ratio):
    warmup = round(warmup_pct * total_steps)
    if step < warmup:
        return max_lr * (step + 1) / warmup
    final = max_lr * final_lr_ratio
    progress = min(step - warmup, total_steps - 1 - warmup) / (total_steps - 1 - warmup)
    return final + (max_lr - final) * (1 + math.cos(math.pi * progress)) / 2


def test_constant_everywhere():
    np.testing.assert_array_equal(Constant(0.3)(np.arange(5)), np.float32([0.3] * 5))
    assert float(Constant(0.3)(7)) == pytest.approx(0.3)


def test_step_decay_hand_computed():
    # T=8, milestones at steps 4 and 6: 1, 1, 1, 1, 0.1, 0.1, 0.01, 0.01, then held.
    values = StepDecay(1.0, 8, milestones=(0.5, 0.75), factor=0.1)(np.arange(10))
    np.testing.assert_allclose(values, [1, 1, 1, 1, 0.1, 0.1, 0.01, 0.01, 0.01, 0.01], rtol=1e-6)


def test_warmup_cosine_hand_computed():
    # T=10, W=2: warm-up 0.5, 1; cosine over steps 2..9 (span 7) from 1 to 0.
    values = WarmupCosine(1.0, 10, warmup_pct=0.2)(np.arange(11))
    expected = [0.5, 1.0] + [(1 + math.cos(math.pi * k / 7)) / 2 for k in range(8)] + [0.0]
    np.testing.assert_allclose(values, expected, atol=1e-7)


@pytest.mark.parametrize("total_steps", [10, 97, 1000])
@pytest.mark.parametrize("milestones, factor", [((0.5, 0.75), 0.1), ((0.3, 0.6, 0.9), 0.2), ((0.5,), 0.5)])
def test_step_decay_matches_reference(total_steps, milestones, factor):
    steps = np.arange(total_steps + 5)
    expected = [reference_step(s, 0.4, total_steps, milestones, factor) for s in steps]
    np.testing.assert_allclose(StepDecay(0.4, total_steps, milestones, factor)(steps), expected, rtol=1e-6)


@pytest.mark.parametrize("total_steps", [10, 97, 1000])
@pytest.mark.parametrize("warmup_pct, final_lr_ratio", [(0.0, 0.0), (0.05, 0.0), (0.1, 0.01), (0.3, 0.1)])
def test_warmup_cosine_matches_reference(total_steps, warmup_pct, final_lr_ratio):
    steps = np.arange(total_steps + 5)
    expected = [reference_warmup_cosine(s, 0.4, total_steps, warmup_pct, final_lr_ratio) for s in steps]
    schedule = WarmupCosine(0.4, total_steps, warmup_pct, final_lr_ratio)
    np.testing.assert_allclose(schedule(steps), expected, rtol=2e-6, atol=1e-9)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: Constant(0.0), "Constant: lr must be > 0"),
        (lambda: StepDecay(0.1, 100, milestones=(0.75, 0.5)), "milestones must be increasing fractions"),
        (lambda: StepDecay(0.1, 100, milestones=(50,)), r"in \(0, 1\)"),
        (lambda: StepDecay(0.1, 100, factor=10), "factor must be in"),
        (lambda: StepDecay(0.1, 0), "total_steps must be a positive int"),
        (lambda: WarmupCosine(0.1, 100, warmup_pct=5), "warmup_pct must be a fraction"),
        (lambda: WarmupCosine(0.1, 2, warmup_pct=0.5), "the cosine phase would span 0 steps"),
        (lambda: WarmupCosine(-1, 100), "max_lr must be > 0"),
    ],
)
def test_rejects_invalid_settings(make, message):
    with pytest.raises(ValueError, match=message):
        make()


@pytest.mark.parametrize(
    "schedule", [Constant(0.2), StepDecay(0.2, 50, (0.4, 0.8), 0.3), WarmupCosine(0.2, 50, 0.1, 0.05)]
)
def test_serialization_round_trip(schedule):
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(schedule))
    assert type(restored) is type(schedule) and restored.get_config() == schedule.get_config()
    np.testing.assert_array_equal(restored(np.arange(60)), schedule(np.arange(60)))


def test_drives_a_keras_optimizer_at_its_iterations_with_constant_momentum():
    """In a momentum optimizer the baseline sets the lr at each step; momentum does not cycle."""
    schedule = WarmupCosine(0.1, 6, warmup_pct=0.5)
    optimizer = onecycle.SGD(schedule, momentum=0.9)
    weight = tf.Variable(0.0)
    velocity, expected = 0.0, 0.0
    for step in range(6):
        optimizer.apply([tf.constant(1.0)], [weight])
        velocity = 0.9 * velocity - reference_warmup_cosine(step, 0.1, 6, 0.5, 0.0)
        expected += velocity
        assert float(optimizer.current_momentum) == pytest.approx(0.9)
    assert float(weight) == pytest.approx(expected, rel=1e-5)
