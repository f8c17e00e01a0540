"""See a config's schedule before spending accelerator hours on it: a table of the learning rate and momentum at
every tenth of the run, and a plot of both against the step."""

import os

from configs.base import ConfigError
from configs.validation import validate
from training import setup
from training.optimization import schedule_curves
from training.plan import derive_plan, peak_lr, total_steps_of
from trial import plots


def main(config, workdir, invocation):
    """`--mode=schedule`: the table and the plot, over `--steps_per_epoch` steps an epoch if given."""
    preview_schedule(config, workdir, invocation.steps_per_epoch)


def preview_schedule(config, workdir, steps_per_epoch=None):
    """Prints the schedule's table and writes `schedule.png` in `workdir`; returns (lrs, momenta).

    The run's length needs the number of training examples: given as `steps_per_epoch`, or counted by loading
    the config's dataset.
    """
    validate(config)
    if steps_per_epoch is None:
        steps_per_epoch = derive_plan(config, setup.load_data(config).num_train, 1, "memory").steps_per_epoch
    total_steps = total_steps_of(config.epochs, steps_per_epoch)
    try:
        lrs, momenta = schedule_curves(config, peak_lr(config), total_steps)
    except ValueError as error:  # the schedule's own checks against the run's length
        raise ConfigError(f"config schedule fields: {error}") from None
    print(
        f"{config.schedule}: {config.epochs:g} epochs x {steps_per_epoch} steps = {total_steps} steps, "
        f"peak lr {peak_lr(config):g} (lr {config.lr:g} x batch {config.batch_size} / "
        f"{config.lr_reference_batch})"
    )
    print(f"{'step':>8} {'epoch':>7} {'lr':>12} {'momentum':>9}")
    for tenth in range(11):
        step = min(round(tenth / 10 * total_steps), total_steps - 1)
        print(f"{step:>8} {step / steps_per_epoch:>7.2f} {lrs[step]:>12.6g} {momenta[step]:>9.4f}")
    os.makedirs(workdir, exist_ok=True)
    path = os.path.join(workdir, "schedule.png")
    plots.plot_schedules({config.schedule: (lrs, momenta)}, path, f"{config.schedule}, {total_steps} steps")
    print(f"plot: {path}")
    return lrs, momenta
