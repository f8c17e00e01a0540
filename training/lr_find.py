"""The LR range test as a mode of the trainer: the configured run's strategy, data, augmentation, precision,
model and optimizer, with the learning rate swept exponentially instead of scheduled.

The sweep runs one step per call into the compiled loop, so that every step's loss (the mean over the global
batch, all replicas) is read and a divergence stops the sweep at once; the learning rate is still evaluated
inside the step, from `optimizer.iterations`. Momentum is held at `base_momentum`, the value 1Cycle uses at its
peak. The model and optimizer are thrown away afterwards: the sweep writes only `lr_find.json` and
`lr_find.png` into its workdir, never a checkpoint.
"""

import dataclasses
import math
import os

import keras
import tensorflow as tf
from absl import logging

import input_pipeline
import models
from configs.base import ConfigError
from models.airbench import whiten_from_data
from onecycle.lr_range import ExponentialSweep, plot_sweep, smooth, suggest
from training import report, steps, trainer
from training.strategy import create_strategy, is_chief
from training.workdir import claimed


def find_lr(config, workdir, strategy=None):
    """Sweeps the learning rate, writes `lr_find.json` and `lr_find.png` in `workdir`, returns the record."""
    settings = config.lr_find
    check_settings(settings)
    trainer.check_config(config)
    placement = trainer.check_data(config)
    strategy = strategy or create_strategy(config.strategy, config.devices, config.tpu, config.slurm_port_base)
    config = dataclasses.replace(config, jit_compile=trainer.resolve_jit_compile(config, strategy))
    with claimed(workdir, is_chief(strategy)):
        return _sweep(config, workdir, strategy, placement)


def _sweep(config, workdir, strategy, placement):
    settings = config.lr_find
    keras.mixed_precision.set_global_policy(config.precision)
    keras.utils.set_random_seed(config.seed)

    data = trainer.load_data(config, placement)
    plan = trainer.derive_plan(config, data, strategy)
    sweep = ExponentialSweep(settings.start_lr, settings.end_lr, settings.num_steps)
    with strategy.scope():
        model = models.create_model(
            config.model, data.image_shape, data.num_classes, config.sync_batch_norm, config.width
        )
        optimizer = trainer.create_optimizer(config, plan, model, schedule=sweep, momentum=config.base_momentum)
        optimizer.build(model.trainable_variables)
        if data.in_memory:
            whiten_from_data(model, input_pipeline.normalise(data.train_images[:5000], data).numpy())
    train_data = input_pipeline.train_dataset(
        strategy,
        data,
        config.batch_size,
        config.seed,
        augmentation=trainer.input_augmentation(config),
    )
    train_loop, _, train_sums, _ = steps.make_loops(
        strategy, model, optimizer, config, data.num_classes, config.batch_size
    )

    curve, stop = [], {"reason": "swept the whole range", "step": settings.num_steps}
    iterator = iter(train_data)
    for step in range(settings.num_steps):
        lr = float(sweep(int(optimizer.iterations.numpy())))  # the rate this update uses
        train_loop(iterator, tf.constant(1))
        loss, _ = train_sums.result_and_reset()
        losses = [point["loss"] for point in curve] + [loss]
        smoothed = float(smooth(losses, settings.beta)[-1])
        curve.append({"step": step, "lr": lr, "loss": loss, "smoothed": smoothed})
        if step % max(settings.num_steps // 10, 1) == 0:
            logging.info(
                "lr_find step %d/%d  lr %.3g  loss %.4f  smoothed %.4f", step, settings.num_steps, lr, loss, smoothed
            )
        if not math.isfinite(loss):
            stop = {"reason": "the loss is not finite", "step": step}
            break
        if smoothed > settings.divergence * min(point["smoothed"] for point in curve):
            stop = {"reason": f"the smoothed loss exceeded {settings.divergence:g}x its minimum", "step": step}
            break

    finite = [point for point in curve if math.isfinite(point["loss"])]
    suggestion = suggest([p["lr"] for p in finite], [p["smoothed"] for p in finite])
    if suggestion.get("suggested_max_lr"):
        suggestion["config_lr"] = suggestion["suggested_max_lr"] * config.lr_reference_batch / config.batch_size
    record = {
        "suggestion": suggestion,
        "stopped": stop,
        "lr_rule": f"config.lr = max_lr * lr_reference_batch {config.lr_reference_batch} / batch {config.batch_size}",
        "curve": curve,
        "settings": dataclasses.asdict(settings),
        "config": dataclasses.asdict(config),
        "replicas": strategy.num_replicas_in_sync,
    }
    if is_chief(strategy):
        report.write_json(os.path.join(workdir, "lr_find.json"), _strict(record))
        title = f"LR range test: {config.dataset} {config.model} x{config.width:g}, batch {config.batch_size}"
        plot_sweep(
            [p["lr"] for p in curve],
            [p["loss"] for p in curve],
            [p["smoothed"] for p in curve],
            suggestion,
            os.path.join(workdir, "lr_find.png"),
            title,
        )
    _log(record, workdir)
    return record


def check_settings(settings):
    if not 0 < settings.start_lr < settings.end_lr:
        raise ConfigError(
            f"--config.lr_find needs 0 < start_lr < end_lr, got {settings.start_lr} and {settings.end_lr}"
        )
    if settings.num_steps < 10:
        raise ConfigError(f"--config.lr_find.num_steps must be >= 10 for a readable curve, got {settings.num_steps}")
    if settings.divergence <= 1:
        raise ConfigError(
            f"--config.lr_find.divergence is a multiple of the minimum loss, > 1; got {settings.divergence}"
        )
    if not 0 <= settings.beta < 1:
        raise ConfigError(f"--config.lr_find.beta must be in [0, 1), got {settings.beta}")


def _strict(record):
    """The record with non-finite losses as null: strict JSON has no NaN or Infinity."""
    curve = [
        {k: (v if not isinstance(v, float) or math.isfinite(v) else None) for k, v in p.items()}
        for p in record["curve"]
    ]
    return record | {"curve": curve}


def _log(record, workdir):
    suggestion, stop = record["suggestion"], record["stopped"]
    logging.info("lr_find stopped at step %d: %s", stop["step"], stop["reason"])
    for key in ("warning", "note"):
        if suggestion.get(key):
            logging.warning("lr_find: %s", suggestion[key])
    for key in ("valley_lr", "minimum_over_10_lr", "steepest_lr"):
        if key in suggestion:
            logging.info("lr_find %s: %.4g", key.removesuffix("_lr"), suggestion[key])
    if suggestion.get("suggested_max_lr"):
        logging.info(
            "lr_find suggests max_lr %.4g (valley rule): train with --config.lr=%.4g (%s); plot in %s",
            suggestion["suggested_max_lr"],
            suggestion["config_lr"],
            record["lr_rule"],
            os.path.join(workdir, "lr_find.png"),
        )
