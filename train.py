"""Train a CNN with 1Cycle on one device, many GPUs, several hosts or a TPU; run trials; preview a schedule.

    python train.py                                              # the offline quick-start job
    python train.py --config=configs/cifar10_resnet9.py --config.data_dir=/data/tfds --workdir=runs/r9
    python train.py --mode=trial --config=configs/quickstart_race.py --workdir=runs/race
    python train.py --mode=schedule --config=configs/cifar10_resnet9.py --steps_per_epoch=97
    python train.py --mode=lr_find --workdir=runs/lr_find                # the LR range test: prints a command
    python train.py --mode=lr_tune --workdir=runs/lr_tune                # max_lr picked by short held-out runs
    python train.py --mode=report                                        # every run under runs/, a line each

Every config field can be overridden (`--config.<field>=<value>`); `--helpconfig` lists them. Rerunning the same
command in the same workdir resumes from the latest checkpoint at its exact step (a trial: from its interrupted
run, without repeating finished ones); a finished run is left as it is. This file only reads flags and hands the
config to its mode (`MODES`). Installed from a wheel, the same command is `onecycle-train`.

Exit codes (BUILD.md, "Exit codes"): 0 done, 2 a user error (one line, nothing written), 3 diverged, 28 the disk
is full, 129 a lost peer worker and 143 pre-empted (rerun to resume), 130 stopped at once by Ctrl-C without saving,
1 a bug (with its traceback).
"""

import contextlib
import importlib
import logging as python_logging
import os
import signal
import sys

from absl import app, flags, logging
from ml_collections import config_flags

from configs import fields, loading, registry  # TensorFlow-free, like everything imported before a mode runs
from configs.base import ConfigError
from configs.validation import arm_configs, validate
from training import start_up_lines
from training.invocation import Invocation, default_workdir
from training.workdir import WorkdirError, check_local

PROJECT = os.path.dirname(os.path.abspath(__file__))  # beside configs/, in a clone as in an installed wheel
DEFAULT_CONFIG = os.path.join("configs", "quickstart.py")
USER_ERROR = 2  # the exit code of every error a user can fix: the message alone, nothing written
HELP_FLAGS = ("--help", "-?", "--helpshort", "--helpfull")
MODES = {  # --mode: the function that runs it, main(config, workdir, invocation), imported when chosen
    "train": "training.trainer:main",
    "trial": "trial.runner:main",
    "lr_find": "training.lr_find:main",
    "lr_tune": "trial.lr_tune:main",
    "schedule": "trial.preview:main",
    "report": "trial.listing:main",
}


def user_error(message):
    """Ends the program with `error: message` on stderr and exit code 2."""
    print(f"error: {message}", file=sys.stderr)
    sys.exit(USER_ERROR)


def define_flags(values, config, argv):
    """train.py's flags, on `values`, with `config` (a loaded config file) as `--config`'s default. ml_collections
    registers the `--config.<field>` overrides it finds in `argv` as it defines the flag."""
    config_flags.DEFINE_config_dataclass(
        "config",
        config,
        "Experiment config: a file given as --config=<file> (default configs/quickstart.py), each field overridden "
        "with --config.<field>=<value> (list: --helpconfig).",
        flag_values=values,
        sys_argv=argv,
    )
    flags.DEFINE_string(
        "workdir",
        None,
        "Checkpoints, logs and reports go here. Default: runs/<config file's name> for --mode=train, "
        "runs/<config file's name>.<mode> for the other modes (runs/quickstart, runs/quickstart_race.trial); "
        "--mode=report lists the folder's runs (default: runs).",
        flag_values=values,
    )
    flags.DEFINE_enum(
        "mode",
        "train",
        list(MODES),
        "train: one run. trial: config.trial.runs seeds, or with config.trial.arms a side-by-side comparison. "
        "lr_find: the LR range test (config.lr_find), which suggests config.lr. "
        "lr_tune: the LR range test, then short runs at candidate max_lrs judged on a held-out split (config.lr_tune). "
        "schedule: print and plot the config's learning rate and momentum, without training. "
        "report: list every run, trial and LR search under --workdir (default: runs), a line each.",
        flag_values=values,
    )
    flags.DEFINE_integer(
        "steps_per_epoch",
        None,
        "--mode=schedule: the run's steps per epoch; default: counted from the dataset.",
        flag_values=values,
    )
    flags.DEFINE_boolean(
        "helpconfig", False, "List every config field with its default, type and meaning, and exit.", flag_values=values
    )
    flags.DEFINE_boolean(
        "tf_logs",
        False,
        "Show TensorFlow's own log lines (hidden by default, but for the few it prints before any setting can apply).",
        flag_values=values,
    )


def parse(argv, values=None):
    """(the parsed flags, the `Invocation`, the arguments that are not flags) of `argv`: the config file loaded
    once, then every flag applied, on `values` (default: a new `FlagValues`).

    A config file that does not exist or does not load, a misspelt `--config.<field>` or a value that does not
    parse ends the program with one line (exit 2)."""
    values = flags.FlagValues() if values is None else values
    try:
        config_file, rest = loading.config_file_argument(argv, PROJECT, DEFAULT_CONFIG)
        config = loading.load(config_file)
        loading.check_field_names(rest, config)
    except ConfigError as error:
        user_error(str(error))
    define_flags(values, config, rest)
    try:
        remaining = values(rest)
    except flags.Error as error:
        user_error(str(error))
    return values, Invocation(tuple(argv), config_file, values.steps_per_epoch), remaining


def check(config, mode, environ=None):
    """Every value of `config`, and for a comparison every arm's, before TensorFlow is imported (`environ`: where
    the cluster is described; default os.environ)."""
    validate(config, environ)
    if mode == "trial" and config.trial.arms:
        arm_configs(config, environ)


def run(values, invocation):
    """Checks the config and hands it to its mode; the mode's errors become exit codes."""
    config, mode = values.config, values.mode
    workdir = values.workdir or default_workdir(invocation.config_file, mode)
    try:
        check(config, mode)
        check_local(workdir)
    except (ConfigError, WorkdirError) as error:
        user_error(str(error))
    if not values.tf_logs:  # TensorFlow's own Python INFO lines (e.g. every checkpoint's sharding time)
        tensorflow_code = f"{os.sep}tensorflow{os.sep}"
        logging.get_absl_handler().addFilter(
            lambda record: record.levelno >= python_logging.WARNING or tensorflow_code not in record.pathname
        )
    with contextlib.nullcontext() if values.tf_logs else start_up_lines.filtered():
        import tensorflow  # noqa: F401 (loaded here, without its start-up lines)
    from input_pipeline import DatasetError
    from training.checkpoints import CheckpointError
    from training.faults import INTERRUPTED, DiskFull, RunInterrupted

    module, _, function = MODES[mode].partition(":")
    # Ctrl-C (or kill -INT) is Python's KeyboardInterrupt even in a process that inherited SIGINT ignored, as a
    # shell's background job and some process managers start it: the LR sweep ran on to its end otherwise.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        getattr(importlib.import_module(module), function)(config, workdir, invocation)
    except RunInterrupted as interrupted:  # its message is already logged; the code tells schedulers which it was
        sys.exit(interrupted.exit_code)
    except DiskFull as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(error.exit_code)
    except (ConfigError, DatasetError, WorkdirError, CheckpointError) as error:
        user_error(str(error))
    except KeyboardInterrupt:  # before a run's own handlers are in place, or in the LR sweep (which saves nothing)
        print("interrupted (Ctrl-C): stopped without saving; rerun the same command to resume", file=sys.stderr)
        sys.exit(INTERRUPTED)


def cli(argv=None):
    """train.py's command line (also the `onecycle-train` command of an installed wheel, from any directory)."""
    argv = list(sys.argv if argv is None else argv)
    if "--tf_logs" not in argv:  # TensorFlow's C++ info and warnings (and, without an NVIDIA driver, its CUDA error)
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", start_up_lines.min_log_level())
    if set(argv[1:]) & set(HELP_FLAGS):  # absl's help exits 1; help asked for is a success
        parse(argv[:1], flags.FLAGS)
        app.usage(shorthelp="--helpfull" not in argv, writeto_stdout=True)
        sys.exit(0)
    values, invocation, remaining = parse(argv, flags.FLAGS)  # absl's app.run wants its own FLAGS parsed
    if values.helpconfig:
        print(fields.listing(values.config) + "\n" + registry.listing())
        sys.exit(0)
    if values.config.xla_cache:  # before TensorFlow starts: it reads its XLA flags once
        from training import compile_cache

        workdir = values.workdir or default_workdir(invocation.config_file, values.mode)
        compile_cache.enable(compile_cache.directory(workdir))

    def main(unparsed):
        if len(unparsed) > 1:
            user_error(f"unexpected arguments {unparsed[1:]}: every setting is a flag (--help lists them)")
        run(values, invocation)

    app.run(main, argv=argv, flags_parser=lambda _: remaining)


if __name__ == "__main__":
    cli()
