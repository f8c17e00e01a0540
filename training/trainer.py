"""The trainer: one run of a config in a workdir, resumable at its exact step, on any tf.distribute strategy.

`train_and_evaluate(config, workdir)` is what `train.py` calls for one run, and what trials and the LR range test
reuse: it never reads flags.
"""

import contextlib
import dataclasses
import json
import math
import os
import types

import keras
import numpy as np
import tensorflow as tf
from absl import logging

import input_pipeline
import models
import onecycle
from configs.base import ConfigError
from models.airbench import whiten_from_data
from training import checkpoints, export, faults, report, steps
from training import workdir as workdir_lib
from training.strategy import STRATEGIES, create_strategy, is_chief, task_id

OPTIMIZERS = ("sgd", "nesterov", "adam", "adamw", "rmsprop")
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")
SCHEDULES = ("onecycle", "constant", "step", "warmup_cosine")


def train_and_evaluate(config, workdir, strategy=None):
    """Trains `config` in `workdir` (resuming from its latest readable checkpoint) and returns the final summary.

    The summary (also written as `summary.json` by the chief) holds the status, the final and best evaluation,
    the whole evaluation curve, the first evaluation at or above `config.target_accuracy`, and the timers of
    `report.CONVENTIONS`; the returned dict adds the training log (`history`). A run pre-empted by a signal or
    whose loss diverges writes its summary, then raises `faults.RunInterrupted`.
    """
    check_config(config)
    placement = check_data(config)
    strategy = strategy or create_strategy(config.strategy, config.devices, config.tpu, config.slurm_port_base)
    config = dataclasses.replace(config, jit_compile=resolve_jit_compile(config, strategy))
    chief = is_chief(strategy)
    checkpoint_dir = os.path.join(workdir, "checkpoints" if chief else f"checkpoints_worker{task_id(strategy)}")
    with workdir_lib.claimed(workdir, chief):
        resuming = bool(tf.train.latest_checkpoint(checkpoint_dir))
        changes = workdir_lib.check_same_run(workdir, config, resuming)
        finished = None if changes else workdir_lib.finished_summary(workdir, config)
        if finished:
            logging.info(
                "%s already finished (%s at step %d, eval accuracy %.2f%%): nothing to do; its results are in %s",
                workdir,
                finished["status"],
                finished["steps"],
                100 * finished["eval_accuracy"],
                os.path.join(workdir, "summary.json"),
            )
            return finished
        return _run(config, workdir, strategy, chief, checkpoint_dir, changes, placement)


def _run(config, workdir, strategy, chief, checkpoint_dir, changes, placement):
    logging.info("run in %s: config.json, history.jsonl, summary.json, tensorboard/ and checkpoints/ go there", workdir)
    keras.mixed_precision.set_global_policy(config.precision)
    keras.utils.set_random_seed(config.seed)
    clock = report.Clock()
    data = load_data(config, placement)
    plan = derive_plan(config, data, strategy)
    logging.info(
        "dataset %s: %d train / %d eval examples of %s%s",
        data.name,
        data.num_train,
        data.num_eval,
        data.image_shape,
        " (SYNTHETIC)" if data.synthetic else "",
    )
    logging.info("plan: %s", plan)
    if changes:
        logging.warning("continuing %s with a changed config (allow_config_change): %s", workdir, changes)
    if chief:
        record = {"config": dataclasses.asdict(config), "derived": plan}
        report.write_json(os.path.join(workdir, workdir_lib.CONFIG_FILE), record | _earlier_configs(workdir, changes))

    with strategy.scope():
        model = models.create_model(
            config.model, data.image_shape, data.num_classes, config.sync_batch_norm, config.width
        )
        optimizer = create_optimizer(config, plan, model)
        optimizer.build(model.trainable_variables)
        batches_consumed = tf.Variable(0, dtype=tf.int64, trainable=False, name="batches_consumed")
        if data.in_memory and whiten_from_data(model, input_pipeline.normalise(data.train_images[:5000], data).numpy()):
            logging.info("whitening stem set from the first 5000 training images")
    checkpoint = tf.train.Checkpoint(
        model=model, optimizer=optimizer, batches_consumed=batches_consumed, timers=clock.carried
    )
    checkpoints.remove_stale_temporaries(checkpoint_dir)
    manager, restored = checkpoints.restore_newest_readable(checkpoint, checkpoint_dir, max_to_keep=3)
    if restored:
        logging.info("resumed from %s at step %d", restored, int(optimizer.iterations.numpy()))
    clock.restored()
    step, end = int(optimizer.iterations.numpy()), plan["end_step"]
    log = report.RunLog(os.path.join(workdir, "history.jsonl"), chief, step)

    if config.data_on_device:  # each call reads its first batch's global step from batches_consumed
        resident, source = ResidentTrainingSet(strategy, data, config), batches_consumed
    else:
        resident, source = (
            None,
            iter(
                input_pipeline.train_dataset(
                    strategy,
                    data,
                    config.batch_size,
                    config.seed,
                    start_step=int(batches_consumed.numpy()),
                    augmentation=input_augmentation(config),
                )
            ),
        )
    train_loop, eval_loop, train_sums, eval_sums = steps.make_loops(
        strategy, model, optimizer, config, data.num_classes, config.batch_size, resident
    )
    eval_data, eval_steps = input_pipeline.eval_dataset(strategy, data, config.batch_size)
    clock.data_prepared()
    reporter = report.Reporter(
        workdir, chief, plan["total_steps"], plan["steps_per_epoch"], config.batch_size, data.synthetic, clock
    )
    ema_weights = swap_in_ema_weights(optimizer) if config.ema_momentum else contextlib.nullcontext

    def evaluate(step):
        with clock.evaluating(), ema_weights():
            eval_loop(iter(eval_data), tf.constant(eval_steps))
            loss, accuracy = eval_sums.result_and_reset()
        if not math.isfinite(loss):
            raise diverged(step, "the evaluation loss is not finite")
        record = {"step": step, "epoch": step / plan["steps_per_epoch"], "loss": loss, "accuracy": accuracy}
        log.add("eval", record | clock.totals())
        reporter.evaluation(step, loss, accuracy)

    def summarize(status, step):
        """The run's summary; written by the chief as summary.json (strict JSON) and returned with its history."""
        final = log.evaluations[-1] if log.evaluations else {}
        summary = {
            "status": status,
            "dataset": data.name,
            "synthetic": data.synthetic,
            "model": config.model,
            "schedule": config.schedule,
            "seed": config.seed,
            "eval_accuracy": final.get("accuracy"),
            "eval_loss": final.get("loss"),
            "best_eval_accuracy": max((e["accuracy"] for e in log.evaluations), default=None),
            "steps": step,
            "end_step": end,
            "total_steps": plan["total_steps"],
            "epochs": step / plan["steps_per_epoch"],
            "target_accuracy": config.target_accuracy,
            "target": log.crossing(config.target_accuracy),
            **clock.totals(),
            "images_per_second": clock.images_per_second(config.batch_size),
            "replicas": plan["replicas"],
            "precision": config.precision,
            "global_batch": config.batch_size,
            "evaluations": log.evaluations,
        }
        if chief:
            report.write_json(os.path.join(workdir, "summary.json"), summary | {"history": log.train})
        logging.info("summary: %s", {k: v for k, v in summary.items() if k != "evaluations"})
        return summary | {"history": log.train}

    def diverged(step, what):
        summary = summarize("diverged", step)
        message = (
            f"diverged: {what} at step {step}, so the run stopped; its last good checkpoint is "
            f"{manager.latest_checkpoint or 'none (it diverged before the first save)'} and no model was exported. "
            "Lower --config.lr, or find a good one with --mode=lr_find"
        )
        return faults.RunInterrupted("diverged", step, message, summary)

    def save(step):
        if not faults.all_finite(model.weights + optimizer.variables):  # BatchNorm statistics and slots too
            raise diverged(step, "a weight or optimizer state is not finite")
        clock.carry()
        checkpoints.save(manager, step)

    preemption = faults.Preemption(strategy, manager, save)
    try:
        while step < end and not (config.stop_at_target and log.crossing(config.target_accuracy)):
            # The first call of a process is one step, so that its time is compilation plus one step's worth.
            num_steps = 1 if clock.first_call_seconds is None else min(steps_to_next(step, config, plan), end - step)
            if resident:
                resident.refresh(batches_consumed.numpy())
            if clock.first_call_seconds is None:
                logging.info(
                    "compiling the training step (%s); the first call runs one step",
                    "tracing and XLA" if config.jit_compile else "tracing",
                )
            elif clock.step_seconds:  # a call lasts at most about a progress interval
                num_steps = min(num_steps, max(int(report.PROGRESS_SECONDS / clock.step_seconds), 1))
            clock.time_training(lambda n=num_steps: train_loop(source, tf.constant(n)), num_steps)
            if clock.steady_steps == 0:
                logging.info("compiled and ran the first step in %.1f s", clock.first_call_seconds)
            batches_consumed.assign_add(num_steps)
            step = int(optimizer.iterations.numpy())  # fewer than the batches if mixed_float16 skipped a step
            if not math.isfinite(float(train_sums.loss.read_value())):  # the sums since the last log point
                raise diverged(step, "the training loss is not finite")
            if step % config.log_every_steps and step < end and clock.steady_steps and reporter.progress_due():
                reporter.progress(step)
            if step % config.log_every_steps == 0 or step >= end:
                loss, accuracy = train_sums.result_and_reset()
                lr, momentum = float(optimizer.learning_rate), float(momentum_of(optimizer))
                record = {"step": step, "epoch": step / plan["steps_per_epoch"], "loss": loss, "accuracy": accuracy}
                log.add("train", record | {"lr": lr, "momentum": momentum} | clock.totals())
                reporter.train(step, loss, accuracy, lr, momentum)
            if plan["eval_every_steps"] and step % plan["eval_every_steps"] == 0 and step < plan["total_steps"]:
                evaluate(step)
            if step % config.checkpoint_every_steps == 0 or step >= end:
                save(step)
            preemption.save_if_preempted(step)
        if not log.evaluations or log.evaluations[-1]["step"] != step:
            evaluate(step)
    except faults.RunInterrupted as interrupted:
        if interrupted.status == "preempted":
            interrupted.summary = summarize("preempted", interrupted.step)
        logging.error("%s", interrupted)
        raise
    finally:
        preemption.close()

    reached_and_stop = log.crossing(config.target_accuracy) and config.stop_at_target
    status = "completed" if step >= plan["total_steps"] else "target_reached" if reached_and_stop else "stopped"
    if chief and status != "stopped":
        with ema_weights():
            export.serving_model(model, data).save(os.path.join(workdir, "model.keras"))
    summary = summarize(status, step)
    exported = f"; the model: {os.path.join(workdir, 'model.keras')}" if status != "stopped" else ""
    logging.info(
        "%s at step %d: %s%s; curves: tensorboard --logdir %s",
        status,
        step,
        os.path.join(workdir, "summary.json"),
        exported,
        os.path.join(workdir, "tensorboard"),
    )
    return summary


def _earlier_configs(workdir, changes):
    """The configs this workdir ran under before an allowed change (kept in config.json, oldest first)."""
    if not changes:
        return {}
    with open(os.path.join(workdir, workdir_lib.CONFIG_FILE)) as f:
        recorded = json.load(f)
    earlier = recorded.pop("earlier_configs", [])
    return {"earlier_configs": earlier + [recorded]}


def check_data(config):
    """The dataset's `input_pipeline.Placement` (memory or disk), or the error that stops the run before it starts."""
    placement = input_pipeline.check_source(
        config.dataset,
        config.data_dir,
        config.download,
        config.image_size,
        config.input_path,
        config.max_in_memory_gib,
        config.eval_split,
    )
    if placement.where == "disk":
        if config.data_on_device:
            raise ConfigError(
                f"--config.data_on_device holds the training set on every device, but {config.dataset} "
                f"is read from disk ({placement.reason}): set --config.data_on_device=False, or "
                "--config.input_path=memory if it fits"
            )
        if config.model == "airbench94":
            raise ConfigError(
                "--config.model=airbench94 sets its whitening stem from training images in memory, "
                f"but {config.dataset} is read from disk: use --config.input_path=memory"
            )
    return placement


def load_data(config, placement=None):
    """The config's dataset, in memory or read from disk (`check_data` says which: pass its `placement` if you
    have it, so that the source is not checked twice)."""
    return input_pipeline.load(
        config.dataset,
        config.data_dir,
        config.download,
        config.image_size,
        synthetic_examples=config.batch_size * 8,
        skip_bad_images=config.skip_bad_images,
        input_path=config.input_path,
        max_in_memory_gib=config.max_in_memory_gib,
        eval_split=config.eval_split,
        placement=placement,
    )


def input_augmentation(config):
    """The augmentation the input side applies: none when the training step augments on the accelerator."""
    return None if config.augment_on_device else config.augmentation


class ResidentTrainingSet:
    """The training set as variables on every replica's device; `batch(step, replica)` cuts a replica's batch of
    a global step from them inside the compiled step (`input_pipeline.resident_batch`: the tf.data path's batch).

    The epoch's order of the examples is cached on the device too: `refresh(step)`, called on the host before
    each call into the loop, sets it for the epoch of `step`. A step of another epoch (a call that crosses an
    epoch's end) computes its own order instead, so the batches never depend on when the cache was refreshed.

    A synthetic training set (throughput trials) is generated on the device from the seed, never copied from the
    host: random images and labels like the host's synthetic set, but not the same values.
    """

    def __init__(self, strategy, data, config):
        self.data, self.config, self.num_replicas = data, config, strategy.num_replicas_in_sync
        self.steps_per_epoch = input_pipeline.steps_per_epoch(data.num_train, config.batch_size)
        images, labels = (
            _synthetic_on_device(data, config.seed) if data.synthetic else (data.train_images, data.train_labels)
        )
        with strategy.scope():
            self.images = tf.Variable(images, trainable=False, name="resident_images", dtype=tf.uint8)
            self.labels = tf.Variable(labels, trainable=False, name="resident_labels", dtype=tf.int32)
            self.order = tf.Variable(tf.zeros([data.num_train], tf.int32), trainable=False, name="epoch_order")
            self.order_epoch = tf.Variable(tf.constant(-1, tf.int64), trainable=False, name="epoch_of_order")

    def refresh(self, step):
        epoch = int(step) // self.steps_per_epoch
        if epoch != int(self.order_epoch.numpy()):
            self.order.assign(input_pipeline.epoch_order(self.data.num_train, self.config.seed, epoch))
            self.order_epoch.assign(epoch)

    def batch(self, step, replica):
        epoch = tf.cast(step, tf.int64) // self.steps_per_epoch
        order = tf.cond(
            tf.equal(epoch, self.order_epoch),
            lambda: tf.convert_to_tensor(self.order),
            lambda: input_pipeline.epoch_order(self.data.num_train, tf.constant(self.config.seed, tf.int64), epoch),
        )
        return input_pipeline.resident_batch(
            self.images,
            self.labels,
            self.data,
            self.config.batch_size,
            self.num_replicas,
            self.config.seed,
            step,
            replica,
            input_augmentation(self.config),
            order=order,
        )


def _synthetic_on_device(data, seed):
    """Initial values, as functions that run where the variables are made, for random images and labels of the
    synthetic training set's shapes."""
    seed = tf.constant([seed, 0], tf.int64)

    def images():
        return tf.cast(tf.random.stateless_uniform(data.train_images.shape, seed, maxval=256, dtype=tf.int32), tf.uint8)

    def labels():
        return tf.random.stateless_uniform(data.train_labels.shape, seed + 1, maxval=data.num_classes, dtype=tf.int32)

    return images, labels


def swap_in_ema_weights(optimizer):
    """A context manager factory: inside it the model's trainable weights are the optimizer's moving averages.

    Keras's own `SwapEMAWeights` does the swap on every replica's copy (in place, by additions); it only needs an
    object with the optimizer, not a compiled model, so the exported model stays free of optimizer state.
    """
    swap = keras.callbacks.SwapEMAWeights()
    swap.set_model(types.SimpleNamespace(optimizer=optimizer))

    @contextlib.contextmanager
    def ema_weights():
        swap.on_test_begin()
        try:
            yield
        finally:
            swap.on_test_end()

    return ema_weights


def check_config(config):
    """Rejects unknown names and impossible values before anything is loaded or written."""
    choices = {
        "optimizer": OPTIMIZERS,
        "precision": PRECISIONS,
        "strategy": STRATEGIES,
        "model": tuple(models.MODELS),
        "schedule": SCHEDULES,
        "input_path": input_pipeline.INPUT_PATHS,
    }
    for field, allowed in choices.items():
        if getattr(config, field) not in allowed:
            raise ConfigError(f"--config.{field}={getattr(config, field)!r} is not one of {allowed}")
    for field in (
        "batch_size",
        "epochs",
        "lr",
        "lr_reference_batch",
        "log_every_steps",
        "checkpoint_every_steps",
        "steps_per_loop",
        "max_in_memory_gib",
    ):
        if getattr(config, field) <= 0:
            raise ConfigError(f"--config.{field} must be positive, got {getattr(config, field)}")
    if config.sync_batch_norm and config.jit_compile:
        raise ConfigError(
            "--config.sync_batch_norm all-reduces inside the forward pass, which the per-replica XLA compilation "
            "cannot contain: set --config.jit_compile=False with it"
        )
    if config.eval_every_epochs < 0:
        raise ConfigError(
            f"--config.eval_every_epochs must be >= 0 (0: only at the end), got {config.eval_every_epochs}"
        )
    if config.target_accuracy is not None and not 0 < config.target_accuracy <= 1:
        raise ConfigError(
            f"--config.target_accuracy is a fraction in (0, 1] (0.94 for 94%), got {config.target_accuracy}"
        )
    if config.stop_at_target and config.target_accuracy is None:
        raise ConfigError("--config.stop_at_target needs --config.target_accuracy (e.g. --config.target_accuracy=0.94)")
    if not 0 <= config.ema_momentum < 1:
        raise ConfigError(
            f"--config.ema_momentum must be in [0, 1) (0: no EMA; 0.99 is usual), got {config.ema_momentum}"
        )
    try:  # the schedule's own range checks; its length is only known once the data is
        create_schedule(config, config.lr, 1_000_000)
    except ValueError as error:
        raise ConfigError(f"config schedule fields: {error}") from None


def resolve_jit_compile(config, strategy):
    """`config.jit_compile`, or for None (auto): XLA on where it pays, off for float32 on a CPU.

    On: GPUs and TPUs, and mixed precision (which a CPU runs fast only under XLA). Off: float32 on a CPU, where
    per-replica XLA measured 0.7-0.8x the speed of TensorFlow's own kernels (benchmarks/README.md), and with
    synchronized BatchNorm, whose all-reduce the per-replica compilation cannot contain.
    """
    if config.jit_compile is not None:
        return config.jit_compile
    return (_on_accelerator(strategy) or config.precision != "float32") and not config.sync_batch_norm


def _on_accelerator(strategy):
    """Whether the strategy computes on GPUs or TPUs. The default strategy has no device list: it runs on the
    first GPU when there is one."""
    if strategy is tf.distribute.get_strategy() and not tf.distribute.has_strategy():
        return bool(tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("TPU"))
    return any(kind in device.upper() for device in strategy.extended.worker_devices for kind in ("GPU", "TPU"))


def derive_plan(config, data, strategy):
    """Every derived number, computed once from the global batch size."""
    replicas = strategy.num_replicas_in_sync
    steps_per_epoch = input_pipeline.steps_per_epoch(data.num_train, config.batch_size)
    total_steps = config.epochs * steps_per_epoch
    end_step = min(total_steps, config.stop_at_step or total_steps)
    return {
        "input": "memory" if data.in_memory else "disk",  # input_path "auto" resolved
        "replicas": replicas,
        "per_replica_batch": input_pipeline.per_replica_batch_size(config.batch_size, replicas),
        "steps_per_epoch": steps_per_epoch,
        "total_steps": total_steps,
        "end_step": end_step,
        "eval_every_steps": max(round(config.eval_every_epochs * steps_per_epoch), 1)
        if config.eval_every_epochs
        else 0,
        "jit_compile": config.jit_compile,
        "max_lr": peak_lr(config),
        "lr_rule": f"max_lr = {config.lr} * batch {config.batch_size} / {config.lr_reference_batch}",
    }


def peak_lr(config):
    """The peak learning rate at the config's global batch: the explicit linear scaling rule of the plan."""
    return config.lr * config.batch_size / config.lr_reference_batch


def epochs_to_steps(epochs, steps_per_epoch):
    """A duration in epochs (fractions allowed) as whole steps; 0 stays 0 (never), anything else is >= 1."""
    return max(round(epochs * steps_per_epoch), 1) if epochs else 0


def steps_to_next(step, config, plan):
    """Steps until the next log, eval or checkpoint boundary, capped at steps_per_loop."""
    periods = [config.log_every_steps, config.checkpoint_every_steps] + (
        [plan["eval_every_steps"]] if plan["eval_every_steps"] else []
    )
    return min([config.steps_per_loop] + [period - step % period for period in periods])


def create_schedule(config, max_lr, total_steps):
    """The learning-rate schedule `config.schedule` names, over `total_steps` optimizer steps."""
    if config.schedule == "constant":
        return onecycle.Constant(max_lr)
    if config.schedule == "step":
        return onecycle.StepDecay(max_lr, total_steps, config.step_milestones, config.step_factor)
    if config.schedule == "warmup_cosine":
        return onecycle.WarmupCosine(max_lr, total_steps, config.warmup_pct, config.final_lr_ratio)
    return onecycle.OneCycle(
        max_lr,
        total_steps,
        pct_start=config.pct_start,
        anneal_strategy=config.anneal_strategy,
        div_factor=config.div_factor,
        final_div_factor=config.final_div_factor,
        three_phase=config.three_phase,
        base_momentum=config.base_momentum,
        max_momentum=config.max_momentum,
    )


def schedule_curves(config, total_steps):
    """(learning rate, momentum) at every step 0..total_steps-1, as the optimizer will use them."""
    schedule = create_schedule(config, peak_lr(config), total_steps)
    steps = tf.range(total_steps)
    if isinstance(schedule, onecycle.OneCycle):
        return schedule(steps).numpy(), schedule.momentum(steps).numpy()
    return schedule(steps).numpy(), np.full(total_steps, config.max_momentum, np.float32)


def create_optimizer(config, plan, model, schedule=None, momentum=None):
    """The configured schedule in a momentum-cycling optimizer (loss-scaled under mixed_float16).

    Under 1Cycle the momentum follows the schedule; under a baseline it is held at `max_momentum`. The LR range
    test passes its own `schedule` and `momentum`.
    """
    schedule = schedule or create_schedule(config, plan["max_lr"], plan["total_steps"])
    momentum = config.max_momentum if momentum is None else momentum  # unused when a OneCycle cycles it
    decay = config.weight_decay or None
    ema = dict(use_ema=True, ema_momentum=config.ema_momentum) if config.ema_momentum else {}
    optimizer = {
        "sgd": lambda: onecycle.SGD(schedule, momentum, weight_decay=decay, **ema),
        "nesterov": lambda: onecycle.SGD(schedule, momentum, nesterov=True, weight_decay=decay, **ema),
        "adam": lambda: onecycle.Adam(schedule, momentum, weight_decay=decay, **ema),
        "adamw": lambda: onecycle.AdamW(schedule, weight_decay=config.weight_decay, beta_1=momentum, **ema),
        "rmsprop": lambda: onecycle.RMSprop(schedule, momentum=momentum, weight_decay=decay, **ema),
    }[config.optimizer]()
    onecycle.exclude_biases_and_norms_from_weight_decay(optimizer, model.trainable_variables)
    if config.precision == "mixed_float16":
        return onecycle.LossScaleOptimizer(optimizer)
    return optimizer


def momentum_of(optimizer):
    inner = getattr(optimizer, "inner_optimizer", optimizer)
    return inner.current_momentum
