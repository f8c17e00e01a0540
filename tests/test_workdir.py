"""A workdir is one run: one trainer at a time, one config, a writable disk, all checked before any data loads."""

import dataclasses
import json
import socket

import pytest
import tiny
from launch import finish, start, wait_for_step

from configs.base import Config, ConfigError
from training import report, trainer, workdir
from training.workdir import WorkdirError

TINY = tiny.AIRBENCH | dict(steps_per_loop=2, log_every_steps=2, checkpoint_every_steps=2, stop_at_step=2)


@pytest.mark.slow
def test_a_second_trainer_is_refused_and_a_killed_holder_frees_the_workdir(tmp_path):
    # no checkpoint before the kill (however far a loaded machine lets it run), so the third run starts afresh
    first = start(
        tmp_path, "--config.epochs=50", "--config.log_every_steps=1", "--config.checkpoint_every_steps=100000",
        log_name="first.log",
    )  # fmt: skip
    try:
        wait_for_step(tmp_path, 1, first)
        second = start(tmp_path, log_name="second.log")
        assert finish(second, timeout=120) == 2  # a user error: the message alone, exit code 2
        message = (tmp_path / "second.log").read_text()
        assert f"is in use by PID {first.pid} on host {socket.gethostname()}" in message
        assert "dataset quickstart" not in message and "Traceback" not in message  # refused before loading data
    finally:
        first.kill()  # SIGKILL: the lock dies with the process
        first.wait()
    third = start(tmp_path, "--config.stop_at_step=1", log_name="third.log")
    assert finish(third) == 0, (tmp_path / "third.log").read_text()[-3000:]


def test_an_unwritable_workdir_is_refused(tmp_path):
    with pytest.raises(WorkdirError, match="is not writable .*use another --workdir"):
        workdir.claim("/proc/onecycle-workdir", chief=True)  # /proc: a read-only file system, even for root
    (tmp_path / "file").write_text("")
    with pytest.raises(WorkdirError, match="is not writable"):
        workdir.claim(str(tmp_path / "file" / "run"), chief=True)


def test_a_workdir_on_a_remote_file_system_is_refused_before_anything_is_written(tmp_path):
    """TensorFlow's own ram:// file system stands in for gs:// and s3://: refused by the trainer and by train.py,
    which then starts nothing."""
    import os
    import subprocess
    import sys

    import tensorflow as tf

    expected = "--workdir=ram://runs/r9: ram:// is not supported, the workdir must be a local or mounted path"
    with pytest.raises(WorkdirError, match=expected.replace("/", ".")):
        trainer.train_and_evaluate(Config(**TINY), "ram://runs/r9")
    assert not tf.io.gfile.exists("ram://runs")
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    done = subprocess.run(
        [sys.executable, "train.py", "--workdir=gs://bucket/runs/r9"], capture_output=True, text=True, cwd=repo
    )
    assert done.returncode == 2 and done.stderr.startswith("error: --workdir=gs://bucket/runs/r9: gs:// is not")
    assert not os.path.exists(os.path.join(repo, "gs:"))


def record(path, config):
    report.write_json(str(path / workdir.CONFIG_FILE), {"config": dataclasses.asdict(config), "derived": {}})


@pytest.mark.parametrize(
    "field, value",
    [
        ("batch_size", 128),
        ("epochs", 2),
        ("lr", 0.2),
        ("schedule", "constant"),
        ("pct_start", 0.3),
        ("dataset", "quickstart_hard"),
        ("seed", 1),
        ("precision", "mixed_bfloat16"),
        ("optimizer", "sgd"),
        ("label_smoothing", 0.1),
    ],
)
def test_each_run_changing_field_is_refused_on_resume(tmp_path, field, value):
    config = Config(**TINY)
    record(tmp_path, config)
    changed = dataclasses.replace(config, **{field: value})
    with pytest.raises(WorkdirError) as refusal:
        workdir.check_same_run(str(tmp_path), changed, resuming=True)
    assert f"{field}: {getattr(config, field)!r} -> {value!r}" in str(refusal.value)
    assert "--config.allow_config_change=True" in str(refusal.value) and "--workdir" in str(refusal.value)
    assert workdir.check_same_run(str(tmp_path), changed, resuming=False) == {}  # nothing saved: nothing mixed
    allowed = dataclasses.replace(changed, allow_config_change=True)
    assert workdir.check_same_run(str(tmp_path), allowed, resuming=True) == {field: (getattr(config, field), value)}


@pytest.mark.parametrize(
    "overrides, unusable",
    [
        ({"width": 0.5}, "width"),
        ({"model": "resnet9"}, "model"),
        ({"optimizer": "adam"}, "optimizer"),
        ({"precision": "mixed_float16"}, "precision"),
        ({"ema_momentum": 0.99}, "ema_momentum"),
        ({"lookahead_every_steps": 5}, "lookahead_every_steps"),
        ({"momentum_form": "pytorch"}, "momentum_form"),
        ({"width": 0.5, "lr": 0.2}, "width"),
    ],
)
def test_a_change_the_checkpoints_cannot_hold_is_refused_even_when_allowed(tmp_path, overrides, unusable):
    config = Config(**TINY)
    record(tmp_path, config)
    for allowed in (False, True):
        changed = dataclasses.replace(config, allow_config_change=allowed, **overrides)
        with pytest.raises(WorkdirError, match=f": {unusable} change what a checkpoint holds") as refusal:
            workdir.check_same_run(str(tmp_path), changed, resuming=True)
        assert "another --workdir" in str(refusal.value)


def test_a_record_from_before_a_field_existed_resumes_with_its_default(tmp_path):
    config = Config(**TINY)
    written = dataclasses.asdict(config)
    for field in ("momentum_form", "lookahead_every_steps"):  # fields added after such a run started
        del written[field]
    del written["augmentation"]["alternate_flip"]
    report.write_json(str(tmp_path / workdir.CONFIG_FILE), {"config": written, "derived": {}})
    assert workdir.check_same_run(str(tmp_path), config, resuming=True) == {}
    changed = dataclasses.replace(config, lr_multipliers=("norm_bias=64",), allow_config_change=True)
    assert workdir.check_same_run(str(tmp_path), changed, resuming=True) == {"lr_multipliers": ([], ["norm_bias=64"])}


@pytest.mark.parametrize(
    "field, value",
    [
        ("log_every_steps", 7),
        ("checkpoint_every_steps", 50),
        ("stop_at_step", None),
        ("eval_every_epochs", 0.5),
        ("steps_per_loop", 9),
        ("jit_compile", True),
        ("target_accuracy", 0.9),
        ("data_dir", "/elsewhere"),
    ],
)
def test_fields_that_do_not_change_the_run_may_change(tmp_path, field, value):
    config = Config(**TINY)
    record(tmp_path, config)
    assert workdir.check_same_run(str(tmp_path), dataclasses.replace(config, **{field: value}), resuming=True) == {}


@pytest.mark.slow
def test_a_refused_resume_leaves_the_workdir_as_it_was_and_an_allowed_one_keeps_the_old_config(tmp_path):
    config = Config(**TINY)
    trainer.train_and_evaluate(config, str(tmp_path))
    before = {path.name: path.read_bytes() for path in tmp_path.iterdir() if path.is_file()}
    with pytest.raises(WorkdirError, match=r"lr: 0.4 -> 0.2"):
        trainer.train_and_evaluate(dataclasses.replace(config, lr=0.2, stop_at_step=4), str(tmp_path))
    assert {path.name: path.read_bytes() for path in tmp_path.iterdir() if path.is_file()} == before

    summary = trainer.train_and_evaluate(
        dataclasses.replace(config, lr=0.2, stop_at_step=4, allow_config_change=True), str(tmp_path)
    )
    assert summary["steps"] == 4
    with open(tmp_path / workdir.CONFIG_FILE) as f:
        recorded = json.load(f)
    assert recorded["config"]["lr"] == 0.2 and [c["config"]["lr"] for c in recorded["earlier_configs"]] == [0.4]


@pytest.mark.parametrize(
    "recorded, overrides, finished",
    [
        ({"status": "stopped", "end_step": 2}, {}, True),
        ({"status": "stopped", "end_step": 2}, {"stop_at_step": 4}, False),
        ({"status": "completed", "end_step": 39}, {}, True),
        ({"status": "preempted", "end_step": 39}, {}, False),
        ({"status": "target_reached", "end_step": 39}, {"stop_at_target": True, "target_accuracy": 0.9}, True),
        ({"status": "target_reached", "end_step": 39}, {}, False),
        ({"status": "diverged", "end_step": 39}, {}, False),
    ],
)
def test_a_finished_run_is_recognised(tmp_path, recorded, overrides, finished):
    config = dataclasses.replace(Config(**TINY), **overrides)
    (tmp_path / "summary.json").write_text(json.dumps(recorded))
    assert (workdir.finished_summary(str(tmp_path), config) is not None) == finished
    assert workdir.finished_summary(str(tmp_path / "none"), config) is None


def test_a_damaged_workdir_file_is_named_not_a_traceback(tmp_path):
    config = Config(**TINY)
    (tmp_path / "summary.json").write_text('{"status": "compl')
    with pytest.raises(WorkdirError, match="summary.json is not valid JSON"):
        workdir.finished_summary(str(tmp_path), config)
    (tmp_path / workdir.CONFIG_FILE).write_text("{")
    with pytest.raises(WorkdirError, match="config.json is not valid JSON"):
        workdir.check_same_run(str(tmp_path), config, resuming=True)
    (tmp_path / "locked").mkdir()
    (tmp_path / "locked" / workdir.LOCK_FILE).mkdir()
    with pytest.raises(WorkdirError, match="run.lock cannot be opened as the run's lock file"):
        workdir.claim(str(tmp_path / "locked"), chief=True)


def test_a_refused_start_leaves_no_workdir_behind(tmp_path):
    with pytest.raises(ConfigError, match="is larger than the 10000 training examples"):
        trainer.train_and_evaluate(Config(**TINY | dict(batch_size=20_000)), str(tmp_path / "run"))
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
@pytest.mark.parametrize("damage", ["deleted", "truncated", "classes.json deleted"])
def test_a_finished_run_repairs_its_model_and_class_names_when_rerun(tmp_path, damage):
    import keras

    config = Config(**TINY | dict(stop_at_step=None, epochs=1, batch_size=2000, lr_reference_batch=2000))
    first = trainer.train_and_evaluate(config, str(tmp_path))
    exported = tmp_path / "model.keras"
    if damage == "deleted":
        exported.unlink()
    elif damage == "truncated":
        exported.write_bytes(exported.read_bytes()[: exported.stat().st_size // 2])
    else:
        (tmp_path / "classes.json").unlink()
    again = trainer.train_and_evaluate(config, str(tmp_path))
    assert again["steps"] == first["steps"] == 5 and again["eval_accuracy"] == first["eval_accuracy"]
    assert again["processes"] == (1 if damage == "classes.json deleted" else 2)  # the model: restored and exported
    assert keras.models.load_model(exported).output.shape[-1] == 10
    assert json.loads((tmp_path / "classes.json").read_text()) == first["class_names"]
