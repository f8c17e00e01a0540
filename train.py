"""Train a CNN with 1Cycle on one device, many GPUs, several hosts or a TPU.

    python train.py                                              # the offline quick-start job
    python train.py --config=configs/cifar10_resnet9.py --config.data_dir=/data/tfds --workdir=runs/r9

Rerunning the same command in the same workdir resumes from the latest checkpoint at its exact step.
This file only reads flags; the trainer is `training.trainer`.
"""

from absl import app, flags
from ml_collections import config_flags

from training.trainer import train_and_evaluate

_CONFIG = config_flags.DEFINE_config_file("config", "configs/quickstart.py", "Experiment config file.")
_WORKDIR = flags.DEFINE_string("workdir", "runs/quickstart", "Checkpoints, logs and the exported model go here.")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    train_and_evaluate(_CONFIG.value, _WORKDIR.value)


if __name__ == "__main__":
    app.run(main)
