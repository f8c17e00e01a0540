"""onecycle.Lookahead against a NumPy transcription of airbench94's LookaheadState and its call sites."""

import numpy as np
import pytest
import tensorflow as tf

import onecycle

TOTAL, EVERY = 12, 5  # T not a multiple of k: the final copy discards the last two steps' training, as airbench
RNG = np.random.default_rng(0)
INITIAL = [RNG.normal(size=(3, 2)).astype("float32"), RNG.normal(size=(2,)).astype("float32")]
DELTAS = [[RNG.normal(size=w.shape).astype("float32") for w in INITIAL] for _ in range(TOTAL)]


def numpy_airbench(total=TOTAL, every=EVERY):
    """airbench94's loop: after each step s (1-based) `update(decay=alpha[s])` if s % 5 == 0, and at s == T
    `update(decay=1.0)`; update: ema.lerp_(net, 1 - decay); net.copy_(ema)."""
    alpha = 0.95**every * (np.arange(total + 1) / total) ** 3
    net, ema = [w.astype(np.float64) for w in INITIAL], [w.astype(np.float64) for w in INITIAL]

    def update(decay):
        for i in range(len(net)):
            ema[i] = ema[i] + (1 - decay) * (net[i] - ema[i])
            net[i] = ema[i].copy()

    for s in range(1, total + 1):
        net = [w + d for w, d in zip(net, DELTAS[s - 1])]  # the optimizer's step
        if s % every == 0:
            update(alpha[s])
        if s == total:
            update(1.0)
    return net


def run(strategy, steps, state=None):
    """Applies DELTAS[s-1] (the optimizer's step, the same on every replica) then the lookahead update, for s in
    `steps`; `state` (weights, lookahead) continues instead of starting."""
    with strategy.scope():
        weights, lookahead = state or ([tf.Variable(w) for w in INITIAL], None)
        lookahead = lookahead or onecycle.Lookahead(weights, TOTAL, EVERY)
    deltas = [[tf.constant(d) for d in step_deltas] for step_deltas in DELTAS]

    @tf.function
    def step(s, step_deltas):
        for weight, delta in zip(weights, step_deltas):
            weight.assign_add(delta)
        lookahead.update(s)

    for s in steps:
        step(tf.constant(s, tf.int64), deltas[s - 1])
    return weights, lookahead


@pytest.mark.parametrize("replicas", [1, 2])
def test_lookahead_matches_airbench_on_one_and_two_replicas(replicas, two_replicas):
    strategy = two_replicas if replicas == 2 else tf.distribute.get_strategy()
    weights, _ = run(strategy, range(1, TOTAL + 1))
    for weight, expected in zip(weights, numpy_airbench()):
        for value in getattr(weight, "values", [weight]):  # every replica's copy
            np.testing.assert_allclose(value.numpy(), expected, rtol=1e-5, atol=1e-6)
    # Discriminates: without the final copy (or without lookahead at all) the weights are elsewhere.
    plain = [w + sum(d[i] for d in DELTAS) for i, w in enumerate(INITIAL)]
    assert not np.allclose(plain[0], numpy_airbench()[0], atol=1e-3)


def test_the_decay_follows_the_step():
    lookahead = onecycle.Lookahead([tf.Variable(1.0)], total_steps=100, every=5)
    decays = [float(lookahead.decay(s)) for s in (0, 50, 100, 101)]
    np.testing.assert_allclose(decays[:3], [0.0, 0.95**5 / 8, 0.95**5], rtol=1e-6)
    assert decays[3] == 1.0  # past T at a step that is not a move: the copy of the average
    with pytest.raises(ValueError, match="every >= 1"):
        onecycle.Lookahead([], total_steps=10, every=0)


def test_lookahead_resumes_from_a_checkpoint_and_a_repeated_step_moves_once(tmp_path):
    strategy = tf.distribute.get_strategy()
    weights, lookahead = run(strategy, range(1, 8))
    path = tf.train.Checkpoint(weights=weights, lookahead=lookahead).save(str(tmp_path / "ckpt"))
    fresh = [tf.Variable(np.zeros_like(w)) for w in INITIAL]
    restored = onecycle.Lookahead(fresh, TOTAL, EVERY)
    tf.train.Checkpoint(weights=fresh, lookahead=restored).restore(path).assert_consumed()
    resumed, _ = run(strategy, range(8, TOTAL + 1), state=(fresh, restored))
    for weight, expected in zip(resumed, numpy_airbench()):
        np.testing.assert_allclose(weight.numpy(), expected, rtol=1e-5, atol=1e-6)

    # Step 5 repeated (its update called again without a new step): the average moves once, not twice.
    with strategy.scope():
        weights = [tf.Variable(w) for w in INITIAL]
        lookahead = onecycle.Lookahead(weights, TOTAL, EVERY)
    for weight in weights:
        weight.assign_add(tf.ones_like(weight))
    lookahead.update(tf.constant(5, tf.int64))
    once = [a.numpy().copy() for a in lookahead.averages]
    for weight in weights:
        weight.assign_add(tf.ones_like(weight))
    lookahead.update(tf.constant(5, tf.int64))
    for average, value in zip(lookahead.averages, once):
        np.testing.assert_array_equal(average.numpy(), value)
