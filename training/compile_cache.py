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
"""

import os

from configs.base import ConfigError

FLAG = "--tf_xla_persistent_cache_directory"


def directory(workdir):
    """Where the runs beside `workdir` keep their programs: `<parent>/xla_cache/tf<version>`."""
    import tensorflow as tf  # its version only: importing does not start the runtime

    parent = os.path.dirname(workdir.rstrip("/")) or "."
    return os.path.join(parent, "xla_cache", f"tf{tf.__version__}")


def enable(path):
    """Points XLA's persistent cache at `path` for this process (appended to `TF_XLA_FLAGS`; a directory the user
    set there already is kept). Only effective before TensorFlow's runtime reads its flags: train.py calls it
    while it parses its own flags."""
    flags = os.environ.get("TF_XLA_FLAGS", "")
    if FLAG not in flags:
        os.environ["TF_XLA_FLAGS"] = f"{flags} {FLAG}={path}".strip()


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
    if enabled_directory() is None:
        raise ConfigError(
            "--config.xla_cache: TensorFlow reads XLA's flags when it starts, and no cache directory was set "
            "before that. train.py sets it; from Python, call training.compile_cache.enable("
            "training.compile_cache.directory(workdir)) before any TensorFlow op, or set TF_XLA_FLAGS="
            f"{FLAG}=<dir>"
        )
    tf.io.gfile.makedirs(enabled_directory())


def check_written(config, jit_compile):
    """Warns if `config.xla_cache` is set but XLA (`jit_compile`: on for the run) has written no program to the
    directory (called after the first compile: TF_XLA_FLAGS was set after TensorFlow had read its flags)."""
    import tensorflow as tf
    from absl import logging

    if config.xla_cache and jit_compile and not tf.io.gfile.listdir(enabled_directory()):
        logging.warning(
            "config.xla_cache: XLA wrote no program to %s, so TF_XLA_FLAGS was set after TensorFlow started: set "
            "it before the first TensorFlow op",
            enabled_directory(),
        )
