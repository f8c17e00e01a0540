"""The entry script as a user runs it: its modes, in a subprocess."""

import os
import subprocess
import sys

import launch
import numpy as np
import pytest

from configs.base import Config
from training.optimization import schedule_curves

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(*flags, cwd=REPO):
    return launch.run(os.path.join(REPO, "train.py"), *flags, cwd=cwd)


@pytest.mark.slow
def test_schedule_mode_prints_the_curve_and_plots_it(tmp_path):
    done = run(
        "--mode=schedule",
        "--config=configs/cifar10_resnet9.py",
        "--steps_per_epoch=97",
        "--config.schedule=warmup_cosine",
        f"--workdir={tmp_path}",
    )
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    assert lines[0].startswith("warmup_cosine: 24 epochs x 97 steps = 2328 steps, peak lr 0.4")
    table = np.array([[float(x) for x in line.split()] for line in lines[2:13]])
    config = Config(schedule="warmup_cosine", epochs=24, lr=0.4, batch_size=512, lr_reference_batch=512)
    lrs, momenta = schedule_curves(config, 0.4, 2328)
    steps = table[:, 0].astype(int)
    np.testing.assert_array_equal(steps, [min(round(t / 10 * 2328), 2327) for t in range(11)])
    np.testing.assert_allclose(table[:, 2], lrs[steps], rtol=1e-5)
    np.testing.assert_allclose(table[:, 3], momenta[steps], rtol=1e-4)
    assert (tmp_path / "schedule.png").stat().st_size > 10_000


def test_unknown_mode_is_refused():
    done = run("--mode=race")
    assert done.returncode != 0 and "--mode" in done.stderr


def test_helpconfig_lists_every_field_with_its_default_type_and_meaning():
    done = run("--helpconfig")
    assert done.returncode == 0, done.stderr[-2000:]
    listing = done.stdout
    assert "--config.batch_size=256  (int)  global, over all replicas and workers" in listing  # the config's value
    assert "--config.trial.runs=3  (int)" in listing and "--config.augmentation.cutout=8  (int)" in listing
    assert '\n1Cycle (schedule="onecycle")' in listing  # grouped under the headings of configs/base.py
    assert "--helpconfig" in run("--help").stdout


USER_ERRORS = [  # (flags, what the one line says): each ends with exit code 2 and nothing written
    (["--config.batchsize=64"], "--config.batchsize is not a config field: did you mean --config.batch_size?"),
    (["--config.batch_size=abc"], "flag --config.batch_size=abc: invalid literal for int()"),
    (["--config.lr=-1"], "--config.lr must be positive, got -1.0"),
    (["--config.lr=inf"], "--config.lr=inf is not a finite number"),
    (["--config.seed=-1"], "--config.seed must be in [0, 4294967295], got -1"),
    (["--config.seed=4294967296"], "--config.seed must be in [0, 4294967295], got 4294967296"),
    (["--config.width=0"], "--config.width must be positive, got 0.0"),
    (["--config.stop_at_step=-5"], "--config.stop_at_step is a step >= 1"),
    (["--config.image_size=64"], "--config.image_size=(64,) is not of type tuple[int, int] | None"),
    (["--config.optimizer=adamw", "--config.weight_decay=0"], "use --config.optimizer=adam"),
    (["--config.model=resnet50", "--config.width=0.5"], "--config.model=resnet50 has a fixed width"),
    (["--config.model=resnet50", "--config.width=1", "--config.sync_batch_norm=True"], "cannot synchronize"),
    (["--config.strategy=multi_worker"], "--config.strategy=multi_worker needs TF_CONFIG"),
    (["--config=configs/nope.py"], "--config=configs/nope.py: no such config file"),
    (["--config.dataset=cifar11"], "unknown dataset --config.dataset='cifar11' (did you mean"),
    (["--config.batch_size=20000"], "--config.batch_size=20000 is larger than the 10000 training examples"),
    (["--mode=race"], "flag --mode=race: value should be one of"),
    (["surplus"], "unexpected arguments ['surplus']"),
]


@pytest.mark.parametrize("flags, message", USER_ERRORS, ids=[" ".join(flags) for flags, _ in USER_ERRORS])
def test_a_user_error_is_one_line_exit_2_and_writes_nothing(tmp_path, flags, message):
    done = run(*flags, f"--workdir={tmp_path / 'run'}")
    last = done.stderr.strip().splitlines()[-1]
    assert done.returncode == 2 and last.startswith("error: ") and message in last, done.stderr[-2000:]
    assert "Traceback" not in done.stderr and done.stderr.count("error: ") == 1
    assert not (tmp_path / "run").exists()


def test_a_config_file_that_fails_is_named_with_its_line(tmp_path):
    broken = tmp_path / "broken.py"
    broken.write_text("from configs.base import Config\n\n\ndef get_config():\n    return Config(batch_size=)\n")
    raising = tmp_path / "raising.py"
    raising.write_text("def get_config():\n    raise RuntimeError('no such cluster')\n")
    for path, line, error in [(broken, 5, "SyntaxError"), (raising, 2, "RuntimeError: no such cluster")]:
        done = run(f"--config={path}", f"--workdir={tmp_path / 'run'}")
        assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr[-2000:]
        assert done.stderr.startswith(f"error: --config={path}, line {line}: {error}")


def test_help_exits_0_and_answers_without_tensorflow():
    for flag in ("--help", "--helpconfig", "--config.batchsize=1"):
        done = subprocess.run(
            [sys.executable, "-X", "importtime", os.path.join(REPO, "train.py"), flag],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == (2 if "=" in flag else 0), done.stderr[-2000:]
        imported = {line.split("|")[-1].strip().split(".")[0] for line in done.stderr.splitlines() if "|" in line}
        assert "tensorflow" not in imported and "keras" not in imported


@pytest.mark.slow
def test_runs_from_another_directory(tmp_path):
    done = run(
        "--config=configs/quickstart.py", "--config.stop_at_step=1", f"--workdir={tmp_path / 'run'}", cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr[-2000:]
    lines = [line for line in done.stderr.splitlines() if "trainer.py" in line]
    assert f"run in {tmp_path / 'run'}" in lines[0] and lines[-1].endswith("run stopped:")
    assert f"  files     {tmp_path / 'run'}: summary.json" in done.stderr  # the table after it


@pytest.mark.slow
def test_a_trial_prints_its_table_and_the_report_lists_it_with_its_command(tmp_path):
    flags = ["--mode=trial", "--config.trial.runs=2", "--config.stop_at_step=2", f"--workdir={tmp_path / 't'}"]
    done = run(*flags)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith("# Trial: quickstart airbench x0.25, 3 epochs, onecycle")
    assert "| 0 | stopped |" in done.stdout and "| 1 | stopped |" in done.stdout
    assert "Clocks:" not in done.stdout and done.stdout.rstrip().endswith(f"every run: {tmp_path / 't'})")
    listed = run("--mode=report", f"--workdir={tmp_path}")
    assert listed.returncode == 0, listed.stderr[-2000:]
    header, row = listed.stdout.splitlines()
    assert header.split()[:3] == ["folder", "kind", "status"] and row.split()[:4] == ["t", "trial", "2", "runs"]
    assert row.endswith(f"python {os.path.join(REPO, 'train.py')} {' '.join(flags)}")


def test_report_mode_refuses_a_folder_that_does_not_exist(tmp_path):
    done = run("--mode=report", f"--workdir={tmp_path / 'nowhere'}")
    assert done.returncode == 2 and done.stderr.strip().splitlines()[-1] == (
        f"error: --workdir={tmp_path / 'nowhere'}: no such folder to report on (--mode=report lists the runs under it)"
    )
