"""A workdir belongs to one run: one process tree at a time (a lock), one config (its record), on a writable disk.

All of it is checked before any data is loaded, so a refused start writes nothing and costs seconds.
"""

import contextlib
import dataclasses
import fcntl
import json
import os
import shutil
import socket

CONFIG_FILE = "config.json"
LOCK_FILE = "run.lock"

# Fields that may change when a run resumes: they decide where, how often and how the run is observed or
# stopped, not which updates it makes. Every other field changes the run (its schedule, data, model, precision...).
RESUMABLE_FIELDS = frozenset(
    {
        "data_dir",
        "download",
        "strategy",
        "devices",
        "tpu",
        "slurm_port_base",
        "cluster_wait_seconds",
        "jit_compile",
        "deterministic",
        "xla_cache",
        "steps_per_loop",
        "max_call_seconds",
        "eval_every_epochs",
        "eval_flip",
        "eval_translate",
        "eval_tta_at",
        "target_accuracy",
        "stop_at_target",
        "log_every_steps",
        "checkpoint_every_steps",
        "stop_at_step",
        "allow_config_change",
        "trial",
        "lr_find",
        "lr_tune",
    }
)


_SLOTS = {"nesterov": "sgd", "adamw": "adam"}  # optimizers whose state is another's


def _changes_the_checkpoint(field, old, new):
    """Whether changing `field` from `old` to `new` changes the variables a checkpoint holds (its model, its
    optimizer's slots, the loss scale, the moving average), so that the old checkpoints cannot be restored."""
    if field in ("model", "width"):
        return True
    if field == "optimizer":  # SGD and Nesterov keep one momentum slot, Adam and AdamW two moments
        return _SLOTS.get(old, old) != _SLOTS.get(new, new)
    if field == "precision":
        return "mixed_float16" in (old, new)  # only float16 adds the loss scale's variables
    if field in ("ema_momentum", "lookahead_every_steps"):
        return (old == 0) != (new == 0)  # the average's variables exist or not; their momentum may change
    # momentum_form: the same slots, but Keras's holds lr x PyTorch's, so continuing would jolt the weights
    return field == "momentum_form"


class WorkdirError(RuntimeError):
    """A workdir that this run may not use as asked: the message says why and what to do instead."""


@contextlib.contextmanager
def claimed(workdir, chief):
    """Inside it, `workdir` exists, is writable, and (on the chief) is locked against other trainers.

    The lock is an OS file lock: it dies with the process, so a `kill -9` never leaves a stale one. A workdir
    this claim created and the run left holding nothing but its lock (refused once the data was read: a batch
    larger than the training set, say) is removed again, so that a refused start leaves nothing behind.
    """
    fresh = not os.path.exists(workdir)
    lock = claim(workdir, chief)
    try:
        yield
    except BaseException:
        if fresh and set(os.listdir(workdir)) <= {LOCK_FILE}:
            shutil.rmtree(workdir, ignore_errors=True)
        raise
    finally:
        if lock:
            lock.close()


def check_local(workdir):
    """Raises WorkdirError for a workdir that is not a path of this machine's file systems (gs://, s3://, ram://):
    its lock is an OS file lock, and its reports, history and plots are written with Python's own file calls."""
    if "://" in workdir:
        scheme = workdir.split("://")[0]
        raise WorkdirError(
            f"--workdir={workdir}: {scheme}:// is not supported, the workdir must be a local or mounted path (its "
            "lock is an OS file lock, and its reports are written with Python's file calls). Use a local disk, "
            "or mount the bucket (e.g. gcsfuse) and give its mount point"
        )


def make_writable(folder):
    """Makes `folder` (and its parents) and proves a file can be written there; raises OSError if not."""
    os.makedirs(folder, exist_ok=True)
    probe = os.path.join(folder, f".write_probe_{os.getpid()}")
    with open(probe, "w") as f:
        f.write("ok")
    os.remove(probe)


def claim(workdir, chief):
    """Creates `workdir`, proves it writable, and on the chief locks it: returns the open lock file (closing it
    releases the lock), or None on other workers."""
    check_local(workdir)
    try:
        make_writable(workdir)
    except OSError as error:
        raise WorkdirError(f"workdir {workdir!r} is not writable ({error.strerror}): use another --workdir") from None
    if not chief:
        return None
    try:
        lock = open(os.path.join(workdir, LOCK_FILE), "a+")  # noqa: SIM115 (held open for the life of the run)
    except OSError as error:
        raise WorkdirError(
            f"{os.path.join(workdir, LOCK_FILE)} cannot be opened as the run's lock file ({error.strerror}): "
            "remove it, or choose another --workdir"
        ) from None
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.seek(0)
        holder = lock.read().strip() or "another process"
        lock.close()
        raise WorkdirError(
            f"workdir {workdir!r} is in use by {holder}: wait for it, stop it, or choose another --workdir"
        ) from None
    lock.seek(0)
    lock.truncate()
    lock.write(f"PID {os.getpid()} on host {socket.gethostname()}\n")
    lock.flush()
    return lock


def check_same_run(workdir, config, resuming, chief=True):
    """Refuses to resume `workdir` with a config that changes the run, unless `config.allow_config_change`.

    `resuming`: the workdir holds checkpoints (on disk, whatever its state file says). On the chief, checkpoints
    without the config.json that says what made them are refused too: nothing could tell another config from
    the same. Returns the changed fields as {field: (recorded, new)} (empty when nothing that matters changed).
    """
    path = os.path.join(workdir, CONFIG_FILE)
    if not resuming:
        return {}
    if not os.path.exists(path):
        if chief and not config.allow_config_change:
            raise WorkdirError(
                f"workdir {workdir!r} holds checkpoints but no {CONFIG_FILE}, so whether they are this config's "
                f"cannot be checked: restore {path}, start a fresh run with another --workdir, or continue these "
                "checkpoints with this config on purpose with --config.allow_config_change=True"
            )
        return {}
    # a field the record lacks was added since it was written, with a default that keeps the old behaviour
    recorded = _with_defaults(read_json(path)["config"], _as_recorded(type(config)()))
    current = _as_recorded(config)
    changes = {
        field: (recorded.get(field), value)
        for field, value in current.items()
        if field not in RESUMABLE_FIELDS and recorded.get(field) != value
    }
    listed = "; ".join(f"{field}: {old!r} -> {new!r}" for field, (old, new) in sorted(changes.items()))
    unusable = sorted(field for field, (old, new) in changes.items() if _changes_the_checkpoint(field, old, new))
    if unusable:
        raise WorkdirError(
            f"workdir {workdir!r} holds checkpoints of another model or optimizer ({listed}): "
            f"{', '.join(unusable)} change what a checkpoint holds, so no run can continue from them with these "
            "values, even with allow_config_change. Start a fresh run with another --workdir"
        )
    if changes and not config.allow_config_change:
        raise WorkdirError(
            f"workdir {workdir!r} holds a run with another config ({listed}). Start a fresh run with another "
            "--workdir, or continue this one with the new values on purpose (e.g. fine-tuning with a new "
            "schedule) with --config.allow_config_change=True"
        )
    return changes


def _as_recorded(config):
    """`config` as config.json records it: a dict of plain values, tuples as lists."""
    return json.loads(json.dumps(dataclasses.asdict(config)))


def _with_defaults(recorded, defaults):
    """`recorded` with every field it lacks (at any depth) taken from `defaults`."""
    merged = dict(defaults)
    for field, value in recorded.items():
        nested = isinstance(value, dict) and isinstance(defaults.get(field), dict)
        merged[field] = _with_defaults(value, defaults[field]) if nested else value
    return merged


def read_json(path):
    """The JSON file at `path`; one that does not parse is a `WorkdirError` naming it (a hand edit, another
    program's file), never a traceback."""
    try:
        with open(path) as f:
            return json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise WorkdirError(
            f"{path} is not valid JSON ({error}): restore it, move it away, or choose another --workdir"
        ) from None


def finished_summary(workdir, config):
    """The summary of the run that already finished in `workdir` as `config` asks, or None if it has to run.

    Finished: all its steps (completed), its target reached when `config.stop_at_target`, or stopped at the
    `config.stop_at_step` asked for now.
    """
    path = os.path.join(workdir, "summary.json")
    if not os.path.exists(path):
        return None
    summary = read_json(path)
    status = summary["status"]
    if status == "completed" or (status == "target_reached" and config.stop_at_target):
        return summary
    return summary if status == "stopped" and summary["end_step"] == config.stop_at_step else None
