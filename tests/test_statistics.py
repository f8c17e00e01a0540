"""trial.statistics: the interval and the one-sided test against hand computations on fixed numbers."""

import math

import pytest

from trial.statistics import race_statistics
from trial.tables import _race_rows, comparison_markdown


def _t3_cdf(t):
    """Student's t CDF with 3 degrees of freedom, in closed form: 1/2 + (u/(1+u^2) + atan(u))/pi, u = t/sqrt(3)."""
    u = t / math.sqrt(3)
    return 0.5 + (u / (1 + u * u) + math.atan(u)) / math.pi


def test_the_interval_and_p_value_equal_a_hand_computation():
    race = race_statistics([0.93, 0.94, 0.95, 0.96], target=0.94)
    # mean 0.945; squared deviations 2 x (0.015^2 + 0.005^2) = 5e-4, over n - 1 = 3; t(0.975, 3) = 3.182446
    std = math.sqrt(5e-4 / 3)
    half_width = 3.182446 * std / 2
    assert race["n"] == 4 and race["mean"] == pytest.approx(0.945) and race["std"] == pytest.approx(std)
    assert race["ci95_low"] == pytest.approx(0.945 - half_width, abs=1e-7)
    assert race["ci95_high"] == pytest.approx(0.945 + half_width, abs=1e-7)
    t = 0.005 / (std / 2)
    assert race["t"] == pytest.approx(t) and race["p_value"] == pytest.approx(1 - _t3_cdf(t), rel=1e-9)
    assert race_statistics([0.93, 0.94, 0.95, 0.96], target=0.95)["p_value"] == pytest.approx(1 - _t3_cdf(-t))


def test_one_run_has_no_interval_and_equal_runs_are_decided_by_their_mean():
    assert race_statistics([0.95], 0.94) == {
        "n": 1, "mean": 0.95, "std": None, "ci95_low": None, "ci95_high": None, "target": 0.94, "t": None,
        "p_value": None,
    }  # fmt: skip
    assert race_statistics([0.95, 0.95], 0.94)["p_value"] == 0.0
    assert race_statistics([0.93, 0.93], 0.94)["p_value"] == 1.0
    assert "t" not in race_statistics([0.93, 0.95])


def test_the_evidence_lines_say_the_interval_the_test_and_the_verdict():
    above = "\n".join(_race_rows(race_statistics([0.95, 0.951, 0.949, 0.952], 0.94)))
    assert "| 95% confidence interval | [94." in above and "(t, n=4)" in above
    assert "| mean >= 94.00%? | one-sided t-test: t = " in above and "(above it with 95% confidence;" in above
    assert "a record's claim takes n = 200, as the CIFAR-10 records give" in above  # 4 runs are not a record's
    below = "\n".join(_race_rows(race_statistics([0.93, 0.94, 0.95, 0.96], 0.94)))
    assert "p = 0.248 (not shown to be above it;" in below
    assert "none: 1 run" in _race_rows(race_statistics([0.9]))[0]


def test_each_comparison_arm_shows_its_p_value_against_its_target():
    def arm(name, accuracies):
        race = race_statistics(accuracies, 0.94)
        return {"arm": name, "runs": len(accuracies), "race": race, "reached": len(accuracies)} | {
            "final_accuracy_mean": race["mean"],
            "final_accuracy_std": race["std"] or 0.0,
            "best_accuracy_mean": race["mean"],
            "epoch_to_threshold_mean": 3.0,
            "train_seconds_to_threshold_mean": 10.0,
            "epoch_ratio_to_first_arm": 1.0,
            "train_seconds_ratio_to_first_arm": 1.0,
        }

    environment = {"tensorflow": "2.21", "keras": "3", "replicas": 1, "precision": "float32", "hostname": "h"}
    record = {
        "threshold": 0.94,
        "threshold_rule": "config.trial.threshold",
        "arms": [arm("a", [0.93, 0.94, 0.95, 0.96]), arm("b", [0.95])],
        "environment": environment | {"devices": ["/device:CPU:0"]},
        "conventions": {},
    }
    rows = {line.split(" | ")[0]: line.split(" | ") for line in comparison_markdown("t", record).splitlines()}
    assert rows["| `a`"][4] == "0.248 (94.00%)"  # the hand computation of the test above
    assert rows["| `b`"][4] == "-"  # one run: no spread, no test
