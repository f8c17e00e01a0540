"""The trainer: one run of a config in a workdir, resumable at its exact step, on any tf.distribute strategy.

`train_and_evaluate(config, workdir)` is what `train.py` calls for one run, and what trials and the LR range test
reuse: it never reads flags.
"""

import dataclasses
import os

import keras
import tensorflow as tf
from absl import logging

import input_pipeline
import models
import onecycle
from training import report, steps
from training.strategy import STRATEGIES, create_strategy, is_chief, task_id

OPTIMIZERS = ("sgd", "nesterov", "adam", "adamw", "rmsprop")
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")


def train_and_evaluate(config, workdir, strategy=None):
    """Trains `config` in `workdir` (resuming from its latest checkpoint) and returns the final summary."""
    check_config(config)
    strategy = strategy or create_strategy(config.strategy, config.devices, config.tpu)
    keras.mixed_precision.set_global_policy(config.precision)
    keras.utils.set_random_seed(config.seed)
    chief = is_chief(strategy)

    data = input_pipeline.load(
        config.dataset, config.data_dir, config.download, config.image_size, config.seed, config.batch_size * 8
    )
    plan = derive_plan(config, data, strategy)
    logging.info("dataset %s: %d train / %d eval examples of %s%s", data.name, data.num_train, data.num_eval,
                 data.image_shape, " (SYNTHETIC)" if data.synthetic else "")  # fmt: skip
    logging.info("plan: %s", plan)
    os.makedirs(workdir, exist_ok=True)
    if chief:
        report.write_json(os.path.join(workdir, "config.json"), {"config": dataclasses.asdict(config), "derived": plan})

    with strategy.scope():
        model = models.create_model(config.model, data.image_shape, data.num_classes, config.sync_batch_norm,
                                    config.width)  # fmt: skip
        optimizer = create_optimizer(config, plan, model)
        optimizer.build(model.trainable_variables)
        batches_consumed = tf.Variable(0, dtype=tf.int64, trainable=False, name="batches_consumed")
    checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer, batches_consumed=batches_consumed)
    checkpoint_dir = os.path.join(workdir, "checkpoints" if chief else f"checkpoints_worker{task_id(strategy)}")
    manager = tf.train.CheckpointManager(checkpoint, checkpoint_dir, max_to_keep=3)
    if manager.latest_checkpoint:
        checkpoint.restore(manager.latest_checkpoint).assert_existing_objects_matched()
        logging.info("resumed from %s at step %d", manager.latest_checkpoint, int(optimizer.iterations.numpy()))

    train_data = input_pipeline.train_dataset(
        strategy, data, config.batch_size, config.seed, start_step=int(batches_consumed.numpy()),
        augmentation=None if config.augment_on_device else config.augmentation,
    )  # fmt: skip
    train_loop, eval_loop, train_sums, eval_sums = steps.make_loops(
        strategy, model, optimizer, config, data.num_classes, config.batch_size
    )
    reporter = report.Reporter(workdir, chief, plan["total_steps"], plan["steps_per_epoch"], config.batch_size,
                               data.synthetic)  # fmt: skip

    eval_data, eval_steps = input_pipeline.eval_dataset(strategy, data, config.batch_size)

    def evaluate(step):
        eval_loop(iter(eval_data), tf.constant(eval_steps))
        loss, accuracy = eval_sums.result_and_reset()
        reporter.evaluation(step, loss, accuracy)
        return loss, accuracy

    history = []
    iterator = iter(train_data)
    step, end = int(optimizer.iterations.numpy()), plan["end_step"]
    while step < end:
        num_steps = min(steps_to_next(step, config), end - step)
        reporter.timed_call(lambda n=num_steps: train_loop(iterator, tf.constant(n)), num_steps)
        batches_consumed.assign_add(num_steps)
        step = int(optimizer.iterations.numpy())  # fewer than the batches if mixed_float16 skipped an overflowing step
        if step % config.log_every_steps == 0 or step >= end:
            loss, accuracy = train_sums.result_and_reset()
            lr, momentum = float(optimizer.learning_rate), float(momentum_of(optimizer))
            reporter.train(step, loss, accuracy, lr, momentum)
            history.append({"step": step, "loss": loss, "accuracy": accuracy, "lr": lr, "momentum": momentum})
        if config.eval_every_steps and step % config.eval_every_steps == 0 and step < plan["total_steps"]:
            evaluate(step)
        if step % config.checkpoint_every_steps == 0 or step >= end:
            manager.save(checkpoint_number=step)

    eval_loss, eval_accuracy = evaluate(step)
    summary = {
        "dataset": data.name, "synthetic": data.synthetic, "model": config.model,
        "eval_accuracy": eval_accuracy, "eval_loss": eval_loss, "steps": step, "epochs": step / plan["steps_per_epoch"],
        "train_seconds": reporter.train_seconds, "compile_seconds": reporter.compile_seconds,
        "images_per_second": config.batch_size / reporter.step_seconds if reporter.steady_steps else None,
        "replicas": plan["replicas"], "precision": config.precision, "global_batch": config.batch_size,
    }  # fmt: skip
    if chief and step >= plan["total_steps"]:
        model.save(os.path.join(workdir, "model.keras"))
    if chief:
        report.write_json(os.path.join(workdir, "summary.json"), summary)
    logging.info("summary: %s", summary)
    return summary | {"history": history}


def check_config(config):
    """Rejects unknown names and impossible values before anything is loaded or written."""
    choices = {"optimizer": OPTIMIZERS, "precision": PRECISIONS, "strategy": STRATEGIES, "model": tuple(models.MODELS)}
    for field, allowed in choices.items():
        if getattr(config, field) not in allowed:
            raise ValueError(f"config.{field}={getattr(config, field)!r} is not one of {allowed}")
    for field in ("batch_size", "epochs", "log_every_steps", "checkpoint_every_steps", "steps_per_loop"):
        if getattr(config, field) <= 0:
            raise ValueError(f"config.{field} must be positive, got {getattr(config, field)}")
    if config.sync_batch_norm and config.jit_compile:
        raise ValueError(
            "config.sync_batch_norm all-reduces inside the forward pass, which the per-replica XLA compilation "
            "cannot contain: set config.jit_compile=False with it"
        )
    if config.eval_every_steps < 0:
        raise ValueError(f"config.eval_every_steps must be >= 0 (0: only at the end), got {config.eval_every_steps}")


def derive_plan(config, data, strategy):
    """Every derived number, computed once from the global batch size."""
    replicas = strategy.num_replicas_in_sync
    steps_per_epoch = input_pipeline.steps_per_epoch(data.num_train, config.batch_size)
    total_steps = config.epochs * steps_per_epoch
    end_step = min(total_steps, config.stop_at_step or total_steps)
    return {
        "replicas": replicas,
        "per_replica_batch": input_pipeline.per_replica_batch_size(config.batch_size, replicas),
        "steps_per_epoch": steps_per_epoch,
        "total_steps": total_steps,
        "end_step": end_step,
        "max_lr": config.lr * config.batch_size / config.lr_reference_batch,
        "lr_rule": f"max_lr = {config.lr} * batch {config.batch_size} / {config.lr_reference_batch}",
    }


def steps_to_next(step, config):
    """Steps until the next log, eval or checkpoint boundary, capped at steps_per_loop."""
    periods = [config.log_every_steps, config.checkpoint_every_steps] + (
        [config.eval_every_steps] if config.eval_every_steps else []
    )
    return min([config.steps_per_loop] + [period - step % period for period in periods])


def create_optimizer(config, plan, model):
    """The 1Cycle schedule and a momentum-cycling optimizer (loss-scaled under mixed_float16)."""
    schedule = onecycle.OneCycle(
        plan["max_lr"], plan["total_steps"], pct_start=config.pct_start, anneal_strategy=config.anneal_strategy,
        div_factor=config.div_factor, final_div_factor=config.final_div_factor, three_phase=config.three_phase,
        base_momentum=config.base_momentum, max_momentum=config.max_momentum,
    )  # fmt: skip
    decay = config.weight_decay or None
    optimizer = {
        "sgd": lambda: onecycle.SGD(schedule, weight_decay=decay),
        "nesterov": lambda: onecycle.SGD(schedule, nesterov=True, weight_decay=decay),
        "adam": lambda: onecycle.Adam(schedule, weight_decay=decay),
        "adamw": lambda: onecycle.AdamW(schedule, weight_decay=config.weight_decay),
        "rmsprop": lambda: onecycle.RMSprop(schedule, weight_decay=decay),
    }[config.optimizer]()
    onecycle.exclude_biases_and_norms_from_weight_decay(optimizer, model.trainable_variables)
    if config.precision == "mixed_float16":
        return onecycle.LossScaleOptimizer(optimizer)
    return optimizer


def momentum_of(optimizer):
    inner = getattr(optimizer, "inner_optimizer", optimizer)
    return inner.current_momentum
