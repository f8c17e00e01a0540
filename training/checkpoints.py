"""Checkpoint files that survive faults: the newest readable checkpoint is restored, damaged ones are named and set
aside, what a killed save left half-written is removed, and a failed save says where and how much space is left."""

import glob
import os
import re
import shutil

import tensorflow as tf
from absl import logging
from google.protobuf import text_format

# What reading a damaged checkpoint raises: truncated or corrupt data, missing shards, a foreign structure.
_READ_ERRORS = (tf.errors.OpError, ValueError, IndexError, AssertionError, KeyError)


class CheckpointError(RuntimeError):
    """No checkpoint of the workdir could be read, or none could be written."""


def remove_stale_temporaries(directory):
    """Removes the `*_temp*` folders a save killed midway leaves (TensorFlow writes there, then renames)."""
    for path in glob.glob(os.path.join(directory, "*_temp*")):
        logging.warning("removing %s, left half-written by a save that was killed", path)
        shutil.rmtree(path, ignore_errors=True) if os.path.isdir(path) else os.remove(path)


def restore_newest_readable(checkpoint, directory, max_to_keep):
    """Restores the newest checkpoint in `directory` that reads whole; returns (its CheckpointManager, its path or
    None when there is none to restore).

    A damaged one is named with the reason, its files are renamed `*.damaged` (kept for inspection, never restored
    again) and the previous one is tried. If none reads, raises `CheckpointError` listing every attempt.
    """
    recover_state_file(directory)
    manager = tf.train.CheckpointManager(checkpoint, directory, max_to_keep)
    tried = []
    for path in reversed(manager.checkpoints):
        try:
            checkpoint.restore(path).assert_existing_objects_matched()
        except _READ_ERRORS as error:
            reason = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
            logging.warning("checkpoint %s cannot be read (%s): falling back to the one before it", path, reason)
            tried.append(f"{path} ({reason})")
            _set_aside(path)
            continue
        if tried:  # make it the latest in the folder's state file, so that every reader agrees
            kept = manager.checkpoints[: manager.checkpoints.index(path) + 1]
            write_state_file(directory, kept)
            manager = tf.train.CheckpointManager(checkpoint, directory, max_to_keep)
        return manager, path
    if tried:
        raise CheckpointError(
            "no checkpoint in the workdir can be read; tried, newest first: "
            + "; ".join(tried)
            + ". Delete the workdir's checkpoints folder to start over"
        )
    return manager, None


def recover_state_file(directory):
    """Rewrites the folder's state file (`checkpoint`, which names the checkpoints) from the checkpoints on disk
    when it is missing or unreadable but checkpoints are there: the files are the truth, and without this a run
    would silently start again from step 0 and overwrite them."""
    on_disk = sorted(
        (int(match.group(1)), path.removesuffix(".index"))
        for path in glob.glob(os.path.join(glob.escape(directory), "ckpt-*.index"))
        if (match := re.fullmatch(r"ckpt-(\d+)\.index", os.path.basename(path)))
    )
    if not on_disk:
        return
    try:
        state = tf.train.get_checkpoint_state(directory)
    except (tf.errors.OpError, ValueError, UnicodeDecodeError):  # a garbled or half-written state file
        state = None
    if state is not None and state.model_checkpoint_path:
        return
    paths = [path for _, path in on_disk]
    logging.warning(
        "the checkpoint state file of %s is missing or unreadable: rewritten from the %d checkpoints on disk "
        "(newest %s)",
        directory,
        len(paths),
        os.path.basename(paths[-1]),
    )
    write_state_file(directory, paths)


def write_state_file(directory, paths):
    """Makes `paths` (oldest first) the checkpoints the folder's state file names, the last one the latest, each
    with its file's time, as `CheckpointManager.save` records them (a manager keeps only timestamped ones)."""
    times = [os.path.getmtime(f"{path}.index") for path in paths]
    state = tf.compat.v1.train.generate_checkpoint_state_proto(
        directory,
        paths[-1],
        all_model_checkpoint_paths=paths,
        all_model_checkpoint_timestamps=times,
        last_preserved_timestamp=min(times) - 1,
    )
    partial = os.path.join(directory, "checkpoint.partial")
    with open(partial, "w") as f:
        f.write(text_format.MessageToString(state))
    os.replace(partial, os.path.join(directory, "checkpoint"))


def save(manager, step):
    """Saves a checkpoint numbered `step`; a failure names the folder and the free space on its disk."""
    try:
        return manager.save(checkpoint_number=step)
    except (OSError, tf.errors.OpError) as error:
        try:
            free = f"{shutil.disk_usage(manager.directory).free / 2**30:.2f} GiB free there"
        except OSError:
            free = "free space unknown"
        raise CheckpointError(f"could not save a checkpoint in {manager.directory} ({free}): {error}") from None


def _set_aside(path):
    for name in glob.glob(f"{glob.escape(path)}.*"):
        if not name.endswith(".damaged"):
            os.replace(name, f"{name}.damaged")
