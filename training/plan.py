"""The run's derived numbers, computed once from the config and the global batch, and when periodic work is due.

Every duration of a config is stated in one unit (the run and the evaluation interval in epochs, everything else
in optimizer steps) and converted here, once; `config.json` records the result as `derived`.
"""

import dataclasses
import math

from configs.base import ConfigError


@dataclasses.dataclass(frozen=True)
class Plan:
    """Every number a run derives from its config, its dataset and its strategy."""

    input: str  # "memory" or "disk": the input path "auto" resolved to
    replicas: int  # over all workers
    per_replica_batch: int
    steps_per_epoch: int  # floor(training examples / global batch)
    total_steps: int  # the schedule's length: floor(epochs * steps_per_epoch)
    end_step: int  # where this run stops: total_steps, or config.stop_at_step if earlier
    eval_every_steps: int  # 0: only at the end
    whiten_bias_freeze_step: int  # the step from which the whitening bias stays as it is; 0: never
    lookahead_start_step: int  # the Lookahead average begins at the first move after this step
    jit_compile: bool  # config.jit_compile, resolved for the strategy's devices (training/strategy.py)
    deterministic: bool  # config.deterministic, likewise
    max_lr: float  # the peak learning rate at the global batch
    lr_rule: str  # how max_lr follows from config.lr and the batch, for the log
    # progressive resizing: ((first step, side in pixels), ...) of each stage, from config.resize_schedule; () none
    resize_stages: tuple[tuple[int, int], ...] = ()

    def image_side(self, step):
        """The side the training images are resized to at global step `step` (None: not resized)."""
        return next((side for first, side in reversed(self.resize_stages) if step >= first), None)

    def next_resize(self, step):
        """The first step of the next resizing stage after `step`, or None."""
        return next((first for first, _ in self.resize_stages if first > step), None)


def derive_plan(config, num_train, replicas, input_path, jit_compile=False, deterministic=False):
    """The `Plan` of `config` over `num_train` training examples on `replicas` replicas, XLA and op determinism
    as resolved for its strategy (`training.strategy.resolve_jit_compile` and `resolve_deterministic`).

    Raises `ConfigError` for a global batch that does not split evenly over the replicas or is larger than the
    training set: both are known only once the strategy and the dataset are, and both come before any write.
    """
    if config.batch_size % replicas:
        fits = max(replicas, config.batch_size // replicas * replicas)
        raise ConfigError(
            f"--config.batch_size={config.batch_size} is not divisible by {replicas} replicas; use a multiple of "
            f"{replicas} (e.g. {fits})"
        )
    if config.batch_size > num_train:
        raise ConfigError(
            f"--config.batch_size={config.batch_size} is larger than the {num_train} training examples: use at "
            f"most {num_train}"
        )
    steps_per_epoch = num_train // config.batch_size
    total_steps = total_steps_of(config.epochs, steps_per_epoch)
    return Plan(
        input=input_path,
        replicas=replicas,
        per_replica_batch=config.batch_size // replicas,
        steps_per_epoch=steps_per_epoch,
        total_steps=total_steps,
        end_step=min(total_steps, config.stop_at_step or total_steps),
        eval_every_steps=epochs_to_steps(config.eval_every_epochs, steps_per_epoch),
        whiten_bias_freeze_step=epochs_to_steps(config.whiten_bias_epochs, steps_per_epoch),
        lookahead_start_step=epochs_to_steps(config.lookahead_start_epochs, steps_per_epoch),
        jit_compile=jit_compile,
        deterministic=deterministic,
        max_lr=peak_lr(config),
        lr_rule=lr_rule(config),
        resize_stages=resize_stages(config.resize_schedule, steps_per_epoch),
    )


def resize_stages(schedule, steps_per_epoch):
    """((first step, side), ...) of a per-epoch resize schedule, consecutive equal sides merged into one stage."""
    stages = []
    for epoch, side in enumerate(schedule):
        if not stages or stages[-1][1] != side:
            stages.append((epoch * steps_per_epoch, side))
    return tuple(stages)


def lr_rule(config):
    """How the peak learning rate follows from `config.lr` and the batch (`peak_lr`), for the log (to 6 digits:
    a config's 11.5 / (1 + 1 / 0.15) reads 1.5, not 1.5000000000000002)."""
    return f"max_lr = {config.lr:.6g} * batch {config.batch_size} / {config.lr_reference_batch}"


def inverse_lr_rule(config):
    """How `config_lr` turns a max_lr back into `config.lr`, for the LR modes' reports."""
    return f"config.lr = max_lr * lr_reference_batch {config.lr_reference_batch} / batch {config.batch_size}"


def peak_lr(config):
    """The peak learning rate at the config's global batch: the explicit linear scaling rule of the plan."""
    return config.lr * config.batch_size / config.lr_reference_batch


def config_lr(config, max_lr):
    """The inverse of `peak_lr`: the `config.lr` (at `lr_reference_batch`) whose peak at the config's batch is
    `max_lr`, what the LR modes print to train with."""
    return max_lr * config.lr_reference_batch / config.batch_size


def total_steps_of(epochs, steps_per_epoch):
    """The run's length in steps: floor(epochs x steps per epoch), so a fractional run (9.9 epochs) stops inside
    its last epoch; at least one step."""
    return max(math.floor(epochs * steps_per_epoch + 1e-9), 1)  # 1e-9: 0.1 x 30 is 3, not 2.9999999999999996


def epochs_to_steps(epochs, steps_per_epoch):
    """A duration in epochs (fractions allowed) as whole steps; 0 stays 0 (never), anything else is >= 1."""
    return max(round(epochs * steps_per_epoch), 1) if epochs else 0


def itstime(step, every, final_step=None):
    """Whether periodic work of period `every` steps (0: never) is due after `step`; always from `final_step` on.

    One predicate for every periodic decision of the loop (logging, evaluation, checkpoints), after big_vision's
    `itstime`.
    """
    return (final_step is not None and step >= final_step) or (bool(every) and step % every == 0)


def steps_to_next(step, plan, config):
    """Steps until the next log, evaluation, checkpoint or resizing boundary, capped at `config.steps_per_loop`."""
    periods = [config.log_every_steps, config.checkpoint_every_steps, plan.eval_every_steps]
    resize = plan.next_resize(step)
    return min(
        [config.steps_per_loop]
        + [period - step % period for period in periods if period]
        + ([resize - step] if resize is not None else [])
    )
