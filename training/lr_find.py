"""The LR range test as a mode of the trainer: the configured run's strategy, data, augmentation, precision,
model and optimizer, with the learning rate swept exponentially instead of scheduled.

The sweep runs one step per call into the compiled loop, so that every step's loss (the mean over the global
batch, all replicas) is read and a divergence stops the sweep at once; the learning rate is still evaluated
inside the step, from `optimizer.iterations`. Momentum is held at `base_momentum`, the value 1Cycle uses at its
peak. The model and optimizer are thrown away afterwards: the sweep writes `lr_find.json`, `lr_find.png` and
its lock `run.lock` into its workdir, never a checkpoint.
"""

import dataclasses
import math
import os
import time

import tensorflow as tf
from absl import logging

import input_pipeline
from onecycle.lr_range import RULES, ExponentialSweep, plot_sweep, smooth, suggest
from training import loops, report, setup
from training.plan import config_lr, inverse_lr_rule
from training.strategy import is_chief
from training.workdir import claimed


def main(config, workdir, invocation):
    """`--mode=lr_find`: the sweep, then the command that trains with its suggestion."""
    suggestion = find_lr(config, workdir)["suggestion"]
    if suggestion.get("config_lr"):
        command = invocation.training_command(suggestion["config_lr"])
        print(f"train with the {suggestion['rule']} rule's suggestion:\n  {command}")


def find_lr(config, workdir, strategy=None):
    """Sweeps the learning rate, writes `lr_find.json` and `lr_find.png` in `workdir`, returns the record."""
    started = time.monotonic()
    prepared = setup.start(config, strategy)
    with claimed(workdir, is_chief(prepared.strategy)):
        return _sweep(config, workdir, prepared, started)


def _sweep(config, workdir, prepared, started):
    settings = config.lr_find
    strategy = prepared.strategy
    sweep = ExponentialSweep(settings.start_lr, settings.end_lr, settings.num_steps)
    run = setup.build(config, prepared, schedule=sweep, momentum=config.base_momentum)
    data, optimizer = run.data, run.optimizer
    train_data = input_pipeline.train_dataset(strategy, data, config)
    compiled = loops.make_loops(run)
    train_loop, train_sums = compiled.train, compiled.train_sums

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
    suggestion = suggest([p["lr"] for p in finite], [p["smoothed"] for p in finite], rule=settings.rule)
    if suggestion.get("suggested_max_lr"):
        suggestion["config_lr"] = config_lr(config, suggestion["suggested_max_lr"])
    record = {
        "suggestion": suggestion,
        "stopped": stop,
        "lr_rule": inverse_lr_rule(config),
        "curve": curve,
        "settings": dataclasses.asdict(settings),
        "config": dataclasses.asdict(config),
        "replicas": strategy.num_replicas_in_sync,
        "wall_seconds": time.monotonic() - started,  # data, model, the sweep, not the TensorFlow import
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
    for rule in (*RULES, "minimum"):
        if f"{rule}_lr" in suggestion:
            logging.info("lr_find %s: max_lr %.4g", rule, suggestion[f"{rule}_lr"])
    if suggestion.get("suggested_max_lr"):
        logging.info(
            "lr_find suggests max_lr %.4g (%s rule): train with --config.lr=%.4g (%s); plot in %s",
            suggestion["suggested_max_lr"],
            suggestion["rule"],
            suggestion["config_lr"],
            record["lr_rule"],
            os.path.join(workdir, "lr_find.png"),
        )
