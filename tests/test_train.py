"""The entry script as a user runs it: its modes, in a subprocess."""

import os
import subprocess
import sys

import numpy as np
import pytest

from configs.base import Config
from training import trainer

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(*flags, cwd=REPO):
    environment = os.environ | {"TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    return subprocess.run(
        [sys.executable, os.path.join(REPO, "train.py"), *flags],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )


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
    lrs, momenta = trainer.schedule_curves(config, 2328)
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


@pytest.mark.parametrize(
    "flag, code, message",
    [
        (
            "--config.batchsize=64",
            1,
            "error: --config.batchsize is not a config field: did you mean --config.batch_size?",
        ),
        ("--config.lr=-1", 2, "error: --config.lr must be positive, got -1.0"),
        ("--config.dataset=cifar11", 2, "error: unknown dataset --config.dataset='cifar11' (did you mean"),
    ],
)
def test_a_user_error_is_one_line_and_writes_nothing(tmp_path, flag, code, message):
    done = run(flag, f"--workdir={tmp_path / 'run'}")
    assert done.returncode == code
    assert message in done.stderr and "Traceback" not in done.stderr, done.stderr[-2000:]
    assert not (tmp_path / "run").exists()


def test_runs_from_another_directory(tmp_path):
    done = run(
        "--config=configs/quickstart.py", "--config.stop_at_step=1", f"--workdir={tmp_path / 'run'}", cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr[-2000:]
    lines = [line for line in done.stderr.splitlines() if "trainer.py" in line]
    assert f"run in {tmp_path / 'run'}" in lines[0] and f"{tmp_path / 'run' / 'summary.json'}" in lines[-1]
