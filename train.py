"""Train a CNN with 1Cycle on one device, many GPUs, several hosts or a TPU; run trials; preview a schedule.

    python train.py                                              # the offline quick-start job
    python train.py --config=configs/cifar10_resnet9.py --config.data_dir=/data/tfds --workdir=runs/r9
    python train.py --mode=trial --config=configs/quickstart_race.py --workdir=runs/race
    python train.py --mode=schedule --config=configs/cifar10_resnet9.py --steps_per_epoch=97
    python train.py --mode=lr_find --workdir=runs/lr_find                # the LR range test, then train with it

Rerunning the same command in the same workdir resumes from the latest checkpoint at its exact step (a trial:
from its interrupted run, without repeating finished ones). This file only reads flags; the trainer is
`training.trainer`, trials are `trial`.
"""

import sys

from absl import app, flags
from ml_collections import config_flags

from training.checkpoints import CheckpointError
from training.faults import RunInterrupted
from training.lr_find import find_lr
from training.trainer import train_and_evaluate
from training.workdir import WorkdirError
from trial import run_comparison, run_trial
from trial.preview import preview_schedule

_CONFIG = config_flags.DEFINE_config_file("config", "configs/quickstart.py", "Experiment config file.")
_WORKDIR = flags.DEFINE_string("workdir", "runs/quickstart", "Checkpoints, logs and reports go here.")
_MODE = flags.DEFINE_enum(
    "mode", "train", ["train", "trial", "lr_find", "schedule"],
    "train: one run. trial: config.trial.runs seeds, or with config.trial.arms a side-by-side comparison. "
    "lr_find: the LR range test (config.lr_find), which suggests config.lr. "
    "schedule: print and plot the config's learning rate and momentum, without training.",
)  # fmt: skip
_STEPS_PER_EPOCH = flags.DEFINE_integer(
    "steps_per_epoch", None, "--mode=schedule: the run's steps per epoch; default: counted from the dataset."
)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    try:
        dispatch(_CONFIG.value, _WORKDIR.value)
    except RunInterrupted as interrupted:  # its message is already logged; the code tells schedulers which it was
        sys.exit(interrupted.exit_code)
    except (WorkdirError, CheckpointError) as error:  # what the user can fix: the message alone
        sys.exit(f"error: {error}")


def dispatch(config, workdir):
    if _MODE.value == "schedule":
        preview_schedule(config, workdir, _STEPS_PER_EPOCH.value)
    elif _MODE.value == "lr_find":
        suggestion = find_lr(config, workdir)["suggestion"]
        if suggestion.get("config_lr"):
            config_file = config_flags.get_config_filename(flags.FLAGS["config"])
            print(f"train with the suggestion:\n  python train.py --config={config_file} "
                  f"--config.lr={suggestion['config_lr']:.4g} --workdir=runs/<name>")  # fmt: skip
    elif _MODE.value == "trial":
        (run_comparison if config.trial.arms else run_trial)(config, workdir)
    else:
        train_and_evaluate(config, workdir)


if __name__ == "__main__":
    app.run(main)
