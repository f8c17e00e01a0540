"""training.report without training: the clocks' conventions by hand, the summary, the history on resume."""

import json

import pytest

from configs.base import Config
from training import report
from training.plan import derive_plan
from training.workdir import WorkdirError


class FakeTime:
    """A perf_counter that moves only when told to."""

    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


@pytest.fixture
def clock(monkeypatch):
    now = FakeTime()
    monkeypatch.setattr(report.time, "perf_counter", now)
    return report.Clock(), now


def test_the_clock_books_compilation_apart_and_counts_on_over_restarts(clock):
    clock, now = clock
    now.now += 5.0  # loading the data
    clock.data_loaded()
    now.now += 1.5  # building the model and the input pipelines
    clock.prepared()

    def steps(seconds):
        return lambda: setattr(now, "now", now.now + seconds)

    clock.time_training(steps(12.0), 1)  # the first call: compilation and one step
    clock.time_training(steps(4.0), 10)  # then 0.4 s a step
    with clock.evaluating():
        now.now += 3.0
    totals = clock.totals()
    assert totals["train_seconds"] == pytest.approx(4.4)  # 11 steps at the steady rate, as airbench counts
    assert totals["compile_seconds"] == pytest.approx(11.6)  # the first call less one step
    assert (totals["data_seconds"], totals["eval_seconds"], totals["wall_seconds"]) == (5.0, 3.0, 25.5)
    assert totals["dawnbench_seconds"] == 22.5 and totals["processes"] == 1
    assert totals["prepare_seconds"] == 1.5 and totals["record_seconds"] == pytest.approx(1.5 + 4.4)
    assert clock.step_seconds == pytest.approx(0.4) and clock.images_per_second(512) == pytest.approx(1280)

    clock.carry()  # a checkpoint; a new process restores it and adds its own time
    carried = clock.carried.numpy()
    restarted = report.Clock()
    restarted.carried.assign(carried)
    restarted.restored()
    restarted.time_training(steps(2.0), 1)  # its only call: with no steady rate yet, all of it counts as training
    again = restarted.totals()
    assert again["processes"] == 2 and again["compile_seconds"] == pytest.approx(11.6)
    assert again["train_seconds"] == pytest.approx(4.4 + 2.0) and again["wall_seconds"] == pytest.approx(25.5 + 2.0)
    restarted.time_training(steps(1.0), 5)  # then 0.2 s a step: the first call was compilation and one step
    assert restarted.totals()["compile_seconds"] == pytest.approx(11.6 + 1.8)
    restarted.time_training(steps(3.0), 1, compiling=True)  # a new image size: compiled anew, booked apart
    restarted.time_training(steps(2.0), 10)  # the steady rate stays 0.2 s a step
    totals = restarted.totals()
    assert totals["compile_seconds"] == pytest.approx(11.6 + 1.8 + 2.8) and restarted.step_seconds == pytest.approx(0.2)
    assert totals["train_seconds"] == pytest.approx(4.4 + 0.2 * (1 + 5 + 1 + 10))


def test_the_summary_names_the_final_best_and_first_evaluation_at_the_target(clock):
    clock, _ = clock
    config = Config(batch_size=100, lr_reference_batch=100, epochs=2, target_accuracy=0.8)
    plan = derive_plan(config, 1000, 2, "memory")
    evaluations = [
        {"step": 5, "epoch": 0.5, "loss": 1.0, "accuracy": 0.7},
        {"step": 10, "epoch": 1.0, "loss": 0.5, "accuracy": 0.85},
        {"step": 20, "epoch": 2.0, "loss": 0.6, "accuracy": 0.82},
    ]
    fields = {"name": "quickstart", "synthetic": False, "eval_split": "holdout", "num_eval": 1000}
    data = type("Data", (), fields | {"class_names": ("a", "b")})
    summary = report.run_summary("completed", 20, config, data, plan, evaluations, clock)
    assert summary["class_names"] == ["a", "b"]
    assert (summary["eval_accuracy"], summary["best_eval_accuracy"], summary["target"]["step"]) == (0.82, 0.85, 10)
    assert (summary["steps"], summary["total_steps"], summary["epochs"], summary["replicas"]) == (20, 20, 2.0, 2)
    assert (summary["eval_split"], summary["eval_examples"]) == ("holdout", 1000)
    assert set(report.CONVENTIONS) <= set(summary)
    json.dumps(summary, allow_nan=False)  # strict JSON as it is


def test_the_history_drops_what_came_after_the_restored_step(tmp_path):
    path = tmp_path / "history.jsonl"
    log = report.RunLog(str(path), chief=True, restored_step=0)
    for step in (4, 8, 12):
        log.add("train", {"step": step, "loss": 1.0 / step})
    log.add("eval", {"step": 12, "accuracy": 0.5})
    resumed = report.RunLog(str(path), chief=True, restored_step=8)  # the checkpoint was at 8
    assert [r["step"] for r in resumed.train] == [4, 8] and resumed.evaluations == []
    assert [json.loads(line)["step"] for line in path.read_text().splitlines()] == [4, 8]


def test_a_torn_last_line_is_dropped_and_a_damaged_one_before_it_is_named(tmp_path):
    path = tmp_path / "history.jsonl"
    path.write_text('{"kind": "train", "step": 4}\n{"kind": "train", "step": 8}\n{"kind": "tra')
    log = report.RunLog(str(path), chief=True, restored_step=8)
    assert [r["step"] for r in log.train] == [4, 8]
    assert path.read_text() == '{"kind": "train", "step": 4}\n{"kind": "train", "step": 8}\n'
    path.write_text('{"kind": "train", "step": 4}\n{"kind": "tr\n{"kind": "train", "step": 8}\n')
    with pytest.raises(WorkdirError, match="history.jsonl line 2 is not JSON"):
        report.RunLog(str(path), chief=True, restored_step=8)


def test_write_json_is_strict_and_whole(tmp_path):
    path = tmp_path / "summary.json"
    report.write_json(str(path), {"a": 1})
    with pytest.raises(ValueError):
        report.write_json(str(path), {"a": float("nan")})
    assert json.loads(path.read_text()) == {"a": 1}  # the earlier file, untouched
