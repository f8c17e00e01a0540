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
run, without repeating finished ones); a finished run is left as it is. This file only reads flags; the trainer is
`training.trainer`, trials are `trial`. Installed from a wheel, the same command is `onecycle-train`.

Exit codes (BUILD.md, "Exit codes"): 0 done, 2 a user error (one line, nothing written), 3 diverged, 28 the disk
is full, 129 a lost peer worker and 143 pre-empted (rerun to resume), 1 a bug (with its traceback).
"""

import contextlib
import logging as python_logging
import os
import shlex
import sys
import traceback

from training import start_up_lines  # TensorFlow-free, like everything imported before `main`

if "--tf_logs" not in sys.argv:  # TensorFlow's C++ info and warnings (and, without an NVIDIA driver, its CUDA error)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", start_up_lines.min_log_level())

from absl import app, flags, logging  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from configs import fields  # noqa: E402
from configs.base import Config, ConfigError, with_overrides  # noqa: E402
from configs.validation import validate  # noqa: E402
from training.workdir import WorkdirError, check_local  # noqa: E402

# Config files are found relative to the working directory, else to the project (so `--config=configs/x.py`
# works from anywhere, and from an installed wheel).
PROJECT = os.path.dirname(os.path.abspath(__file__))  # beside configs/, in a clone as in an installed wheel
USER_ERROR = 2  # the exit code of every error a user can fix: the message alone, nothing written
HELP_FLAGS = ("--help", "-?", "--helpshort", "--helpfull")


def user_error(message):
    """Ends the program with `error: message` on stderr and exit code 2."""
    print(f"error: {message}", file=sys.stderr)
    sys.exit(USER_ERROR)


def checked_argv(argv):
    """argv with config paths resolved against the project when they are not found here. A config file that does
    not exist or does not load, or a misspelt `--config.<field>`, ends the program with one line (exit 2) before
    any flag is parsed."""
    checked = []
    for argument in argv:
        name, _, value = argument.partition("=")
        if name == "--config":
            if not os.path.exists(value) and os.path.exists(os.path.join(PROJECT, value)):
                value = os.path.join(PROJECT, value)
            check_config_file(value)
            argument = f"--config={value}"
        elif name.startswith("--config."):
            message = fields.unknown_field_message(name.removeprefix("--config."), Config())
            if message:
                user_error(message)
        checked.append(argument)
    return checked


def check_config_file(path):
    """Ends the program with one line naming the file, the line and the error, if `path` is not a config file
    whose `get_config()` returns a config."""
    if not os.path.isfile(path):
        user_error(f"--config={path}: no such config file (they are in {os.path.join(PROJECT, 'configs')})")
    try:
        with open(path) as f:
            code = compile(f.read(), path, "exec")
        namespace = {"__name__": "config_file", "__file__": path}
        exec(code, namespace)  # noqa: S102 (a config file is Python by design, as ml_collections loads it)
        namespace["get_config"]()
    except Exception as error:  # the user's file: any error in it is reported as its own, in one line
        frames = [frame for frame in traceback.extract_tb(error.__traceback__) if frame.filename == path]
        line = getattr(error, "lineno", None) or (frames[-1].lineno if frames else "?")
        user_error(f"--config={path}, line {line}: {type(error).__name__}: {error}")


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
        ["train", "trial", "lr_find", "lr_tune", "schedule", "report"],
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


def check(config, mode, environ=None):
    """Every value of `config`, and for a comparison every arm's, before TensorFlow is imported (`environ`: where
    the cluster is described; default os.environ)."""
    validate(config, environ)
    if mode == "trial":
        for text in config.trial.arms:
            try:
                arm = with_overrides(config, text)
            except Exception as error:  # absl's and ml_collections' parse errors, reworded with the arm
                raise ConfigError(f"--config.trial.arms: cannot apply {text!r}: {error}") from None
            validate(arm, environ)


FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        user_error(f"unexpected arguments {argv[1:]}: every setting is a flag (--help lists them)")
    if FLAGS.helpconfig:
        print(fields.listing(FLAGS.config), end="")
        return
    try:
        check(FLAGS.config, FLAGS.mode)
        if FLAGS.workdir:
            check_local(FLAGS.workdir)
    except (ConfigError, WorkdirError) as error:
        user_error(str(error))
    if not FLAGS.tf_logs:  # TensorFlow's own Python INFO lines (e.g. every checkpoint's sharding time)
        tensorflow_code = f"{os.sep}tensorflow{os.sep}"
        logging.get_absl_handler().addFilter(
            lambda record: record.levelno >= python_logging.WARNING or tensorflow_code not in record.pathname
        )
    with contextlib.nullcontext() if FLAGS.tf_logs else start_up_lines.filtered():
        import tensorflow  # noqa: F401 (loaded here, without its start-up lines)
    from input_pipeline import DatasetError
    from training.checkpoints import CheckpointError
    from training.faults import DiskFull, RunInterrupted

    try:
        config_file = config_flags.get_config_filename(FLAGS["config"])
        dispatch(FLAGS.config, FLAGS.workdir or default_workdir(config_file, FLAGS.mode))
    except RunInterrupted as interrupted:  # its message is already logged; the code tells schedulers which it was
        sys.exit(interrupted.exit_code)
    except DiskFull as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(error.exit_code)
    except (ConfigError, DatasetError, WorkdirError, CheckpointError) as error:
        user_error(str(error))


def dispatch(config, workdir):
    if FLAGS.mode == "report":
        from trial.listing import listing

        if not os.path.isdir(workdir):
            user_error(f"--workdir={workdir}: no such folder to report on (--mode=report lists the runs under it)")
        print(listing(workdir))
    elif FLAGS.mode == "schedule":
        from trial.preview import preview_schedule

        preview_schedule(config, workdir, FLAGS.steps_per_epoch)
    elif FLAGS.mode == "lr_find":
        from training.lr_find import find_lr

        suggestion = find_lr(config, workdir)["suggestion"]
        if suggestion.get("config_lr"):
            command = training_command(ARGV, suggestion["config_lr"])
            print(f"train with the {suggestion['rule']} rule's suggestion:\n  {command}")
    elif FLAGS.mode == "lr_tune":
        from trial.lr_tune import tune_lr

        pick = tune_lr(config, workdir)["pick"]
        command = training_command(ARGV, pick["config_lr"])
        print(f"train with the pick (table in {os.path.join(workdir, 'lr_tune.md')}):\n  {command}")
    elif FLAGS.mode == "trial":
        from trial import run_comparison, run_trial

        (run_comparison if config.trial.arms else run_trial)(config, workdir, command=command_line(ARGV))
        print_tables(os.path.join(workdir, "comparison.md" if config.trial.arms else "trial.md"))
    else:
        from training.trainer import train_and_evaluate

        train_and_evaluate(config, workdir, command=command_line(ARGV))


def print_tables(path):
    """Prints the tables of a trial's or comparison's markdown report (`path`, written by the chief), without the
    clocks' definitions that end it."""
    if os.path.exists(path):
        with open(path) as f:
            text = f.read().partition("\nClocks:")[0].rstrip()
        print(f"{text}\n\n(clocks defined, plots and every run: {os.path.dirname(path)})")


def default_workdir(config_file, mode):
    """runs/<config name> for training, runs/<config name>.<mode> for the other modes: each its own folder, so
    that a sweep or a trial never lands in (or is refused as a change of) a training run's workdir."""
    if mode == "report":
        return "runs"  # every run made with a default workdir
    name = os.path.splitext(os.path.basename(config_file))[0]
    return os.path.join("runs", name if mode == "train" else f"{name}.{mode}")


def training_command(argv, config_lr):
    """The command line `argv` ran, as the command that trains it with `--config.lr=config_lr`: every other flag
    kept as given, the mode and the workdir replaced (a workdir named after the config and the rate)."""
    kept, skip = [], False
    for argument in argv[1:]:
        name = argument.partition("=")[0]
        if skip:
            skip = False
        elif name in ("--mode", "--workdir", "--config.lr"):
            skip = "=" not in argument  # "--workdir runs/x": its value is the next argument
        else:
            kept.append(argument)
    config_file = next((a.partition("=")[2] for a in kept if a.startswith("--config=")), "configs/quickstart.py")
    program = command_line(argv[:1])
    rate = f"{config_lr:.4g}"
    workdir = f"{default_workdir(config_file, 'train')}_lr{rate}"
    return shlex.join([*program.split(), *kept, f"--config.lr={rate}", f"--workdir={workdir}"])


def command_line(argv):
    """`argv` as a command to type again: `python train.py ...`, or the installed `onecycle-train ...`."""
    program = ["python", argv[0]] if argv[0].endswith(".py") else [os.path.basename(argv[0])]
    return shlex.join([*program, *argv[1:]])


def cli():
    """train.py's command line (also the `onecycle-train` command of an installed wheel, from any directory)."""
    if set(sys.argv[1:]) & set(HELP_FLAGS):  # absl's help exits 1; help asked for is a success
        app.usage(shorthelp="--helpfull" not in sys.argv, writeto_stdout=True)
        sys.exit(0)
    app.run(main, flags_parser=parse_flags)


def parse_flags(argv):
    """absl's flag parsing, with a value that does not parse (`--config.batch_size=abc`) as a user error; points
    XLA's persistent cache at the workdir's parent if the config asks for it."""
    try:
        remaining = FLAGS(argv)
    except flags.Error as error:
        user_error(str(error))
    if FLAGS.config.xla_cache:  # here: TensorFlow reads its XLA flags before app.run calls `main`
        from training import compile_cache

        config_file = config_flags.get_config_filename(FLAGS["config"])
        compile_cache.enable(compile_cache.directory(FLAGS.workdir or default_workdir(config_file, FLAGS.mode)))
    return remaining


ARGV = list(sys.argv)  # as the user typed it, for the commands the LR modes print
sys.argv[:] = checked_argv(sys.argv)
define_flags(FLAGS, sys.argv)

if __name__ == "__main__":
    cli()
