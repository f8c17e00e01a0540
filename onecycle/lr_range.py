"""The LR range test's parts (Leslie Smith; fastai's `lr_find`): an exponential sweep, smoothing, suggestions.

Train a few hundred steps while the learning rate grows exponentially from `start_lr` to `end_lr`; where the
loss falls fastest, training is fast and stable; where it shoots up, it diverges. `ExponentialSweep` is the
schedule (a pure function of the optimizer step, like `OneCycle`, so it runs inside the compiled step on every
replica); `smooth` and `suggest` read the recorded curve. The sweep's runner lives in `training.lr_find`.
"""

import math

import keras
import numpy as np
import tensorflow as tf

from onecycle.figures import new_figure

# Below this relative drop of the smoothed loss, from the start of the curve to its minimum, there is no clear
# descent to read a learning rate from.
MIN_DESCENT = 0.05
# The 1Cycle rule's plateau: the smoothed loss within this fraction of its descent above the minimum.
PLATEAU = 0.1
RULES = ("onecycle", "valley", "minimum_over_10", "steepest")


@keras.saving.register_keras_serializable(package="onecycle")
class ExponentialSweep(keras.optimizers.schedules.LearningRateSchedule):
    """`start_lr * (end_lr / start_lr) ** (k / (num_steps - 1))` with `k = step - first_step`: step `first_step`
    at start_lr, `num_steps` later at end_lr, held there past the end (and at start_lr before the start).

    Args:
        start_lr: the first learning rate, > 0.
        end_lr: the last, > start_lr.
        num_steps: the sweep's length in optimizer steps, an int >= 2.
        first_step: the optimizer step at which the sweep starts. Default 0.

    Example:
        >>> sweep = onecycle.ExponentialSweep(1e-4, 10.0, 200)  # the rate of the LR range test at each step
    """

    def __init__(self, start_lr, end_lr, num_steps, first_step=0):
        super().__init__()
        self.first_step = int(first_step)
        if not 0 < start_lr < end_lr:
            raise ValueError(f"ExponentialSweep: need 0 < start_lr < end_lr, got start_lr={start_lr}, end_lr={end_lr}")
        if not isinstance(num_steps, int) or num_steps < 2:
            raise ValueError(f"ExponentialSweep: num_steps must be an int >= 2, got {num_steps!r}")
        self.start_lr, self.end_lr, self.num_steps = float(start_lr), float(end_lr), num_steps

    def __call__(self, step):
        fraction = tf.clip_by_value(tf.cast(step - self.first_step, tf.float32) / (self.num_steps - 1), 0.0, 1.0)
        return self.start_lr * tf.exp(fraction * math.log(self.end_lr / self.start_lr))

    def get_config(self):
        return {
            "start_lr": self.start_lr,
            "end_lr": self.end_lr,
            "num_steps": self.num_steps,
            "first_step": self.first_step,
        }


def smooth(losses, beta=0.98):
    """fastai's smoothing: an exponential moving average with bias correction, `avg_k / (1 - beta**(k+1))`."""
    smoothed, average = [], 0.0
    for k, loss in enumerate(losses):
        average = beta * average + (1 - beta) * loss
        smoothed.append(average / (1 - beta ** (k + 1)))
    return np.array(smoothed)


def suggest(lrs, smoothed, skip_start=0.1, rule="onecycle"):
    """Suggests `max_lr` from a sweep's smoothed loss curve by `rule`, and reports what the other rules read.

    - onecycle (the default; for 1Cycle's `max_lr`): the lr from which the smoothed loss stays within `PLATEAU`
      (10%) of its descent above its minimum, up to the minimum: where it stops falling. Smith reads 1Cycle's
      max_lr as the largest rate that still trains, which is there, not in the middle of the descent.
    - valley (fastai's default, made for training at a fixed rate): the longest stretch over which the smoothed
      loss keeps falling (the longest decreasing subsequence, so an isolated spike is stepped over), up to the
      curve's minimum; the lr a half of the way along it.
    - minimum_over_10: the lr of the lowest smoothed loss, divided by 10 (fastai's `minimum`).
    - steepest: the lr where the smoothed loss falls fastest against log(lr) (fastai's `steep`; a spike fools it).

    Only the finite head of the curve counts (a sweep ends at NaN or inf), without its first `skip_start`
    fraction (the optimizer's warm-up noise). A curve that does not drop by `MIN_DESCENT` from its start to its
    minimum has no clear descent: the result has a `warning` and no `suggested_max_lr`. A curve still falling at
    its end gets a `note`: the suggestion stands, but the range did not show where training breaks down.
    """
    if rule not in RULES:
        raise ValueError(f"suggest: rule must be one of {RULES}, got {rule!r}")
    lrs, smoothed = np.asarray(lrs, np.float64), np.asarray(smoothed, np.float64)
    finite = np.isfinite(smoothed)
    end = len(smoothed) if finite.all() else int(np.argmin(finite))
    start = int(skip_start * end)
    if end - start < 4:
        return {"suggested_max_lr": None, "rule": rule, "warning": f"only {end - start} usable points"}
    lrs, curve = lrs[start:end], smoothed[start:end]
    lowest = int(np.argmin(curve))
    valley_start, valley_end = _longest_descent(curve[: lowest + 1])
    valley = valley_start + (valley_end - valley_start) // 2
    result = {
        "rule": rule,
        "onecycle_lr": float(lrs[_plateau_start(curve, lowest)]),
        "valley_lr": float(lrs[valley]),
        "minimum_lr": float(lrs[lowest]),
        "minimum_over_10_lr": float(lrs[lowest] / 10),
        "steepest_lr": float(lrs[int(np.argmin(np.gradient(curve, np.log(lrs))))]),
        "descent": float((curve[0] - curve[lowest]) / abs(curve[0])) if curve[0] else 0.0,
        "warning": None,
        "note": None,
    }
    if lowest == len(curve) - 1:
        result["note"] = (
            "the smoothed loss was still falling at the end of the sweep, so its divergence was not seen and a "
            "higher max_lr may train better: sweep to a larger end_lr, and try a few multiples of the suggestion"
        )
    if result["descent"] < MIN_DESCENT:
        result["warning"] = (
            f"no clear descent: the smoothed loss falls only {100 * result['descent']:.1f}% before its minimum; "
            f"widen the range (start_lr lower, end_lr higher) or sweep more steps"
        )
    result["suggested_max_lr"] = None if result["warning"] else result[f"{rule}_lr"]
    return result


def _plateau_start(curve, lowest):
    """The first index from which `curve` stays within `PLATEAU` of its descent above its minimum at `lowest`,
    up to `lowest`."""
    within = curve[: lowest + 1] <= curve[lowest] + PLATEAU * (curve[0] - curve[lowest])
    above = np.flatnonzero(~within)
    return int(above[-1]) + 1 if len(above) else 0


def _longest_descent(values):
    """(first, last) index of the longest descent: the longest strictly decreasing subsequence of `values`,
    counted back from where it ends by its length, as fastai's `valley` does (O(n^2); n is a few hundred)."""
    length = [1] * len(values)
    for i in range(1, len(values)):
        length[i] = 1 + max((length[j] for j in range(i) if values[j] > values[i]), default=0)
    last = int(np.argmax(length))
    return last - length[last] + 1, last


def plot_sweep(lrs, losses, smoothed, suggestion, path=None, title="LR range test"):
    """Loss against the learning rate (log axis), raw and smoothed, with the suggestions marked.

    Returns the figure: pyplot's, which `plt.show()` and notebooks display (`onecycle.figures.new_figure`); with
    `path`, it is saved as a PNG from a bare figure that pyplot does not keep.
    """
    from matplotlib.figure import Figure

    figure = Figure(figsize=(8, 5)) if path else new_figure((8, 5))
    axis = figure.subplots()
    axis.plot(lrs, losses, color="lightgrey", lw=1, label="loss")
    axis.plot(lrs, smoothed, color="tab:blue", lw=2, label="smoothed loss")
    marks = (
        ("onecycle_lr", "tab:red", "-"),
        ("valley_lr", "tab:green", "-."),
        ("minimum_over_10_lr", "tab:orange", "--"),
        ("steepest_lr", "tab:purple", ":"),
    )
    for key, colour, style in marks:
        if suggestion.get(key):
            axis.axvline(
                suggestion[key], color=colour, ls=style, label=f"{key.removesuffix('_lr')}: {suggestion[key]:.3g}"
            )
    finite = np.asarray(smoothed)[np.isfinite(smoothed)]
    if len(finite):  # keep the divergence from flattening the interesting part
        lowest = min(finite.min(), np.nanmin(np.where(np.isfinite(losses), losses, np.nan)))
        axis.set_ylim(lowest - 0.05 * abs(lowest), min(finite.max(), 2.5 * finite[0]) * 1.05)
    axis.set_xscale("log")
    axis.set_xlabel("learning rate")
    axis.set_ylabel("training loss")
    axis.set_title(title + (f"\n{suggestion['warning']}" if suggestion.get("warning") else ""), fontsize=9)
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    if path:
        figure.savefig(path, dpi=100)
    return figure
