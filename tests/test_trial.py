"""Trials and comparisons: real runs on the quick-start set, checked against recomputations from their records."""

import dataclasses
import json
import os

import matplotlib.image
import numpy as np
import pytest
import tiny

from configs.base import Config, Trial
from training.workdir import WorkdirError
from trial import aggregate, run_comparison, run_trial

# 20 steps an epoch; 12 steps per run, an evaluation every 4.
TINY = tiny.RESNET9 | dict(batch_size=500, lr_reference_batch=500, stop_at_step=12, eval_every_epochs=0.2)
TINY |= dict(log_every_steps=4, checkpoint_every_steps=4, steps_per_loop=4, target_accuracy=0.15)


def strict_json(path):
    """Parses like a strict parser: NaN and Infinity are not JSON."""
    with open(path) as f:
        return json.load(f, parse_constant=lambda name: pytest.fail(f"{path} holds {name}"))


def assert_plot(path):
    """A PNG with something drawn on it (not one flat colour)."""
    with open(path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    pixels = matplotlib.image.imread(path)
    assert pixels.shape[0] > 200 and pixels.shape[1] > 200 and pixels.std() > 0.05


@pytest.mark.slow
def test_trial_records_crossings_aggregates_and_resumes_without_repeating(tmp_path):
    config = Config(**TINY, trial=Trial(runs=2))
    record = run_trial(config, str(tmp_path))
    runs = record["runs"]
    assert [run["seed"] for run in runs] == [0, 1] and all(run["steps"] == 12 for run in runs)

    for run in runs:
        assert [e["step"] for e in run["evaluations"]] == [4, 8, 12]
        first = next((e for e in run["evaluations"] if e["accuracy"] >= 0.15), None)
        assert run["target"] == first
        assert run["train_seconds"] + run["eval_seconds"] + run["compile_seconds"] <= run["wall_seconds"]
    assert runs[0]["evaluations"] != runs[1]["evaluations"]  # two seeds, two runs

    crossings = [run["target"] for run in runs if run["target"]]
    finals = [run["eval_accuracy"] for run in runs]
    expected = {
        "runs": 2,
        "final_accuracy_mean": np.mean(finals),
        "final_accuracy_std": abs(finals[0] - finals[1]) / np.sqrt(2),  # the sample std of two numbers
        "reached_fraction": len(crossings) / 2,
        "epoch_to_threshold_mean": np.mean([c["epoch"] for c in crossings]) if crossings else None,
        "train_seconds_to_threshold_median": np.median([c["train_seconds"] for c in crossings]) if crossings else None,
    }
    for key, value in expected.items():
        assert record["aggregate"][key] == pytest.approx(value), key

    written = strict_json(tmp_path / "trial.json")
    race = written["aggregate"].pop("race")
    assert written["aggregate"] == pytest.approx({k: v for k, v in record["aggregate"].items() if k != "race"})
    assert race["n"] == 2 and race["mean"] == pytest.approx(np.mean(finals)) and race["p_value"] is not None
    assert "one-sided t-test" in (tmp_path / "trial.md").read_text()
    assert {"tensorflow", "keras", "devices", "replicas", "precision", "hostname"} <= set(written["environment"])
    assert "| 0 |" in (tmp_path / "trial.md").read_text() and "dawnbench" in (tmp_path / "trial.md").read_text()
    for name in ("trial.png", "schedule.png"):
        assert_plot(tmp_path / name)
    for run in ("seed0", "seed1"):
        strict_json(tmp_path / run / "summary.json")
        strict_json(tmp_path / run / "config.json")

    # Interrupted after seed 1's last checkpoint, before its summary: the rerun leaves seed 0 alone and resumes 1.
    finished = (tmp_path / "seed0" / "summary.json").stat().st_mtime_ns
    os.remove(tmp_path / "seed1" / "summary.json")
    again = run_trial(config, str(tmp_path))
    assert (tmp_path / "seed0" / "summary.json").stat().st_mtime_ns == finished
    assert [run["processes"] for run in again["runs"]] == [1, 2]
    assert again["runs"][1]["evaluations"] == runs[1]["evaluations"]  # nothing trained or evaluated twice

    # Rerun with another config: its finished runs are not reported as the new config's; nothing is rewritten
    before = (tmp_path / "trial.json").read_bytes()
    with pytest.raises(WorkdirError, match=r"seed0' holds a run with another config \(lr: 0.4 -> 0.05\)"):
        run_trial(dataclasses.replace(config, lr=0.05), str(tmp_path))
    assert (tmp_path / "trial.json").read_bytes() == before


@pytest.mark.slow
def test_comparison_threshold_crossings_match_the_curves(tmp_path):
    config = Config(**TINY, trial=Trial(runs=1, arms=("schedule=onecycle", "schedule=constant lr=0.05")))
    record = run_comparison(config, str(tmp_path))
    curves = {name: trial["runs"][0]["evaluations"] for name, trial in record["trials"].items()}
    assert list(curves) == list(config.trial.arms) and all(len(curve) == 3 for curve in curves.values())
    assert record["trials"]["schedule=constant lr=0.05"]["runs"][0]["schedule"] == "constant"

    bests = {name: max(e["accuracy"] for e in curve) for name, curve in curves.items()}
    threshold = min(bests.values())
    assert record["threshold"] == pytest.approx(threshold)
    epochs = {name: next(e["epoch"] for e in curve if e["accuracy"] >= threshold) for name, curve in curves.items()}
    assert [row["arm"] for row in record["arms"]] == list(config.trial.arms)
    for row in record["arms"]:
        name = row["arm"]
        assert row["reached"] == 1 and row["epoch_to_threshold_mean"] == pytest.approx(epochs[name])
        assert row["epoch_ratio_to_first_arm"] == pytest.approx(epochs[name] / epochs["schedule=onecycle"])

    written = strict_json(tmp_path / "comparison.json")
    assert [row["arm"] for row in written["arms"]] == list(config.trial.arms)
    table = (tmp_path / "comparison.md").read_text()
    assert all(f"`{name}`" in table for name in config.trial.arms)
    for name in ("comparison.png", "schedules.png"):
        assert_plot(tmp_path / name)
    assert os.path.exists(tmp_path / "schedule=constant_lr=0.05" / "seed0" / "summary.json")


@pytest.mark.parametrize(
    "arms, message",
    [
        (("schedule=onecycle",), "needs at least two"),
        (("schedule=onecycle", "lrr=0.1"), "cannot apply 'lrr=0.1'"),
        (("schedule=onecycle", "schedule=cosine"), "config.schedule='cosine' is not one of"),
    ],
)
def test_bad_arms_fail_before_any_run(tmp_path, arms, message):
    with pytest.raises(ValueError, match=message):
        run_comparison(Config(**TINY, trial=Trial(arms=arms)), str(tmp_path / "cmp"))
    assert not (tmp_path / "cmp").exists()


def records(accuracies, seconds_per_eval=10.0):
    return [
        {
            "step": 10 * (i + 1),
            "epoch": i + 1.0,
            "accuracy": a,
            "train_seconds": seconds_per_eval * (i + 1),
            "dawnbench_seconds": 2 * seconds_per_eval * (i + 1),
        }
        for i, a in enumerate(accuracies)
    ]


def test_aggregate_by_hand():
    runs = [
        {
            "eval_accuracy": 0.9,
            "best_eval_accuracy": 0.95,
            "images_per_second": 100.0,
            "wall_seconds": 60.0,
            "evaluations": records([0.5, 0.95, 0.9]),
        },
        {
            "eval_accuracy": 0.8,
            "best_eval_accuracy": 0.8,
            "images_per_second": 300.0,
            "wall_seconds": 120.0,
            "evaluations": records([0.6, 0.7, 0.8]),
        },
        {
            "eval_accuracy": 0.94,
            "best_eval_accuracy": 0.94,
            "images_per_second": None,
            "wall_seconds": 60.0,
            "evaluations": records([0.94, 0.93, 0.94], seconds_per_eval=4.0),
        },
    ]
    result = aggregate.aggregate(runs, target=0.94, price_per_hour=3.0)
    assert result["runs"] == 3 and result["reached"] == 2 and result["reached_fraction"] == pytest.approx(2 / 3)
    assert result["final_accuracy_mean"] == pytest.approx(0.88)
    assert result["final_accuracy_std"] == pytest.approx(np.std([0.9, 0.8, 0.94], ddof=1))
    assert result["epoch_to_threshold_mean"] == pytest.approx(1.5)  # epochs 2 and 1
    assert result["train_seconds_to_threshold_median"] == pytest.approx(12.0)  # 20 s and 4 s
    assert result["images_per_second_mean"] == pytest.approx(200.0)  # the run without a rate is left out
    assert result["cost_total"] == pytest.approx(240 / 3600 * 3.0)
    assert result["cost_to_threshold_mean"] == pytest.approx(24 / 3600 * 3.0)  # dawnbench s: 40 and 8
    assert aggregate.common_threshold({"a": runs[:2], "b": runs[2:]}) == pytest.approx(0.875)


def test_mean_curve_uses_the_points_every_run_has():
    first = {"evaluations": records([0.1, 0.2, 0.3])}
    second = {"evaluations": records([0.3, 0.4])}
    epochs, means = aggregate.mean_curve([first, second], "evaluations", "accuracy")
    np.testing.assert_allclose(epochs, [1, 2])
    np.testing.assert_allclose(means, [0.2, 0.3])


@pytest.mark.slow
def test_a_run_that_diverges_is_a_result_of_the_trial_not_its_end(tmp_path):
    config = Config(**TINY | dict(lr=1e9, eval_every_epochs=0.0, target_accuracy=None), trial=Trial(runs=2))
    record = run_trial(config, str(tmp_path))
    assert [run["status"] for run in record["runs"]] == ["diverged", "diverged"]
    assert record["aggregate"]["diverged"] == 2 and record["aggregate"]["final_accuracy_mean"] == 0.0
    assert run_trial(config, str(tmp_path))["runs"] == record["runs"]  # read back, not trained again


def test_a_diverged_run_is_left_out_of_the_common_threshold_and_marked_in_its_row():
    from trial import tables

    def run(best, status="completed"):
        return {"best_eval_accuracy": best, "status": status}

    trials = {"onecycle": [run(0.9), run(0.8)], "constant lr=10": [run(0.7), run(0.0, "diverged")]}
    assert aggregate.common_threshold(trials) == pytest.approx(0.7)  # not (0.7 + 0.0) / 2
    assert aggregate.common_threshold({"all": [run(0.0, "diverged")]}) is None
    row = {"arm": "constant lr=10", "runs": 2, "diverged": 1, "final_accuracy_mean": 0.35, "final_accuracy_std": 0.5}
    row |= {"race": {"ci95_low": None}, "best_accuracy_mean": 0.35, "reached": 1}
    row |= dict.fromkeys(
        ["epoch_to_threshold_mean", "train_seconds_to_threshold_mean", "epoch_ratio_to_first_arm"], None
    )
    row["train_seconds_ratio_to_first_arm"] = None
    record = {"threshold": 0.7, "threshold_rule": "x", "arms": [row], "environment": ENVIRONMENT, "conventions": {}}
    assert "| `constant lr=10` | 2 (1 diverged) |" in tables.comparison_markdown("t", record)


ENVIRONMENT = {"tensorflow": "2", "keras": "3", "replicas": 1, "precision": "float32", "hostname": "h", "devices": []}


def test_a_comparisons_title_names_only_what_its_arms_share():
    from trial.runner import arm_configs, comparison_title

    config = Config(**TINY, trial=Trial(arms=("epochs=2", "epochs=3 lr=0.2")))
    assert comparison_title(config, arm_configs(config)) == "quickstart resnet9 x0.125\nepochs=2 vs epochs=3 lr=0.2"
    config = Config(**TINY, trial=Trial(arms=("schedule=step", "lr=0.2")))
    expected = "quickstart resnet9 x0.125, 1 epochs\nschedule=step vs lr=0.2"
    assert comparison_title(config, arm_configs(config)) == expected
