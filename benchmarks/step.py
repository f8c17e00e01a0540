"""How close our training step comes to its limit, and what the schedule, the optimizer and XLA cost.

    python -m benchmarks.step                      # both regimes, about 5 minutes on 2 CPU cores
    python -m benchmarks.step --windows=1 --steps=1 --regimes=overhead   # a smoke run (CI)

Two regimes: compute-bound (ResNet-9 at width 0.25, batch 128, CIFAR-sized images: about 150 ms a step here,
where every loop looks alike) and overhead-bound (the airbench net at width 0.03, batch 16: about 9 ms a step
here, standing in for a GPU, where per-step overhead and the input pipeline decide). Every variant
uses the quick-start images in memory; variants of a regime are alternated window by window in this process
(benchmarks/harness.py) and compared by their median images/second.

Rows: the limit (our compiled step fed one batch already in memory: no input pipeline, schedule and optimizer
in); ours (the real loop and input pipeline with augmentation, 1Cycle with momentum); ours with the training set
on the device (`data_on_device`: gathered and augmented inside the step); ours without augmentation; ours with
XLA toggled; Keras `fit` with a naive pipeline, with a host-callback 1Cycle and with XLA;
momentum held constant (prices the momentum schedule); onecycle.Adam against keras.optimizers.Adam at
step 0 and at step 1,000,000 (the exact bias correction must cost nothing, late as early); and the input
pipeline alone against what the step consumes.
"""

import argparse
import dataclasses
import os
import platform
import resource

import keras
import numpy as np
import tensorflow as tf

import input_pipeline
import models
import onecycle
from benchmarks.harness import Variant, alternate, fetching, table
from configs.base import Config
from training import loops, setup
from training.optimization import create_optimizer, create_schedule
from training.plan import derive_plan, peak_lr

REGIMES = {  # (config, training steps per timing window)
    "compute": (Config(model="resnet9", width=0.25, batch_size=128, lr_reference_batch=128, jit_compile=False), 10),
    "overhead": (Config(model="airbench", width=0.03, batch_size=16, lr_reference_batch=16, jit_compile=False), 40),
}
LATE_STEP = 1_000_000
NO_AUGMENTATION = input_pipeline.Augmentation(crop_padding=0, flip=False, cutout=0)


def training_variant(name, config, data, feed="pipeline", make_optimizer=None, start_step=0, strategy=None):
    """Our compiled loop (training.loops) over `feed`: "pipeline" (tf.data, as the trainer reads it), "device"
    (the resident training set) or "memory" (one batch, the limit)."""
    strategy = strategy or tf.distribute.get_strategy()
    keras.utils.set_random_seed(0)
    with strategy.scope():
        model = models.create_model(config.model, data.image_shape, data.num_classes, width=config.width)
        optimizer = make_optimizer() if make_optimizer else default_optimizer(config, model)
        optimizer.build(model.trainable_variables)
    optimizer.iterations.assign(start_step)
    if feed == "memory":  # the limit: one normalised batch, already in memory, served again and again
        images = input_pipeline.normalise(data.train_images[: config.batch_size], data)
        dataset = tf.data.Dataset.from_tensors((images, data.train_labels[: config.batch_size])).repeat()
        resident, train_input = None, iter(strategy.experimental_distribute_dataset(dataset))
    else:  # the real input: the pipeline, or the training set on the device (gathered and augmented in the step)
        config = dataclasses.replace(config, data_on_device=feed == "device")
        with strategy.scope():
            batches_consumed = tf.Variable(0, dtype=tf.int64, trainable=False)
        resident, train_input = setup.training_input(config, strategy, data, batches_consumed)
    plan = derive_plan(config, data.num_train, strategy.num_replicas_in_sync, "memory", bool(config.jit_compile))
    train_loop = loops.make_loops(setup.Run(config, strategy, data, plan, model, optimizer), resident).train

    def run(num_steps):
        while num_steps:
            steps = num_steps
            if resident:  # a call ends at its epoch's end, where the resident set's order changes
                steps = resident.prepare_call(train_input.numpy(), steps)
            train_loop(train_input, tf.constant(steps))
            if resident:
                train_input.assign_add(steps)
            num_steps -= steps
        optimizer.iterations.numpy()  # wait for the device

    return Variant(name, run, config.batch_size)


def default_optimizer(config, model):
    """The config's optimizer and schedule over a run long enough for every variant (LATE_STEP is inside it)."""
    return create_optimizer(config, model, create_schedule(config, peak_lr(config), 2 * LATE_STEP))


class HostOneCycle(keras.callbacks.Callback):
    """The widely copied Keras approach: the host sets the learning rate (and momentum) before every batch."""

    def __init__(self, schedule, total_steps):
        super().__init__()
        self.lrs = schedule(np.arange(total_steps)).numpy()
        self.moms = schedule.momentum(np.arange(total_steps)).numpy()

    def on_train_batch_begin(self, batch, logs=None):
        step = int(self.model.optimizer.iterations.numpy())
        self.model.optimizer.learning_rate = self.lrs[step]  # on Keras 3 an assignment to the rate variable
        self.model.optimizer.momentum = self.moms[step]  # ... and this one changes nothing: baked into the step


def naive_dataset(config, data):
    """What a first Keras pipeline looks like: per-example augmentation in `map`, no prefetch."""

    def example(image, label):
        image = input_pipeline.normalise(image, data)
        image = tf.pad(image, [[4, 4], [4, 4], [0, 0]], mode="REFLECT")
        image = tf.image.random_flip_left_right(tf.image.random_crop(image, data.image_shape))
        return image, label

    dataset = tf.data.Dataset.from_tensor_slices((data.train_images, data.train_labels)).shuffle(10_000).repeat()
    return dataset.map(example).batch(config.batch_size, drop_remainder=True)


def keras_variant(name, config, data, dataset, callbacks=(), jit_compile=False):
    """Keras `fit`'s inner loop, driven step by step so that it can be alternated with the other variants:
    for each batch the callbacks' `on_train_batch_begin`, Keras's compiled `train_function`, `on_train_batch_end`
    (keras/src/backend/tensorflow/trainer.py, `fit`)."""
    keras.utils.set_random_seed(0)
    model = models.create_model(config.model, data.image_shape, data.num_classes, width=config.width)
    loss = keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=config.label_smoothing)
    optimizer = keras.optimizers.SGD(peak_lr(config), momentum=0.9, nesterov=True)
    model.compile(optimizer, loss=loss, metrics=["accuracy"], jit_compile=jit_compile)
    dataset = dataset.map(lambda images, labels: (images, tf.one_hot(labels, data.num_classes)))
    iterator = iter(model.distribute_strategy.experimental_distribute_dataset(dataset))
    model.make_train_function()
    callback_list = keras.callbacks.CallbackList(list(callbacks), model=model)

    def run(num_steps):
        for _ in range(num_steps):
            batch = int(model.optimizer.iterations.numpy())
            callback_list.on_train_batch_begin(batch)
            logs = model.train_function(iterator)
            callback_list.on_train_batch_end(batch, logs)
        model.optimizer.iterations.numpy()

    return Variant(name, run, config.batch_size)


def pipeline_variant(config, data, name="input pipeline alone"):
    """The input pipeline alone: batches made (gathered or read, normalised, augmented) and fetched, no training."""
    dataset = input_pipeline.train_dataset(tf.distribute.get_strategy(), data, config)
    return fetching(name, dataset, config.batch_size)


def regime_rows(regime, config, data, windows, steps):
    peak = peak_lr(config)
    adam_schedule = onecycle.OneCycle(peak, 2 * LATE_STEP)
    adam = {
        (name, t): training_variant(f"{name} @ step {t:,}", config, data, "memory", make, start_step=t)
        for t in (0, LATE_STEP)
        for name, make in (
            ("onecycle.Adam", lambda: onecycle.Adam(adam_schedule)),
            ("keras Adam", lambda: keras.optimizers.Adam(peak)),
        )
    }
    limit = training_variant("limit: compiled step, batch in memory", config, data, "memory")
    ours = training_variant("ours: loop + pipeline + 1Cycle", config, data)
    resident = training_variant("ours, data on device", config, data, "device")
    unaugmented = dataclasses.replace(config, augmentation=NO_AUGMENTATION)
    bare = training_variant("ours without augmentation", unaugmented, data)
    bare_resident = training_variant("ours, data on device, without augmentation", unaugmented, data, "device")
    xla = training_variant(
        f"ours, jit_compile={not config.jit_compile}",
        dataclasses.replace(config, jit_compile=not config.jit_compile),
        data,
    )
    constant = training_variant(
        "ours, constant momentum",
        config,
        data,
        make_optimizer=lambda: onecycle.SGD(
            onecycle.OneCycle(peak, 2 * LATE_STEP),
            momentum=0.95,
            nesterov=True,
            cycle_momentum=False,
            weight_decay=config.weight_decay,
        ),
    )
    ours_input = input_pipeline.train_dataset(tf.distribute.get_strategy(), data, config)
    naive = keras_variant("keras fit: naive input, constant lr", config, data, naive_dataset(config, data))
    host = keras_variant(
        "keras fit + host-callback 1Cycle",
        config,
        data,
        ours_input,
        [HostOneCycle(onecycle.OneCycle(peak, 2 * LATE_STEP), 2 * LATE_STEP)],
    )
    keras_xla = keras_variant("keras fit(jit_compile=True)", config, data, ours_input, jit_compile=True)
    pipeline = pipeline_variant(config, data)
    variants = [limit, ours, resident, bare, bare_resident, xla, constant, naive, host, keras_xla, *adam.values()]
    alternate(variants, windows, steps)
    alternate([pipeline], windows, steps * 4)
    compute = regime == "compute"
    return [
        (regime, limit, limit, None),
        (regime, ours, limit, 0.97),
        (regime, resident, limit, None),
        (regime, bare, limit, None),
        (regime, bare_resident, limit, None),
        (regime, xla, ours, None),
        (regime, ours, constant, 0.99),
        (regime, ours, naive, 1.0 if compute else 1.5),
        (regime, ours, host, 1.0 if compute else 1.5),
        (regime, ours, keras_xla, 1.0 if compute else None),
        (regime, adam["onecycle.Adam", 0], adam["keras Adam", 0], 0.98),
        (regime, adam["onecycle.Adam", LATE_STEP], adam["keras Adam", LATE_STEP], 0.98),
        (regime, pipeline, ours, 5.0),
    ]


def parse_arguments(description):
    """The command line of both benchmarks: which regimes, how many windows, how many steps per window."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--regimes", default="compute,overhead", help="comma-separated: compute, overhead")
    parser.add_argument("--windows", type=int, default=7, help="alternated timing windows per variant")
    parser.add_argument("--steps", type=int, help="training steps per window (default: 10 compute, 40 overhead)")
    args = parser.parse_args()
    args.regimes = args.regimes.split(",")
    unknown = set(args.regimes) - set(REGIMES)
    if unknown:
        parser.error(f"unknown regime(s) {sorted(unknown)}; choose from {sorted(REGIMES)}")
    return args


def main():
    args = parse_arguments(__doc__.splitlines()[0])
    tf.get_logger().setLevel("ERROR")  # each variant traces its own loop: the retracing warnings are expected
    data = input_pipeline.load(Config(dataset="quickstart"))
    rows = []
    for regime in args.regimes:
        config, steps = REGIMES[regime]
        rows += regime_rows(regime, config, data, args.windows, args.steps or steps)
    print(
        f"TensorFlow {tf.__version__}, Keras {keras.__version__}, {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs, float32; {args.windows} alternated windows per variant of "
        f"{args.steps or 'the regime default number of'} steps; median images/s; ratio: median of paired "
        "windows"
    )
    print(table(rows))
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak host memory of this process (every variant built): {peak_mib:,.0f} MiB")


if __name__ == "__main__":
    main()
