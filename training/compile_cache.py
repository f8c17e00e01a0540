"""XLA's persistent compilation cache (`--config.xla_cache`): compiled programs kept on disk beside the runs.

A restart, the next seed of a trial and the next run of the same config then load the training step's and the
evaluation's programs instead of compiling them again (XLA keys each program by a fingerprint of its HLO, so a
changed model, batch or schedule compiles anew, and a seed alone changes none of them). The directory is
`<the workdir's parent>/xla_cache/tf<version>`: shared by the runs of one folder, never across TensorFlow
versions. Its programs are compiled for the machine that made them (GPU model, CPU features): give each kind of
machine its own runs folder.

TensorFlow reads its XLA flags once, early (by the first op; under absl's `app.run`, before `main` runs), so
`enable` must run before that: train.py calls it while it parses its flags. `prepare` refuses a config that asks
for the cache in a process where nobody did, and `check_written` warns when it was done too late.

A cache is an optimisation, never a reason for a run to fail or to train wrongly. XLA checks nothing of a program
it loads: bytes overwritten in one load and train with other numbers, silently. So each program's SHA-256 is
recorded in the folder (`checksums.json`, by `seal` once a run has compiled) and checked before TensorFlow
starts (`enable`): a program that does not match, or was never recorded (its writer killed first), is moved
aside into `<folder>.damaged-<time>/` and compiled again. One that fails as it loads all the same (truncated:
OutOfRangeError; unparsable: DataLossError) sets the folder aside and the call is made again
(`set_aside_if_damaged`). A folder that cannot be written is not used (XLA would fail every run that compiles).
"""

import contextlib
import hashlib
import json
import os
import time

from absl import logging

from configs.base import ConfigError
from training.workdir import make_writable

FLAG = "--tf_xla_persistent_cache_directory"


def directory(workdir):
    """Where the runs beside `workdir` keep their programs: `<parent>/xla_cache/tf<version>`."""
    import tensorflow as tf  # its version only: importing does not start the runtime

    parent = os.path.dirname(workdir.rstrip("/")) or "."
    return os.path.join(parent, "xla_cache", f"tf{tf.__version__}")


_UNWRITABLE = {}  # {cache folder: why it cannot be written}, for `prepare`'s warning
_MOVED_ASIDE = {}  # {cache folder: (programs moved aside, where)}, for `prepare`'s warning
CHECKSUMS = "checksums.json"


def enable(path):
    """Points XLA's persistent cache at `path` for this process (appended to `TF_XLA_FLAGS`; a directory the user
    set there already is kept), if the folder can be made and written: a cache is an optimisation, and XLA fails
    every run whose new programs it cannot write (`prepare` then warns, and the run compiles without it). Only
    effective before TensorFlow's runtime reads its flags: train.py calls it while it parses its own flags."""
    try:
        make_writable(path)
    except OSError as error:
        _UNWRITABLE[path] = error.strerror or str(error)
        return
    _set_aside_unverified(path)
    flags = os.environ.get("TF_XLA_FLAGS", "")
    if FLAG not in flags:
        os.environ["TF_XLA_FLAGS"] = f"{flags} {FLAG}={path}".strip()


def _programs(folder):
    return sorted(name for name in os.listdir(folder) if name.endswith(".pb"))


def _checksum(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def _recorded(folder):
    """{program: its SHA-256} as the folder records them ({} if it records none, or the record is unreadable)."""
    try:
        with open(os.path.join(folder, CHECKSUMS)) as f:
            recorded = json.load(f)
    except (OSError, ValueError):
        return {}
    return recorded if isinstance(recorded, dict) else {}


def _set_aside_unverified(folder):
    """Moves the programs of `folder` whose checksum does not match the record (or that it lacks) aside."""
    recorded = _recorded(folder)
    unverified = [name for name in _programs(folder) if recorded.get(name) != _checksum(os.path.join(folder, name))]
    if unverified:
        aside = f"{folder}.damaged-{time.strftime('%Y%m%d-%H%M%S')}"
        os.makedirs(aside, exist_ok=True)
        for name in unverified:
            with contextlib.suppress(OSError):  # another process moved it first
                os.replace(os.path.join(folder, name), os.path.join(aside, name))
        _MOVED_ASIDE[folder] = (len(unverified), aside)


def seal():
    """Records the checksums of the programs this process's compilations added to the cache (those the record
    lacks), so that the next process can tell them whole. Called after each first call of a compiled loop."""
    folder = enabled_directory()
    if not folder or not os.path.isdir(folder):
        return
    recorded = _recorded(folder)
    added = {name: _checksum(os.path.join(folder, name)) for name in _programs(folder) if name not in recorded}
    if added:
        partial = os.path.join(folder, f"{CHECKSUMS}.partial{os.getpid()}")
        with open(partial, "w") as f:
            json.dump(recorded | added, f, indent=1, sort_keys=True)
        os.replace(partial, os.path.join(folder, CHECKSUMS))


def enabled_directory():
    """The cache directory `TF_XLA_FLAGS` names, or None."""
    for flag in os.environ.get("TF_XLA_FLAGS", "").split():
        name, _, value = flag.partition("=")
        if name == FLAG and value:
            return value
    return None


def prepare(config):
    """Makes the cache directory (XLA makes only its last folder); raises ConfigError if `config.xla_cache` is set
    but this process's XLA flags name no directory."""
    import tensorflow as tf

    if not config.xla_cache:
        return
    for path, reason in _UNWRITABLE.items():
        logging.warning("config.xla_cache: %s cannot be written (%s): compiling without the cache", path, reason)
        return
    for path, (count, aside) in _MOVED_ASIDE.items():
        logging.warning(
            "config.xla_cache: %d program(s) in %s do not match their recorded checksums (damaged, or their writer "
            "was stopped first): moved aside into %s; they are compiled again",
            count,
            path,
            aside,
        )
    if enabled_directory() is None:
        raise ConfigError(
            "--config.xla_cache: TensorFlow reads XLA's flags when it starts, and no cache directory was set "
            "before that. train.py sets it; from Python, call training.compile_cache.enable("
            "training.compile_cache.directory(workdir)) before any TensorFlow op, or set TF_XLA_FLAGS="
            f"{FLAG}=<dir>"
        )
    tf.io.gfile.makedirs(enabled_directory())


def damage_errors():
    """What running a compiled function raises when a program in the cache is damaged: a truncated file
    (OutOfRangeError), one that does not parse (DataLossError), one that cannot be read (PermissionDeniedError)."""
    import tensorflow as tf

    return (tf.errors.OutOfRangeError, tf.errors.DataLossError, tf.errors.PermissionDeniedError)


_SET_ASIDE = set()  # the cache folders this process has set aside


def set_aside_if_damaged(config, error):
    """Whether `error` (one of `damage_errors()`, from a compiled call) may have come from the cache (XLA names
    no file when one is truncated); if so, the first time, the folder is
    renamed `<folder>.damaged-<time>` with one warning and a fresh one made, so that the call, made again,
    compiles (and this and later runs write their programs anew)."""
    folder = enabled_directory()
    if not (config.xla_cache and folder) or folder in _SET_ASIDE:  # once: a second failure is not the cache's
        return False
    _SET_ASIDE.add(folder)
    aside = f"{folder}.damaged-{time.strftime('%Y%m%d-%H%M%S')}"
    with contextlib.suppress(OSError):  # another worker set it aside first
        os.rename(folder, aside)
    os.makedirs(folder, exist_ok=True)
    from training.faults import error_summary

    logging.warning(
        "config.xla_cache: a program in %s cannot be loaded (%s): the folder is set aside as %s and the run "
        "compiles anew",
        folder,
        error_summary(error),
        aside,
    )
    return True


def check_written(config, jit_compile):
    """Warns if `config.xla_cache` is set but XLA (`jit_compile`: on for the run) has written no program to the
    directory (called after the first compile: TF_XLA_FLAGS was set after TensorFlow had read its flags)."""
    import tensorflow as tf

    folder = enabled_directory()
    if config.xla_cache and jit_compile and folder and not tf.io.gfile.listdir(folder):
        logging.warning(
            "config.xla_cache: XLA wrote no program to %s, so TF_XLA_FLAGS was set after TensorFlow started: set "
            "it before the first TensorFlow op",
            enabled_directory(),
        )
