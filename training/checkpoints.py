"""Checkpoint files that survive faults: the newest readable checkpoint is restored, damaged ones are named and set
aside, what a killed save left half-written is removed, and a failed save says where and how much space is left."""

import glob
import os
import re
import shutil

import tensorflow as tf
from absl import logging
from google.protobuf import text_format

from training import faults
from training.strategy import gathered_integers

# What reading a damaged checkpoint raises: truncated or corrupt data, missing shards, a foreign structure.
_READ_ERRORS = (tf.errors.OpError, ValueError, IndexError, AssertionError, KeyError)


class CheckpointError(RuntimeError):
    """No checkpoint of the workdir could be read, or none could be written."""


def remove_stale_temporaries(directory):
    """Removes the `*_temp*` folders a save killed midway leaves (TensorFlow writes there, then renames)."""
    for path in glob.glob(os.path.join(directory, "*_temp*")):
        logging.warning("removing %s, left half-written by a save that was killed", path)
        shutil.rmtree(path, ignore_errors=True) if os.path.isdir(path) else os.remove(path)


def restore_newest_readable(checkpoint, directory, max_to_keep, agree=None, shared=None):
    """Restores the newest checkpoint in `directory` that reads whole (of those `agree` accepts); returns (its
    CheckpointManager, its path or None when there is none to restore).

    A damaged one is named with the reason, its files are renamed `*.damaged` (kept for inspection, never restored
    again) and the previous one is tried. If none reads, raises `CheckpointError` listing every attempt.
    `agree(steps)` (the readable steps, newest first) gives the step to restore, 0 for none; by default the
    newest. Several workers pass `newest_common_step`, so that all of them restore the same step: the readable
    checkpoints newer than it are removed, as a run killed before saving them would have left the folder.
    `shared`: the chief's checkpoint folder, when this worker is another one and can read it (a file system the
    workers share): a step this worker has not saved itself (a one-process run resumed on several workers, a
    worker killed between the chief's save and its own) is restored from the chief's copy; every worker's
    variables hold the same values, so either copy restores them.
    """
    recover_state_file(directory)
    manager = tf.train.CheckpointManager(checkpoint, directory, max_to_keep)
    readable, tried = [], []
    for path in reversed(manager.checkpoints):
        try:
            _read_whole(path)
        except _READ_ERRORS as error:
            reason = _reason(error)
            logging.warning("checkpoint %s cannot be read (%s): falling back to the one before it", path, reason)
            tried.append(f"{path} ({reason})")
            _set_aside(path)
            continue
        readable.append(path)
    if tried and not readable:
        raise CheckpointError(
            "no checkpoint in the workdir can be read; tried, newest first: "
            + "; ".join(tried)
            + ". Delete the workdir's checkpoints folder to start over"
        )
    borrowed = _readable(shared) if shared and os.path.isdir(shared) else []
    steps = sorted({_step_of(path) for path in readable + borrowed}, reverse=True)
    step = (agree or _newest)(steps)
    path = next((path for path in readable + borrowed if _step_of(path) == step), None)
    if path in borrowed:  # copied in, so that this worker's folder (which its pre-emption handler reads) has it
        logging.info("this worker has no checkpoint at step %d: restoring a copy of the chief's, %s", step, path)
        os.makedirs(directory, exist_ok=True)
        for name in glob.glob(f"{glob.escape(path)}.*"):
            shutil.copy2(name, os.path.join(directory, os.path.basename(name)))
        path = os.path.join(directory, os.path.basename(path))
        readable = sorted([*readable, path], key=_step_of, reverse=True)
        write_state_file(directory, readable[::-1])
        manager = tf.train.CheckpointManager(checkpoint, directory, max_to_keep)
    newer = [later for later in readable if _step_of(later) > step]
    for later in newer:
        logging.warning("removing %s: the run continues from step %d, which every worker has", later, step)
        for name in glob.glob(f"{glob.escape(later)}.*"):
            os.remove(name)
    kept = [earlier for earlier in readable[::-1] if _step_of(earlier) <= step]
    if tried or newer:  # the state file names what is left, so that every reader agrees
        if kept:
            write_state_file(directory, kept)
        else:
            os.remove(os.path.join(directory, "checkpoint"))
        manager = tf.train.CheckpointManager(checkpoint, directory, max_to_keep)
    if path is None:
        return manager, None
    try:
        checkpoint.restore(path).assert_existing_objects_matched()
    except _READ_ERRORS as error:  # it reads whole, so it is another model's or optimizer's: never set aside
        raise CheckpointError(
            f"checkpoint {path} is readable but does not match this run's model and optimizer ({_reason(error)}): "
            "it was saved by another config; continue it with that config, or start afresh with another --workdir"
        ) from None
    return manager, path


def newest_common_step(strategy, steps):
    """The newest of `steps` that every worker of `strategy` has too (0 if none), found by one all-gather of each
    worker's newest steps, so that all workers resume from the same step (they would otherwise train with
    different step counters, and so different learning rates, and block in a collective). Workers with
    checkpoints but none in common are refused, on every worker alike: starting from step 0 would throw the
    only copies away."""
    padded = (list(steps)[:_AGREED_STEPS] + [-1] * _AGREED_STEPS)[:_AGREED_STEPS]
    gathered = gathered_integers(strategy, padded)  # exact for steps below 2**24
    common = set.intersection(*({step for step in row if step > 0} for row in gathered))
    agreed = max(common, default=0)
    if not agreed and gathered.max() > 0:
        newest = ", ".join(sorted({str(row.max()) if row.max() > 0 else "none" for row in gathered}))
        raise CheckpointError(
            f"the workers hold no checkpoint step in common (their newest: {newest}): a worker can neither find "
            "its own nor read the chief's checkpoints/ folder. Put the workdir on a file system every worker "
            "shares (or copy <workdir>/checkpoints/ to each worker's), then rerun every worker; nothing was "
            "deleted"
        )
    if steps and agreed != steps[0]:
        logging.warning(
            "this worker's newest checkpoint is at step %d, but not every worker has it: continuing from step %d, "
            "the newest that all have",
            steps[0],
            agreed,
        )
    return agreed


def _readable(directory):
    """The checkpoints of `directory` (another worker's) that read whole, newest first; the others are left as
    they are, for their owner to set aside."""
    readable = []
    for _, path in reversed(_checkpoints_on_disk(directory)):
        try:
            _read_whole(path)
        except _READ_ERRORS:
            continue
        readable.append(path)
    return readable


def on_disk(directory):
    """Whether `directory` holds checkpoint files (`ckpt-N.index`), whatever its state file says."""
    return bool(_checkpoints_on_disk(directory))


def _checkpoints_on_disk(directory):
    """[(step, path)] of the `ckpt-N` checkpoints in `directory`, oldest first."""
    return sorted(
        (int(match.group(1)), path.removesuffix(".index"))
        for path in glob.glob(os.path.join(glob.escape(directory), "ckpt-*.index"))
        if (match := re.fullmatch(r"ckpt-(\d+)\.index", os.path.basename(path)))
    )


def recover_state_file(directory):
    """Rewrites the folder's state file (`checkpoint`, which names the checkpoints) from the checkpoints on disk
    when it is missing or unreadable but checkpoints are there: the files are the truth, and without this a run
    would silently start again from step 0 and overwrite them."""
    found = _checkpoints_on_disk(directory)
    if not found:
        return
    try:
        state = tf.train.get_checkpoint_state(directory)
    except (tf.errors.OpError, ValueError, UnicodeDecodeError):  # a garbled or half-written state file
        state = None
    if state is not None and state.model_checkpoint_path:
        return
    paths = [path for _, path in found]
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
        if faults.is_disk_full(error):
            raise faults.DiskFull(os.path.dirname(manager.directory), error, manager.latest_checkpoint) from None
        try:
            free = f"{shutil.disk_usage(manager.directory).free / 2**30:.2f} GiB free there"
        except OSError:
            free = "free space unknown"
        raise CheckpointError(f"could not save a checkpoint in {manager.directory} ({free}): {error}") from None


_AGREED_STEPS = 8  # the newest checkpoints per worker that the workers compare


def _newest(steps):
    return steps[0] if steps else 0


def _step_of(path):
    return int(path.rsplit("-", 1)[1])


def _read_whole(path):
    """Reads every tensor of the checkpoint at `path`: what raises here is damage, not a mismatch with a model."""
    reader = tf.train.load_checkpoint(path)
    for name in reader.get_variable_to_shape_map():
        reader.get_tensor(name)


def _reason(error):
    return f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"


def _set_aside(path):
    for name in glob.glob(f"{glob.escape(path)}.*"):
        if not name.endswith(".damaged"):
            os.replace(name, f"{name}.damaged")
