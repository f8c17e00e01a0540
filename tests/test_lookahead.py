"""onecycle.Lookahead against a NumPy transcription of airbench94's LookaheadState and its call sites."""

import math

import numpy as np
import pytest
import tensorflow as tf

import onecycle

# A short airbench: epochs of 4 steps, 3.5 of them (T = 14, a multiple of neither k nor the epoch), a move every
# 3 steps from epoch 1 on. The average begins at step 6, moves at 9 and 12, and is copied in at 8 (an epoch's
# end, discarding steps 7 and 8), 12 (no-op after the move) and 14 (T, discarding 13 and 14).
TOTAL, EVERY, EPOCH, START_EPOCHS = 14, 3, 4, 1
RNG = np.random.default_rng(0)
INITIAL = [RNG.normal(size=(3, 2)).astype("float32"), RNG.normal(size=(2,)).astype("float32")]
DELTAS = [[RNG.normal(size=w.shape).astype("float32") for w in INITIAL] for _ in range(TOTAL)]


def numpy_airbench():
    """airbench94.py's loop, transcribed: after each step (current_steps = s, 1-based), if the epoch is at least
    ema.start_epochs and s % every_n_steps == 0, create the state (a copy of the net) or `update(decay=alpha[s])`;
    break at s >= T; after each epoch, if the state exists, `update(decay=1.0)`. update: ema.lerp_(net, 1 - decay);
    net.copy_(ema)."""
    alpha = 0.95**EVERY * (np.arange(TOTAL + 1) / TOTAL) ** 3
    net, ema, s = [w.astype(np.float64) for w in INITIAL], None, 0

    def update(decay):
        for i in range(len(net)):
            ema[i] = ema[i] + (1 - decay) * (net[i] - ema[i])
            net[i] = ema[i].copy()

    for epoch in range(math.ceil(TOTAL / EPOCH)):
        for _ in range(EPOCH):
            net = [w + d for w, d in zip(net, DELTAS[s])]  # the optimizer's step
            s += 1
            if epoch >= START_EPOCHS and s % EVERY == 0:
                if ema is None:
                    ema = [w.copy() for w in net]
                else:
                    update(alpha[s])
            if s >= TOTAL:
                break
        if ema is not None:
            update(1.0)
    return net


def lookahead_of(weights):
    return onecycle.Lookahead(weights, TOTAL, EVERY, start_step=START_EPOCHS * EPOCH, copy_every=EPOCH)


def run(strategy, steps, state=None):
    """Applies DELTAS[s-1] (the optimizer's step, the same on every replica) then the lookahead update, for s in
    `steps`; `state` (weights, lookahead) continues instead of starting."""
    with strategy.scope():
        weights, lookahead = state or ([tf.Variable(w) for w in INITIAL], None)
        lookahead = lookahead or lookahead_of(weights)
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
    # Discriminates: without lookahead, or with it from step 0 and copied in only at T (no start, no epoch-end
    # copies), the weights are elsewhere.
    plain = [w + sum(d[i] for d in DELTAS) for i, w in enumerate(INITIAL)]
    assert not np.allclose(plain[0], numpy_airbench()[0], atol=1e-3)
    with tf.distribute.get_strategy().scope():
        weights = [tf.Variable(w) for w in INITIAL]
        lookahead = onecycle.Lookahead(weights, TOTAL, EVERY)
    for s in range(1, TOTAL + 1):
        for weight, delta in zip(weights, DELTAS[s - 1]):
            weight.assign_add(delta)
        lookahead.update(tf.constant(s, tf.int64))
    assert not np.allclose(weights[0].numpy(), numpy_airbench()[0], atol=1e-3)


def test_the_decay_follows_the_step():
    lookahead = onecycle.Lookahead([tf.Variable(1.0)], total_steps=100, every=5)
    decays = [float(lookahead.decay(s)) for s in (5, 50, 100, 101)]
    np.testing.assert_allclose(decays[:3], [0.0, 0.95**5 / 8, 0.95**5], rtol=1e-6)  # step 5: the average begins
    assert decays[3] == 1.0  # past T at a step that is not a move: the copy of the average
    later = onecycle.Lookahead([tf.Variable(1.0)], total_steps=100, every=5, start_step=48)
    assert [float(later.decay(s)) for s in (45, 50)] == [pytest.approx(0.95**5 * 0.45**3), 0.0]  # begins at 50
    with pytest.raises(ValueError, match="every >= 1"):
        onecycle.Lookahead([], total_steps=10, every=0)


def test_lookahead_resumes_from_a_checkpoint_and_a_repeated_step_moves_once(tmp_path):
    strategy = tf.distribute.get_strategy()
    weights, lookahead = run(strategy, range(1, 8))
    path = tf.train.Checkpoint(weights=weights, lookahead=lookahead).save(str(tmp_path / "ckpt"))
    fresh = [tf.Variable(np.zeros_like(w)) for w in INITIAL]
    restored = lookahead_of(fresh)
    tf.train.Checkpoint(weights=fresh, lookahead=restored).restore(path).assert_consumed()
    resumed, _ = run(strategy, range(8, TOTAL + 1), state=(fresh, restored))
    for weight, expected in zip(resumed, numpy_airbench()):
        np.testing.assert_allclose(weight.numpy(), expected, rtol=1e-5, atol=1e-6)

    # Step 9 repeated (its update called again without a new step): the average moves once, not twice.
    with strategy.scope():
        weights = [tf.Variable(w) for w in INITIAL]
        lookahead = lookahead_of(weights)
    for weight in weights:
        weight.assign_add(tf.ones_like(weight))
    lookahead.update(tf.constant(9, tf.int64))
    once = [a.numpy().copy() for a in lookahead.averages]
    for weight in weights:
        weight.assign_add(tf.ones_like(weight))
    lookahead.update(tf.constant(9, tf.int64))
    for average, value in zip(lookahead.averages, once):
        np.testing.assert_array_equal(average.numpy(), value)
