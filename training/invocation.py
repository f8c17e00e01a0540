"""How a mode was started: the command line as typed, so that a run records it and the LR modes print the command
that trains with their pick. TensorFlow-free: train.py builds it while it reads its flags."""

import dataclasses
import os
import shlex


@dataclasses.dataclass(frozen=True)
class Invocation:
    """`argv` as the user typed it (argv[0] the program), the config file it named, and the mode's own flag."""

    argv: tuple[str, ...]
    config_file: str
    steps_per_epoch: int | None = None  # --mode=schedule's --steps_per_epoch

    @property
    def command(self):
        """The command line, to type again: `python train.py ...`, or the installed `onecycle-train ...`."""
        return command_line(self.argv)

    def training_command(self, config_lr):
        """The command that trains what this one swept, with `--config.lr=config_lr`: every other flag kept as
        given, the mode and the workdir replaced (a workdir named after the config and the rate)."""
        kept, skip = [], False
        for argument in self.argv[1:]:
            name = argument.partition("=")[0]
            if skip:
                skip = False
            elif name in ("--mode", "--workdir", "--config.lr"):
                skip = "=" not in argument  # "--workdir runs/x": its value is the next argument
            else:
                kept.append(argument)
        rate = f"{config_lr:.4g}"
        workdir = f"{default_workdir(self.config_file, 'train')}_lr{rate}"
        return shlex.join([*command_line(self.argv[:1]).split(), *kept, f"--config.lr={rate}", f"--workdir={workdir}"])


def command_line(argv):
    """`argv` as a command to type again: `python train.py ...`, or the installed `onecycle-train ...`."""
    program = ["python", argv[0]] if argv[0].endswith(".py") else [os.path.basename(argv[0])]
    return shlex.join([*program, *argv[1:]])


def default_workdir(config_file, mode):
    """runs/<config name> for training, runs/<config name>.<mode> for the other modes: each its own folder, so
    that a sweep or a trial never lands in (or is refused as a change of) a training run's workdir."""
    if mode == "report":
        return "runs"  # every run made with a default workdir
    name = os.path.splitext(os.path.basename(config_file))[0]
    return os.path.join("runs", name if mode == "train" else f"{name}.{mode}")
