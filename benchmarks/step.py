"""How close our training step comes to its limit, and what the schedule, the optimizer and XLA cost.

    python -m benchmarks.step                      # both regimes, about 5 minutes on 2 CPU cores
    python -m benchmarks.step --windows=1 --steps=1 --regimes=overhead   # a smoke run (CI)

Two regimes, as issue 9 defines them: compute-bound (ResNet-9 at width 0.25, batch 128, CIFAR-sized images:
every loop looks alike) and overhead-bound (the airbench net at width 0.125, batch 64: a step of a few
milliseconds here, standing in for a GPU, where per-step overhead and the input pipeline decide). Every variant
uses the quick-start images in memory; variants of a regime are alternated window by window in this process
(benchmarks/harness.py) and compared by their median images/second.

Rows: the limit (our compiled step fed one batch already in memory: no input pipeline, schedule and optimizer
in); ours (the real loop and input pipeline with augmentation, 1Cycle with momentum); ours with XLA toggled;
momentum held constant (prices the momentum schedule); onecycle.Adam against keras.optimizers.Adam at
step 0 and at step 1,000,000 (the exact bias correction must cost nothing, late as early); and the input
pipeline alone against what the step consumes.
"""

import argparse
import dataclasses
import os
import platform

import keras
import tensorflow as tf

import input_pipeline
import models
import onecycle
from benchmarks.harness import Variant, alternate, table
from configs.base import Config
from training import steps as training_steps
from training import trainer

REGIMES = {
    "compute": Config(model="resnet9", width=0.25, batch_size=128, lr_reference_batch=128, jit_compile=False),
    "overhead": Config(model="airbench", width=0.125, batch_size=64, lr_reference_batch=64, jit_compile=False),
}
LATE_STEP = 1_000_000


def training_variant(name, config, data, feed="pipeline", optimizer=None, start_step=0):
    """Our compiled loop (training.steps) over `feed`: the real input pipeline, or one batch in memory."""
    strategy = tf.distribute.get_strategy()
    plan = {"max_lr": trainer.peak_lr(config), "total_steps": 2 * LATE_STEP}
    keras.utils.set_random_seed(0)
    model = models.create_model(config.model, data.image_shape, data.num_classes, width=config.width)
    optimizer = optimizer or trainer.create_optimizer(config, plan, model)
    optimizer.build(model.trainable_variables)
    optimizer.iterations.assign(start_step)
    if feed == "pipeline":
        dataset = input_pipeline.train_dataset(strategy, data, config.batch_size, 0, augmentation=config.augmentation)
    else:  # the limit: one normalised batch, already in memory, served again and again
        images = input_pipeline.normalise(data.train_images[: config.batch_size], data)
        dataset = tf.data.Dataset.from_tensors((images, data.train_labels[: config.batch_size])).repeat()
    train_loop = training_steps.make_loops(strategy, model, optimizer, config, data.num_classes, config.batch_size)[0]
    iterator = iter(dataset)

    def run(num_steps):
        train_loop(iterator, tf.constant(num_steps))
        optimizer.iterations.numpy()  # wait for the device

    return Variant(name, run, config.batch_size)


def pipeline_variant(config, data):
    """The input pipeline alone: batches made (gathered, normalised, augmented) and fetched, no training."""
    dataset = input_pipeline.train_dataset(tf.distribute.get_strategy(), data, config.batch_size, 0,
                                           augmentation=config.augmentation)  # fmt: skip
    iterator = iter(dataset)

    def run(num_batches):
        for _ in range(num_batches):
            next(iterator)[0].numpy()

    return Variant("input pipeline alone", run, config.batch_size)


def regime_rows(regime, config, data, windows, steps):
    adam_schedule = onecycle.OneCycle(trainer.peak_lr(config), 2 * LATE_STEP)
    adam = {
        (name, t): training_variant(f"{name} @ step {t:,}", config, data, "memory", make(), start_step=t)
        for t in (0, LATE_STEP)
        for name, make in (("onecycle.Adam", lambda: onecycle.Adam(adam_schedule)),
                           ("keras Adam", lambda: keras.optimizers.Adam(trainer.peak_lr(config))))
    }  # fmt: skip
    limit = training_variant("limit: compiled step, batch in memory", config, data, "memory")
    ours = training_variant("ours: loop + pipeline + 1Cycle", config, data)
    xla = training_variant(f"ours, jit_compile={not config.jit_compile}",
                           dataclasses.replace(config, jit_compile=not config.jit_compile), data)  # fmt: skip
    constant = training_variant(
        "ours, constant momentum", config, data,
        optimizer=onecycle.SGD(onecycle.OneCycle(trainer.peak_lr(config), 2 * LATE_STEP), momentum=0.95,
                               nesterov=True, cycle_momentum=False, weight_decay=config.weight_decay),
    )  # fmt: skip
    pipeline = pipeline_variant(config, data)
    alternate([limit, ours, xla, constant, *adam.values()], windows, steps)
    alternate([pipeline], windows, steps * 4)
    return [
        (regime, limit, limit, None),
        (regime, ours, limit, 0.97),
        (regime, xla, ours, None),
        (regime, ours, constant, 0.99),
        (regime, adam["onecycle.Adam", 0], adam["keras Adam", 0], 0.98),
        (regime, adam["onecycle.Adam", LATE_STEP], adam["keras Adam", LATE_STEP], 0.98),
        (regime, pipeline, ours, 5.0),
    ]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--regimes", default="compute,overhead", help="comma-separated: compute, overhead")
    parser.add_argument("--windows", type=int, default=5, help="alternated timing windows per variant")
    parser.add_argument("--steps", type=int, default=10, help="training steps per window")
    args = parser.parse_args()
    unknown = set(args.regimes.split(",")) - set(REGIMES)
    if unknown:
        parser.error(f"unknown regime(s) {sorted(unknown)}; choose from {sorted(REGIMES)}")

    tf.get_logger().setLevel("ERROR")  # each variant traces its own loop: the retracing warnings are expected
    data = input_pipeline.load("quickstart")
    rows = []
    for regime in args.regimes.split(","):
        rows += regime_rows(regime, REGIMES[regime], data, args.windows, args.steps)
    print(f"TensorFlow {tf.__version__}, Keras {keras.__version__}, {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs, float32; {args.windows} windows of {args.steps} steps per variant, "
          "alternated; median images/s")  # fmt: skip
    print(table(rows))


if __name__ == "__main__":
    main()
