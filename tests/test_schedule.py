"""OneCycle against PyTorch's published test vectors and an independent NumPy re-implementation."""

import itertools
import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from onecycle import OneCycle


def reference_one_cycle(
    step,
    max_lr,
    total_steps,
    pct_start,
    anneal_strategy,
    div_factor,
    final_div_factor,
    three_phase,
    base_momentum,
    max_momentum,
):
    """PyTorch OneCycleLR.get_lr, transcribed loop for loop into plain Python floats (float64)."""
    initial_lr = max_lr / div_factor
    min_lr = initial_lr / final_div_factor
    if three_phase:
        phases = [
            (pct_start * total_steps - 1, initial_lr, max_lr, max_momentum, base_momentum),
            (2 * pct_start * total_steps - 2, max_lr, initial_lr, base_momentum, max_momentum),
            (total_steps - 1, initial_lr, min_lr, max_momentum, max_momentum),
        ]
    else:
        phases = [
            (pct_start * total_steps - 1, initial_lr, max_lr, max_momentum, base_momentum),
            (total_steps - 1, max_lr, min_lr, base_momentum, max_momentum),
        ]

    def anneal(start, end, pct):
        if anneal_strategy == "cos":
            return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)
        return (end - start) * pct + start

    start_step = 0.0
    for i, (end_step, lr0, lr1, m0, m1) in enumerate(phases):
        if step <= end_step or i == len(phases) - 1:
            pct = (step - start_step) / (end_step - start_step)
            return anneal(lr0, lr1, pct), anneal(m0, m1, pct)
        start_step = end_step


def test_pytorch_published_two_phase_linear():
    schedule = OneCycle(
        25.0, 10, anneal_strategy="linear", div_factor=25, final_div_factor=2, base_momentum=1, max_momentum=22
    )
    steps = np.arange(10)
    np.testing.assert_allclose(schedule(steps), [1, 13, 25, 21.5, 18, 14.5, 11, 7.5, 4, 0.5], rtol=1e-6)
    np.testing.assert_allclose(schedule.momentum(steps), [22, 11.5, 1, 4, 7, 10, 13, 16, 19, 22], rtol=1e-6)


def test_pytorch_published_three_phase_linear():
    schedule = OneCycle(
        25.0, 10, pct_start=0.4, anneal_strategy="linear", div_factor=25, final_div_factor=4, three_phase=True
    )
    np.testing.assert_allclose(schedule(np.arange(10)), [1, 9, 17, 25, 17, 9, 1, 0.75, 0.5, 0.25], rtol=1e-6)


GRID = [
    dict(total_steps=t, pct_start=p, anneal_strategy=a, three_phase=three, div_factor=d, final_div_factor=f)
    for t, p, a, three, d, f in itertools.product(
        [10, 37, 100, 1000, 9750], [0.1, 0.25, 0.3, 0.45], ["cos", "linear"], [False, True], [25.0, 10.0], [1e4, 2.0]
    )
    if p * t >= 2  # leaves every phase at least one step wide; narrower ones are rejected (see below)
]


@pytest.mark.parametrize("settings", GRID, ids=lambda s: "-".join(str(v) for v in s.values()))
def test_matches_pytorch_semantics_at_every_step(settings):
    schedule = OneCycle(max_lr=0.4, base_momentum=0.85, max_momentum=0.95, **settings)
    steps = np.arange(settings["total_steps"])
    expected = np.array([reference_one_cycle(s, 0.4, base_momentum=0.85, max_momentum=0.95, **settings) for s in steps])
    np.testing.assert_allclose(schedule(steps), expected[:, 0], rtol=5e-6)
    np.testing.assert_allclose(schedule.momentum(steps), expected[:, 1], rtol=5e-6)


@pytest.mark.parametrize("anneal_strategy", ["cos", "linear"])
@pytest.mark.parametrize("three_phase", [False, True])
def test_holds_final_value_past_the_end(anneal_strategy, three_phase):
    schedule = OneCycle(1.0, 50, pct_start=0.3, anneal_strategy=anneal_strategy, three_phase=three_phase)
    past = schedule(np.arange(49, 200)).numpy()
    assert np.all(past == np.float32(schedule.final_lr))
    assert np.all(past > 0)
    np.testing.assert_allclose(past[0], 1.0 / 25 / 1e4, rtol=1e-6)
    assert np.all(schedule.momentum(np.arange(49, 200)).numpy() == np.float32(0.95))


def test_accepts_tensors_in_tf_function_and_xla():
    schedule = OneCycle(2.0, 100, three_phase=True, pct_start=0.2)
    steps = tf.range(100, dtype=tf.int64)
    eager = schedule(steps)

    @tf.function(jit_compile=True)
    def compiled(step):
        return schedule(step), schedule.momentum(step)

    lr, momentum = zip(*[compiled(tf.constant(s, tf.int64)) for s in (0, 19, 37, 99)])
    np.testing.assert_allclose(lr, tf.gather(eager, [0, 19, 37, 99]), rtol=1e-6)
    np.testing.assert_allclose(momentum, schedule.momentum(np.array([0, 19, 37, 99])), rtol=1e-6)


def test_fastai_defaults_documented_in_module():
    # fit_one_cycle: pct_start 0.25, div 25, final lr max_lr / 1e5, momentum 0.95 -> 0.85 -> 0.95.
    schedule = OneCycle(1e-2, 400, pct_start=0.25, div_factor=25.0, final_div_factor=1e5 / 25.0)
    assert schedule(0).numpy() == pytest.approx(1e-2 / 25)
    assert schedule(99).numpy() == pytest.approx(1e-2)  # the peak is at pct_start * T - 1
    assert schedule(399).numpy() == pytest.approx(1e-2 / 1e5)
    assert schedule.momentum(99).numpy() == pytest.approx(0.85)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(max_lr=0.0), "max_lr must be > 0, got 0.0"),
        (dict(max_lr=-1.0), "max_lr must be > 0"),
        (dict(total_steps=0), "total_steps must be a positive int, got 0"),
        (dict(total_steps=10.5), "total_steps must be a positive int"),
        (dict(pct_start=0.0), r"pct_start must be a fraction in \(0, 1\), got 0.0"),
        (dict(pct_start=30), r"pct_start must be a fraction in \(0, 1\), got 30"),
        (dict(pct_start=1.0), "pct_start must be a fraction"),
        (dict(anneal_strategy="cosine"), "anneal_strategy must be one of"),
        (dict(div_factor=0.0), "div_factor must be > 0"),
        (dict(final_div_factor=-2.0), "final_div_factor must be > 0"),
        (dict(three_phase=True, pct_start=0.6), "three_phase needs pct_start <= 0.5"),
        (dict(base_momentum=0.96), "base_momentum <= max_momentum"),
        (dict(total_steps=3, pct_start=0.3), "a phase of the schedule would span"),  # warm-up of 0.1 steps
        (dict(total_steps=10, pct_start=0.1), "a phase of the schedule would span 0 steps"),
        (dict(total_steps=4, pct_start=0.25, three_phase=True), "a phase of the schedule would span 0 steps"),
    ],
)
def test_rejects_invalid_settings_at_construction(kwargs, message):
    arguments = dict(max_lr=1.0, total_steps=100) | kwargs
    with pytest.raises(ValueError, match=message):
        OneCycle(**arguments)


def test_serialization_round_trip():
    schedule = OneCycle(
        0.3,
        777,
        pct_start=0.2,
        anneal_strategy="linear",
        three_phase=True,
        div_factor=10,
        final_div_factor=100,
        base_momentum=0.8,
        max_momentum=0.9,
    )
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(schedule))
    assert isinstance(restored, OneCycle)
    assert restored.get_config() == schedule.get_config()
    steps = np.arange(800)
    np.testing.assert_array_equal(restored(steps), schedule(steps))
    np.testing.assert_array_equal(restored.momentum(steps), schedule.momentum(steps))
