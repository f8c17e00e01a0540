"""Numbers over runs: pure functions of the runs' summaries (as `training.trainer` writes them), nothing else.

A trial is judged by its mean over seeds and the fraction of runs that reach the target, never by its best run.
"""

import numpy as np

from training.report import first_crossing
from trial.statistics import race_statistics


def aggregate(runs, target=None, price_per_hour=0.0):
    """Mean and spread of a trial's runs; time and epochs to `target` over the runs that reached it.

    A run that diverged counts with the accuracy of its last evaluation, 0 if it had none. `race` holds the
    final accuracy's 95% confidence interval and, with a target, the one-sided t-test of "mean >= target".
    """
    race = race_statistics([run["eval_accuracy"] or 0.0 for run in runs], target)
    result = {
        "runs": len(runs),
        "diverged": sum(run.get("status") == "diverged" for run in runs),
        "final_accuracy_mean": race["mean"],
        "final_accuracy_std": race["std"] or 0.0,  # the sample std (ddof 1); 0 for one run
        "best_accuracy_mean": float(np.mean([run["best_eval_accuracy"] or 0.0 for run in runs])),
        "images_per_second_mean": _mean([run["images_per_second"] for run in runs]),
        "record_seconds_mean": _mean([run.get("record_seconds") for run in runs]),
        "wall_seconds_total": float(sum(run["wall_seconds"] for run in runs)),
        "race": race,
    }
    plain = [run.get("eval_accuracy_plain") for run in runs]
    if all((run.get("eval_views") or 1) > 1 for run in runs) and None not in plain:  # with and without TTA
        result["final_accuracy_plain_mean"] = float(np.mean(plain))
        result["final_accuracy_plain_std"] = float(np.std(plain, ddof=1)) if len(plain) > 1 else 0.0
    if price_per_hour:
        result["cost_total"] = result["wall_seconds_total"] / 3600 * price_per_hour
    if target is not None:
        result |= to_threshold(runs, target, price_per_hour)
    return result


def to_threshold(runs, threshold, price_per_hour=0.0):
    """Fraction of runs whose curve reaches `threshold`, and mean/median epochs and seconds to it among those."""
    crossings = [c for c in (first_crossing(run["evaluations"], threshold) for run in runs) if c is not None]
    result = {"threshold": threshold, "reached": len(crossings), "reached_fraction": len(crossings) / len(runs)}
    for key in ("epoch", "train_seconds", "dawnbench_seconds"):
        values = [c[key] for c in crossings]
        result[f"{key}_to_threshold_mean"] = _mean(values)
        result[f"{key}_to_threshold_median"] = float(np.median(values)) if values else None
    if price_per_hour and crossings:
        result["cost_to_threshold_mean"] = result["dawnbench_seconds_to_threshold_mean"] / 3600 * price_per_hour
    return result


def common_threshold(trials):
    """The comparison's default threshold: the lowest of the arms' mean (over seeds) best accuracies, of the runs
    that did not diverge (a diverged run would pull it down to nothing: its arm is marked in the table instead).
    None when every run diverged."""
    means = [
        float(np.mean([run["best_eval_accuracy"] or 0.0 for run in kept]))
        for runs in trials.values()
        if (kept := [run for run in runs if run.get("status") != "diverged"])
    ]
    return min(means, default=None)


def mean_curve(runs, kind, key):
    """(epochs, mean of `key`) at the points that every run recorded; `kind` is "evaluations" or "history"."""
    common = set.intersection(*(set(record["step"] for record in run[kind]) for run in runs))
    steps = sorted(common)
    by_step = [{record["step"]: record for record in run[kind]} for run in runs]
    epochs = [by_step[0][step]["epoch"] for step in steps]
    return np.array(epochs), np.array([np.mean([records[step][key] for records in by_step]) for step in steps])


def _mean(values):
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else None
