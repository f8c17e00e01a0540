"""Damaged checkpoints are named and skipped, half-written saves are cleaned up, failed saves say where."""

import dataclasses
import os
import shutil

import pytest
import tensorflow as tf
import tiny

from configs.base import Config
from training import checkpoints, trainer
from training.checkpoints import CheckpointError

TINY = tiny.AIRBENCH | dict(steps_per_loop=4, log_every_steps=1, checkpoint_every_steps=4)


def saved_values(directory, values):
    """A checkpoint of one variable per value, numbered 1, 2, ..., in `directory`."""
    variable = tf.Variable(0.0)
    manager = tf.train.CheckpointManager(tf.train.Checkpoint(v=variable), directory, max_to_keep=5)
    for number, value in enumerate(values, start=1):
        variable.assign(value)
        manager.save(checkpoint_number=number)
    return variable


def truncate(prefix):
    data = f"{prefix}.data-00000-of-00001"
    with open(data, "r+b") as f:
        f.truncate(os.path.getsize(data) // 2)


@pytest.mark.parametrize("damage", ["truncated data", "empty index", "missing data"])
def test_a_damaged_latest_checkpoint_falls_back_to_the_one_before(tmp_path, damage):
    variable = saved_values(str(tmp_path), [1.0, 2.0, 3.0])
    newest = str(tmp_path / "ckpt-3")
    if damage == "truncated data":
        truncate(newest)
    elif damage == "empty index":
        open(f"{newest}.index", "w").close()
    else:
        os.remove(f"{newest}.data-00000-of-00001")
    variable.assign(0.0)
    manager, restored = checkpoints.restore_newest_readable(tf.train.Checkpoint(v=variable), str(tmp_path), 5)
    assert restored == str(tmp_path / "ckpt-2") and float(variable.numpy()) == 2.0
    assert tf.train.latest_checkpoint(str(tmp_path)) == restored == manager.latest_checkpoint  # for every reader
    assert (tmp_path / "ckpt-3.index.damaged").exists()  # kept for inspection, never tried again


@pytest.mark.parametrize("other", ["shape", "structure"])
def test_a_readable_checkpoint_of_another_model_is_refused_and_never_set_aside(tmp_path, other):
    saved_values(str(tmp_path), [1.0, 2.0])
    if other == "shape":
        checkpoint = tf.train.Checkpoint(v=tf.Variable([0.0, 0.0, 0.0]))
    else:
        checkpoint = tf.train.Checkpoint(v=tf.Variable(0.0), slot=tf.Variable(0.0))
    with pytest.raises(CheckpointError, match=r"ckpt-2 is readable but does not match this run's model"):
        checkpoints.restore_newest_readable(checkpoint, str(tmp_path), 5)
    assert not list(tmp_path.glob("*.damaged")) and tf.train.latest_checkpoint(str(tmp_path)).endswith("ckpt-2")


def test_no_readable_checkpoint_is_an_error_listing_every_attempt(tmp_path):
    variable = saved_values(str(tmp_path), [1.0, 2.0])
    for number in (1, 2):
        truncate(str(tmp_path / f"ckpt-{number}"))
    with pytest.raises(CheckpointError, match=r"ckpt-2 \(.*\); .*ckpt-1 \(") as error:
        checkpoints.restore_newest_readable(tf.train.Checkpoint(v=variable), str(tmp_path), 5)
    assert "newest first" in str(error.value)


def test_an_empty_folder_restores_nothing(tmp_path):
    manager, restored = checkpoints.restore_newest_readable(tf.train.Checkpoint(v=tf.Variable(1.0)), str(tmp_path), 3)
    assert restored is None and manager.latest_checkpoint is None


@pytest.mark.parametrize("damage", ["deleted", "garbled", "empty"])
def test_a_lost_state_file_is_rewritten_from_the_checkpoints_on_disk(tmp_path, damage, caplog):
    variable = saved_values(str(tmp_path), [1.0, 2.0, 3.0])
    state = tmp_path / "checkpoint"
    if damage == "deleted":
        state.unlink()
    else:
        state.write_bytes(b"model_checkpoint_path: \xff\x00 garbage {{" if damage == "garbled" else b"")
    variable.assign(0.0)
    manager, restored = checkpoints.restore_newest_readable(tf.train.Checkpoint(v=variable), str(tmp_path), 5)
    assert restored == str(tmp_path / "ckpt-3") and float(variable.numpy()) == 3.0
    assert manager.checkpoints == [str(tmp_path / f"ckpt-{n}") for n in (1, 2, 3)]
    assert tf.train.latest_checkpoint(str(tmp_path)) == restored  # the state file says so again
    assert "missing or unreadable: rewritten from the 3 checkpoints on disk" in caplog.text


def test_a_failed_save_names_the_folder_and_the_free_space(tmp_path):
    manager = tf.train.CheckpointManager(tf.train.Checkpoint(v=tf.Variable(1.0)), str(tmp_path / "ckpts"), 3)
    (tmp_path / "ckpts").write_text("a file where the folder should be")
    with pytest.raises(CheckpointError, match=r"could not save a checkpoint in .*ckpts \(\d+\.\d\d GiB free there\)"):
        checkpoints.save(manager, 1)


@pytest.mark.slow
def test_the_trainer_resumes_past_a_truncated_checkpoint_and_a_killed_save(tmp_path):
    config = Config(**TINY, stop_at_step=12)
    whole = trainer.train_and_evaluate(config, str(tmp_path / "whole"))
    split = str(tmp_path / "split")
    trainer.train_and_evaluate(dataclasses.replace(config, stop_at_step=8), split)  # checkpoints at 4 and 8
    truncate(os.path.join(split, "checkpoints", "ckpt-8"))
    os.makedirs(os.path.join(split, "checkpoints", "ckpt-12_temp", "part-00000-of-00001"))  # a killed save's
    resumed = trainer.train_and_evaluate(config, split)
    assert not os.path.exists(os.path.join(split, "checkpoints", "ckpt-12_temp"))
    assert [h["step"] for h in resumed["history"]] == list(range(1, 13))  # 5..8 were dropped and rerun from 4
    for a, b in zip(resumed["history"], whole["history"]):
        assert (a["lr"], a["momentum"]) == (b["lr"], b["momentum"])
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-4)
    shutil.rmtree(split)
