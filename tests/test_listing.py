"""trial/listing.py (`--mode=report`): every run and trial under a folder, a row each, read from real runs."""

import dataclasses
import shutil

import pytest
from test_trial import TINY

from configs.base import Config, Trial
from training import trainer
from trial import run_trial
from trial.listing import HEADERS, listing


def rows(text):
    """{folder: {header: cell}} from the aligned table (cells are separated by two or more spaces)."""
    lines = text.splitlines()
    assert lines[0].split() == [word for header in HEADERS for word in header.split()]
    starts = [lines[0].index(header) for header in HEADERS]
    table = {}
    for line in lines[1:]:
        cells = [line[a:b].strip() for a, b in zip(starts, [*starts[1:], None])]
        table[cells[0]] = dict(zip(HEADERS, cells))
    return table


@pytest.mark.slow
def test_the_listing_shows_each_run_and_trial_with_its_numbers_and_command(tmp_path):
    config = Config(**TINY)
    run = trainer.train_and_evaluate(config, str(tmp_path / "run"), command="python train.py --workdir=runs/run")
    trial = run_trial(
        dataclasses.replace(config, trial=Trial(runs=2)), str(tmp_path / "trials" / "t"), command="python train.py t"
    )
    (tmp_path / "killed").mkdir()
    shutil.copy(tmp_path / "run" / "config.json", tmp_path / "killed" / "config.json")  # started, never summarised
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "trial.json").write_text('{"config": ')  # torn
    shutil.copytree(tmp_path / "run", tmp_path / "torn")
    (tmp_path / "torn" / "summary.json").write_text('{"status": "compl')  # torn too: not running, unreadable

    table = rows(listing(str(tmp_path)))
    assert list(table) == ["broken", "killed", "run", "torn", "trials/t"]  # the trial's seeds are in its row
    assert table["run"]["kind"] == "run" and table["run"]["status"] == run["status"] == "stopped"
    final, best = 100 * run["eval_accuracy"], 100 * run["best_eval_accuracy"]
    assert table["run"]["accuracy"] == f"{final:.2f}% (test; best {best:.2f}%)"
    assert table["run"]["epochs"] == f"{run['epochs']:.2f}/1"
    assert table["run"]["train s"] == f"{run['train_seconds']:.1f}"
    assert table["run"]["command"] == "python train.py --workdir=runs/run"
    assert table["run"]["config"] == "quickstart resnet9 x0.125 onecycle"

    numbers = trial["aggregate"]
    expected = f"{100 * numbers['final_accuracy_mean']:.2f} ± {100 * numbers['final_accuracy_std']:.2f}% (mean of 2)"
    assert table["trials/t"]["kind"] == "trial" and table["trials/t"]["status"] == "2 runs"
    assert table["trials/t"]["accuracy"] == expected
    assert table["trials/t"]["command"] == "python train.py t"
    assert table["killed"]["status"] == "no summary: running or killed"
    assert table["broken"]["status"] == "trial.json unreadable"
    assert table["torn"]["status"] == "summary.json unreadable" and table["torn"]["command"] == table["run"]["command"]


def test_an_empty_folder_says_what_a_run_folder_holds(tmp_path):
    assert listing(str(tmp_path)).startswith(f"no runs under {tmp_path}: a run's folder holds config.json")
