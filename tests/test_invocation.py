"""training.invocation: the command a run records, the training command the LR modes print, default workdirs."""

import dataclasses
import os
import shlex

import train
from training.invocation import Invocation, default_workdir


def test_the_printed_command_trains_the_swept_config_with_only_lr_changed():
    swept = [
        "train.py",
        "--mode=lr_find",
        "--config=configs/cifar10_resnet9.py",
        "--config.data_dir=/data/tfds",
        "--config.width=0.25",
        "--config.batch_size=128",
        "--config.lr=0.1",
        "--config.lr_reference_batch=512",
        "--config.trial.arms=('schedule=step', 'lr=0.2 epochs=3')",
        "--workdir",
        "runs/sweep",
    ]
    original, invocation, _ = train.parse(swept)
    command = invocation.training_command(0.0975)
    words = shlex.split(command)  # what the shell hands train.py
    assert words[:2] == ["python", "train.py"] and words[-1] == "--workdir=runs/cifar10_resnet9_lr0.0975"
    trained, _, _ = train.parse(words[1:])
    assert trained.mode == "train" and trained.workdir == "runs/cifar10_resnet9_lr0.0975"
    assert trained.config == dataclasses.replace(original.config, lr=0.0975)
    assert original.config.width == 0.25 and original.config.trial.arms == ("schedule=step", "lr=0.2 epochs=3")
    assert Invocation(("train.py", "--x=a b"), "c.py").command == "python train.py '--x=a b'"


def test_each_config_and_mode_has_a_workdir_of_its_own():
    assert default_workdir("/x/configs/quickstart.py", "train") == os.path.join("runs", "quickstart")
    assert default_workdir("configs/quickstart_race.py", "trial") == os.path.join("runs", "quickstart_race.trial")
    assert default_workdir("configs/quickstart.py", "lr_tune") == os.path.join("runs", "quickstart.lr_tune")
    assert default_workdir("configs/quickstart.py", "report") == "runs"  # where the others go
