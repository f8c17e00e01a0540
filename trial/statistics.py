"""Race statistics of a trial: is its mean accuracy above the target, with what confidence?

The evidence a speed record gives (airbench's and hiverge/cifar10-speedrun's): the mean final accuracy over n
seeds, its 95% confidence interval, and a one-sided t-test of "the mean is at least the target" (null hypothesis:
it is below). Runs of one config differ only by their seed, so their accuracies are taken as independent draws of
one distribution, and the t-test's normality holds well for means of tens of runs (it is approximate for 3).
"""

import math

import numpy as np
from scipy import stats

CONFIDENCE = 0.95


def race_statistics(accuracies, target=None):
    """{n, mean, std, ci95_low, ci95_high} of `accuracies`, and with a `target` {t, p_value}: the p-value of the
    one-sided test whose alternative is "mean > target" (small: the mean is above the target with confidence
    1 - p). With one run there is no spread: the interval and the test are None."""
    values = np.asarray(accuracies, np.float64)
    n, mean = len(values), float(np.mean(values))
    result = {"n": n, "mean": mean, "std": None, "ci95_low": None, "ci95_high": None}
    if target is not None:
        result |= {"target": target, "t": None, "p_value": None}
    if n < 2:
        return result
    std = float(np.std(values, ddof=1))
    standard_error = std / math.sqrt(n)
    half_width = float(stats.t.ppf(0.5 + CONFIDENCE / 2, n - 1)) * standard_error
    result |= {"std": std, "ci95_low": mean - half_width, "ci95_high": mean + half_width}
    if target is not None:
        if standard_error == 0:  # every run the same accuracy: the mean alone decides
            t = math.copysign(math.inf, mean - target) if mean != target else 0.0
            p_value = 0.0 if mean > target else 1.0 if mean < target else 0.5
        else:
            t = (mean - target) / standard_error
            p_value = float(stats.t.sf(t, n - 1))
        result |= {"t": t, "p_value": p_value}
    return result
