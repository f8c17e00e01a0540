"""Muon (Keller Jordan's momentum orthogonalised by Newton-Schulz) as the newest CIFAR-10 speed records run it.

Keras's own `keras.optimizers.Muon` cannot serve them: it gives AdamW to every variable that is not 2-D, so
convolution filters never get Muon. Here, as in airbench94_muon.py, hiverge/cifar10-speedrun and fulcrum's E1:

- each convolution filter (any trainable 4-D variable; `orthogonalised` chooses otherwise) is updated by Muon: its
  Nesterov momentum `u = g + mu * b` (with `b = mu * b + g`), reshaped to a (D, K) matrix, one row per output
  channel (Keras's (kh, kw, in, out) kernel as (out, kh*kw*in): a permutation of PyTorch's columns, which the
  orthogonalisation commutes with), orthogonalised by `newton_schulz`, and applied as `p -= lr * O`, then
  `p *= 1 - lr * muon_weight_decay` (decoupled);
- every so often (`projection_steps`: the records' growing interval) each filter is first rescaled to norm sqrt(D);
- every other variable (BatchNorm biases, the head, the whitening bias) takes PyTorch's Nesterov SGD with coupled
  weight decay, `onecycle.SGD(momentum_form="pytorch")`, at its own rate (`multiply_learning_rate`), its
  momentum cycling with a `OneCycle` like any SGD here.

The rate and both momenta are functions of `optimizer.iterations` (the one clock), evaluated in the compiled
update; the orthogonalisation runs on the all-reduced gradient, identical on every replica (tf.distribute hands
each variable's update the reduced gradient); a resume restores the momentum buffers and the step, so it continues
exactly. The loss's scale does not matter to Muon's filters (the update is normalised): the records' rates hold
whether the loss is a sum or, as here, a mean.
"""

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from onecycle.optimizers import SGD

RECORD_COEFFICIENTS = (3.4576, -4.7391, 2.0843)  # hiverge/cifar10-speedrun and fulcrum's E1, 3 iterations
AIRBENCH_COEFFICIENTS = (3.4445, -4.7750, 2.0315)  # airbench94_muon.py, 3 iterations
NORM_EPSILON = 1e-7


def newton_schulz(matrix, coefficients=RECORD_COEFFICIENTS, steps=3):
    """The records' orthogonalisation of a 2-D `matrix` G: X = G / ||G||_F, then `steps` times A = X X^T,
    X = a X + (b A + c A^2) X (on the transpose when G has more rows than columns): about U S' V^T for
    G = U S V^T, with S' near 1 (between 0.5 and 1.5 by airbench's account; 0.8-1.24 for a random 16x72)."""
    a, b, c = coefficients
    x = matrix / (tf.norm(matrix) + NORM_EPSILON)
    tall = matrix.shape[0] > matrix.shape[1]
    if tall:
        x = tf.transpose(x)
    for _ in range(steps):
        gram = x @ tf.transpose(x)
        x = a * x + (b * gram + c * gram @ gram) @ x
    return tf.transpose(x) if tall else x


def projection_steps(total_steps, growth=15, first_interval=2):
    """bool [total_steps + 2]: at which 1-based steps k the filters are rescaled to norm sqrt(D) before their
    update: when k - last >= 2 + floor(15 k / T), the interval growing from 2 to 17 (hiverge, E1: first at k = 2)."""
    projecting, last = np.zeros(total_steps + 2, bool), 0
    for k in range(1, total_steps + 1):
        if k - last >= first_interval + (growth * k) // total_steps:
            projecting[k], last = True, k
    return projecting


def convolution_filters(variable):
    """The records' partition: Muon for every trainable 4-D variable, a convolution's filters."""
    return len(variable.shape) == 4


@keras.saving.register_keras_serializable(package="onecycle")
class Muon(SGD):
    """Muon for convolution filters, PyTorch's Nesterov SGD for the rest (see the module's docstring).

    Args:
        learning_rate: a float or a schedule of the step: Muon's rate for the filters; the other variables take
            it times their `multiply_learning_rate` factor. Default 0.02.
        momentum: the SGD variables' momentum (a float, a schedule, or a `OneCycle`'s). Default 0.825 (hiverge).
        muon_momentum: the filters' momentum, a float or a schedule of the step. Default 0.655 (hiverge, E1).
        muon_weight_decay: the filters' decoupled decay per unit of rate. Default 0 (E1: 1.6002e-3).
        total_steps: the run's length, for the filters' projection steps; None: no projection.
        coefficients, ns_steps: Newton-Schulz's (a, b, c) and iterations. Default the records' newest, 3.
        orthogonalised: which variables Muon updates (a predicate). Default `convolution_filters`.
        **kwargs: `onecycle.SGD`'s (`weight_decay`, PyTorch's coupled decay for the SGD variables; ...).

    Example:
        >>> optimizer = onecycle.Muon(onecycle.LinearDecay(0.2255, 284, 0.05), total_steps=284)
    """

    def __init__(
        self,
        learning_rate=0.02,
        momentum=0.825,
        muon_momentum=0.655,
        muon_weight_decay=0.0,
        total_steps=None,
        coefficients=RECORD_COEFFICIENTS,
        ns_steps=3,
        orthogonalised=convolution_filters,
        cycle_momentum=True,
        **kwargs,
    ):
        kwargs = {"nesterov": True, "momentum_form": "pytorch"} | kwargs  # from a saved config too
        super().__init__(learning_rate, momentum, cycle_momentum=cycle_momentum, **kwargs)
        self.muon_momentum, self.muon_weight_decay = muon_momentum, float(muon_weight_decay)
        self.total_steps, self.coefficients, self.ns_steps = total_steps, tuple(coefficients), int(ns_steps)
        self.orthogonalised = orthogonalised
        self._orthogonalised_keys = set()

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        self._orthogonalised_keys = {self._var_key(v) for v in var_list if self.orthogonalised(v)}

    def is_orthogonalised(self, variable):
        """Whether Muon updates `variable` (else SGD does)."""
        return self._var_key(variable) in self._orthogonalised_keys

    def _use_weight_decay(self, variable):
        return not self.is_orthogonalised(variable) and super()._use_weight_decay(variable)

    def _update(self, gradient, variable, learning_rate):
        if not self.is_orthogonalised(variable):
            return super()._update(gradient, variable, learning_rate)
        dtype = variable.dtype
        lr = ops.cast(learning_rate, dtype)
        gradient = ops.cast(gradient, dtype)
        momentum = self.muon_momentum
        mu = ops.cast(momentum(self._iterations) if callable(momentum) else momentum, dtype)
        buffer = self.momentums[self._get_variable_index(variable)]
        self.assign(buffer, mu * buffer + gradient)
        outputs = variable.shape[-1]
        matrix = tf.transpose(tf.reshape(gradient + mu * buffer, [-1, outputs]))  # (D, K): a filter a row
        orthogonal = tf.reshape(tf.transpose(newton_schulz(matrix, self.coefficients, self.ns_steps)), variable.shape)
        weights = tf.convert_to_tensor(variable)
        if self.total_steps:
            step = tf.minimum(tf.cast(self._iterations, tf.int64) + 1, self.total_steps + 1)  # 1-based
            projecting = tf.gather(tf.constant(projection_steps(self.total_steps)), step)
            scale = ops.cast(np.sqrt(outputs), dtype) / (tf.norm(weights) + NORM_EPSILON)
            weights = tf.where(projecting, weights * scale, weights)
        self.assign(variable, (weights - lr * orthogonal) * (1 - lr * self.muon_weight_decay))

    def get_config(self):
        config = super().get_config()
        config.update(
            muon_momentum=self.muon_momentum
            if not callable(self.muon_momentum)
            else keras.saving.serialize_keras_object(self.muon_momentum),
            muon_weight_decay=self.muon_weight_decay,
            total_steps=self.total_steps,
            coefficients=self.coefficients,
            ns_steps=self.ns_steps,
        )
        return config
