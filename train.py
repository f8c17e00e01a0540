"""Train a CNN with 1Cycle on one device, many GPUs, several hosts or a TPU; run trials; preview a schedule.

    python train.py                                              # the offline quick-start job
    python train.py --config=configs/cifar10_resnet9.py --config.data_dir=/data/tfds --workdir=runs/r9
    python train.py --mode=trial --config=configs/quickstart_race.py --workdir=runs/race
    python train.py --mode=schedule --config=configs/cifar10_resnet9.py --steps_per_epoch=97
    python train.py --mode=lr_find --workdir=runs/lr_find                # the LR range test, then train with it

Every config field can be overridden (`--config.<field>=<value>`); `--helpconfig` lists them. Rerunning the same
command in the same workdir resumes from the latest checkpoint at its exact step (a trial: from its interrupted
run, without repeating finished ones); a finished run is left as it is. This file only reads flags; the trainer is
`training.trainer`, trials are `trial`. Installed from a wheel, the same command is `onecycle-train`.
"""

import logging as python_logging
import os
import sys

if "--tf_logs" not in sys.argv:  # TensorFlow's C++ start-up lines (CUDA probing, oneDNN, XLA) are noise to a user
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags, logging  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from configs import fields  # noqa: E402
from configs.base import Config, ConfigError  # noqa: E402
from input_pipeline import DatasetError  # noqa: E402
from training.checkpoints import CheckpointError  # noqa: E402
from training.faults import RunInterrupted  # noqa: E402
from training.lr_find import find_lr  # noqa: E402
from training.trainer import train_and_evaluate  # noqa: E402
from training.workdir import WorkdirError  # noqa: E402
from trial import run_comparison, run_trial  # noqa: E402
from trial.preview import preview_schedule  # noqa: E402

# Config files are found relative to the working directory, else to the project (so `--config=configs/x.py`
# works from anywhere, and from an installed wheel).
PROJECT = os.path.dirname(os.path.abspath(__file__))  # beside configs/, in a clone as in an installed wheel
# What a user can fix: ended with the message alone (exit code 2). Anything else is a bug and keeps its traceback.
USER_ERRORS = (ConfigError, DatasetError, WorkdirError, CheckpointError)


def checked_argv(argv):
    """argv with config paths resolved against the project when they are not found here; a misspelt
    `--config.<field>` ends the program with the closest valid fields, before any flag is parsed."""
    checked = []
    for argument in argv:
        name, _, value = argument.partition("=")
        if name == "--config" and value and not os.path.exists(value) and os.path.exists(os.path.join(PROJECT, value)):
            argument = f"--config={os.path.join(PROJECT, value)}"
        elif name.startswith("--config."):
            message = fields.unknown_field_message(name.removeprefix("--config."), Config())
            if message:
                sys.exit(f"error: {message}")
        checked.append(argument)
    return checked


def define_flags(values, argv):
    """train.py's flags, on `values`. config_flags applies the `--config.<field>` overrides in `argv` here, when
    the flag is defined, so `argv` must have been through `checked_argv`."""
    config_flags.DEFINE_config_file(
        "config",
        os.path.join(PROJECT, "configs", "quickstart.py"),
        "Experiment config file; override any field with --config.<field>=<value> (list: --helpconfig).",
        flag_values=values,
        sys_argv=argv,
    )
    flags.DEFINE_string("workdir", "runs/quickstart", "Checkpoints, logs and reports go here.", flag_values=values)
    flags.DEFINE_enum(
        "mode",
        "train",
        ["train", "trial", "lr_find", "schedule"],
        "train: one run. trial: config.trial.runs seeds, or with config.trial.arms a side-by-side comparison. "
        "lr_find: the LR range test (config.lr_find), which suggests config.lr. "
        "schedule: print and plot the config's learning rate and momentum, without training.",
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


sys.argv[:] = checked_argv(sys.argv)
define_flags(flags.FLAGS, sys.argv)
FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    if FLAGS.helpconfig:
        print(fields.listing(FLAGS.config), end="")
        return
    if not FLAGS.tf_logs:  # TensorFlow's own Python INFO lines (e.g. every checkpoint's sharding time)
        tensorflow_code = f"{os.sep}tensorflow{os.sep}"
        logging.get_absl_handler().addFilter(
            lambda record: record.levelno >= python_logging.WARNING or tensorflow_code not in record.pathname
        )
    try:
        dispatch(FLAGS.config, FLAGS.workdir)
    except RunInterrupted as interrupted:  # its message is already logged; the code tells schedulers which it was
        sys.exit(interrupted.exit_code)
    except USER_ERRORS as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)


def dispatch(config, workdir):
    if FLAGS.mode == "schedule":
        preview_schedule(config, workdir, FLAGS.steps_per_epoch)
    elif FLAGS.mode == "lr_find":
        suggestion = find_lr(config, workdir)["suggestion"]
        if suggestion.get("config_lr"):
            config_file = config_flags.get_config_filename(FLAGS["config"])
            print(
                f"train with the suggestion:\n  python train.py --config={config_file} "
                f"--config.lr={suggestion['config_lr']:.4g} --workdir=runs/<name>"
            )
    elif FLAGS.mode == "trial":
        (run_comparison if config.trial.arms else run_trial)(config, workdir)
    else:
        train_and_evaluate(config, workdir)


def cli():
    """The `onecycle-train` command of an installed wheel: train.py's flags, from any directory."""
    app.run(main)


if __name__ == "__main__":
    cli()
