"""`--mode=lr_tune` on the quick-start set: candidates that bracket the sweep's rules, a pick that is the best on the
held-out split, a resume that redoes nothing finished, and a test split that is never generated."""

import dataclasses
import json
import os

import pytest
import tiny

from configs.base import Config, LRFind, LRTune
from input_pipeline import sources
from onecycle.lr_range import RULES
from training import trainer
from training.workdir import WorkdirError
from trial import lr_tune

CONFIG = Config(
    **tiny.AIRBENCH | dict(epochs=4, log_every_steps=10, checkpoint_every_steps=100),
    lr_find=LRFind(start_lr=1e-3, end_lr=30.0, num_steps=40),
    lr_tune=LRTune(candidates=3, epochs=1, holdout=0.1),
)


def test_candidates_span_the_rules_up_to_the_minimum():
    suggestion = {"onecycle_lr": 2.0, "valley_lr": 0.1, "minimum_over_10_lr": 0.5, "steepest_lr": 1.0}
    assert lr_tune.candidate_lrs(suggestion | {"minimum_lr": 5.0}, 4) == [0.1, 0.37, 1.4, 5.0]
    assert lr_tune.candidate_lrs({rule + "_lr": 3.0 for rule in RULES} | {"minimum_lr": 3.0}, 3) == [0.3, 0.95, 3.0]


def test_the_pick_is_the_best_mean_and_a_tie_goes_to_the_lower_rate():
    rows = [
        {"max_lr": lr, "holdout_accuracy_mean": acc} for lr, acc in [(0.1, 0.5), (0.4, 0.8), (1.6, 0.8), (6.4, 0.1)]
    ]
    assert lr_tune.best(rows)["max_lr"] == 0.4
    assert lr_tune.best(rows[2:])["max_lr"] == 1.6


@pytest.mark.slow
def test_a_tune_picks_on_the_holdout_resumes_and_never_reads_the_test_split(tmp_path, monkeypatch):
    generated = []
    generate = sources.generated.generate
    monkeypatch.setattr(
        sources.generated, "generate", lambda n, seed, **kw: generated.append(seed) or generate(n, seed, **kw)
    )
    runs = []
    train = trainer.train_and_evaluate

    def interrupted_at_the_second(config, workdir, strategy=None, command=None):
        runs.append(workdir)
        if len(runs) == 2:
            raise KeyboardInterrupt  # the tune stops in its second candidate
        return train(config, workdir, strategy, command)

    monkeypatch.setattr(trainer, "train_and_evaluate", interrupted_at_the_second)
    with pytest.raises(KeyboardInterrupt):
        lr_tune.tune_lr(CONFIG, str(tmp_path))
    sweep_written = os.path.getmtime(tmp_path / "sweep" / "lr_find.json")
    first_done = os.path.getmtime(os.path.join(runs[0], "summary.json"))

    monkeypatch.setattr(trainer, "train_and_evaluate", lambda *args: runs.append(args[1]) or train(*args))
    record = lr_tune.tune_lr(CONFIG, str(tmp_path))
    assert runs[2:] == runs[1:2] + [runs[-1]] and len(runs) == 4  # the 2nd and 3rd candidates only, once each
    assert os.path.getmtime(os.path.join(runs[0], "summary.json")) == first_done
    assert os.path.getmtime(tmp_path / "sweep" / "lr_find.json") == sweep_written  # the sweep is read back

    assert set(generated) == {CONFIG.seed}  # only the training set: the test set (seed + 1) never exists
    # Rerun with another budget: its 1-epoch candidates are not reported as 2-epoch ones; nothing is rewritten
    longer = dataclasses.replace(CONFIG, lr_tune=dataclasses.replace(CONFIG.lr_tune, epochs=2))
    with pytest.raises(WorkdirError, match=r"holds a run with another config \(epochs: 1 -> 2\)"):
        lr_tune.tune_lr(longer, str(tmp_path))
    assert os.path.getmtime(tmp_path / "sweep" / "lr_find.json") == sweep_written  # the budget is not the sweep's
    with open(tmp_path / "lr_tune.json") as f:
        written = json.load(f)
    assert written["pick"] == record["pick"]
    rules = [lr for rule, lr in record["rules"].items() if rule != "minimum"]
    lrs = [c["max_lr"] for c in record["candidates"]]
    assert lrs == sorted(lrs) and len(lrs) == 3
    assert lrs[0] == pytest.approx(min(rules), rel=0.05) and lrs[-1] == pytest.approx(
        record["rules"]["minimum"], rel=0.05
    )
    accuracies = [c["holdout_accuracy_mean"] for c in record["candidates"]]
    assert record["pick"]["holdout_accuracy_mean"] == max(accuracies)
    for candidate in record["candidates"]:
        with open(tmp_path / candidate["folder"] / "seed0" / "summary.json") as f:
            summary = json.load(f)
        assert (summary["eval_split"], summary["eval_examples"]) == ("holdout", 1000)
        assert summary["eval_accuracy"] == candidate["holdout_accuracy_mean"]
        assert summary["total_steps"] == 9000 // 256  # one epoch of the 9,000 examples left to train on
    table = (tmp_path / "lr_tune.md").read_text()
    assert "**pick**" in table and "The test split was not read" in table
    assert (tmp_path / "lr_tune.png").stat().st_size > 10_000
