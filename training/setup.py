"""One run's setup, shared by training, the LR range test and trials: checks, strategy, data, plan, model and
optimizer, in the order of DESIGN.md's data flow.

    config, strategy, placement = setup.start(config)      # before the workdir is touched
    run = setup.build(config, strategy, placement)         # data, plan, and in the strategy's scope the model
                                                           # (initialised from data if its spec says so) and
                                                           # the optimizer with its schedule
"""

import dataclasses

import keras
import numpy as np
import tensorflow as tf
from absl import logging

import input_pipeline
import models
import onecycle
from configs.base import ConfigError
from configs.validation import validate
from input_pipeline.resident import ResidentTrainingSet
from training import compile_cache
from training import strategy as strategy_lib
from training.optimization import create_optimizer, create_schedule
from training.plan import Plan, derive_plan


@dataclasses.dataclass(frozen=True)
class Run:
    """What every mode trains with: the config (XLA resolved), its strategy, dataset, plan, model and optimizer."""

    config: object
    strategy: object
    data: object  # input_pipeline.Data (in memory) or input_pipeline.DiskData (read from disk)
    plan: Plan
    model: object
    optimizer: object
    lookahead: object = None  # onecycle.Lookahead, with config.lookahead_every_steps


RESOLVED_FIELDS = ("jit_compile", "deterministic")  # auto (None) in a config, resolved by `start` for the strategy


def start(config, strategy=None):
    """(config with `RESOLVED_FIELDS` resolved, strategy, the data's placement): every check that needs no data.

    Raises `ConfigError` or `input_pipeline.DatasetError` before any file is read whole or written.
    """
    validate(config)
    placement = input_pipeline.check_source(
        config.dataset,
        config.data_dir,
        config.download,
        config.image_size,
        config.input_path,
        config.max_in_memory_gib,
        config.eval_split,
        config.holdout,
    )
    if not placement.in_memory:
        if config.data_on_device:
            raise ConfigError(
                f"--config.data_on_device holds the training set on every device, but {config.dataset} is read "
                f"from disk ({placement.reason}): set --config.data_on_device=False, or --config.input_path=memory "
                "if it fits"
            )
        if models.MODELS[config.model].needs_images_in_memory:
            raise ConfigError(
                f"--config.model={config.model} sets its whitening stem from training images in memory, but "
                f"{config.dataset} is read from disk: use --config.input_path=memory"
            )
    compile_cache.prepare(config)
    strategy = strategy or strategy_lib.from_config(config)
    config = dataclasses.replace(
        config,
        jit_compile=strategy_lib.resolve_jit_compile(config, strategy),
        deterministic=strategy_lib.resolve_deterministic(config, strategy),
    )
    if config.deterministic:  # before anything is built: it chooses the kernels
        tf.config.experimental.enable_op_determinism()
    if config.xla_cache:
        logging.info("XLA's compiled programs are kept in %s (config.xla_cache)", compile_cache.enabled_directory())
        if not config.jit_compile:
            logging.warning("config.xla_cache keeps XLA's programs, but jit_compile is off: there are none to keep")
    return config, strategy, placement


def build(config, strategy, placement, schedule=None, momentum=None):
    """The `Run` of `config`: loads the data, derives the plan, and builds the model and optimizer in scope.

    `schedule` and `momentum` replace the config's (the LR range test sweeps the rate at a held momentum).
    """
    keras.mixed_precision.set_global_policy(config.precision)
    keras.utils.set_random_seed(config.seed)
    data = load_data(config, placement)
    replicas = strategy.num_replicas_in_sync
    plan = derive_plan(config, data.num_train, replicas, "memory" if data.in_memory else "disk")
    logging.info(
        "dataset %s: %d train / %d eval examples (%s) of %s%s",
        data.name,
        data.num_train,
        data.num_eval,
        data.eval_split,
        data.image_shape,
        " (SYNTHETIC)" if data.synthetic else "",
    )
    try:  # the schedule's own checks, now that the run's length is known
        schedule = schedule or create_schedule(config, plan.max_lr, plan.total_steps)
    except ValueError as error:
        raise ConfigError(f"config schedule fields: {error}") from None
    spec = models.MODELS[config.model]
    with strategy.scope():
        model = spec.build(
            data.image_shape, data.num_classes, sync_batch_norm=config.sync_batch_norm, width=config.width
        )
        optimizer = create_optimizer(config, model, schedule, momentum, plan.whiten_bias_freeze_step)
        optimizer.build(model.trainable_variables)
        if spec.init_from_images:
            images = input_pipeline.normalise(data.train_images[initialisation_sample(data.num_train)], data)
            spec.init_from_images(model, images.numpy())
            logging.info("%s initialised from %d training images", config.model, len(images))
        lookahead = None
        if config.lookahead_every_steps:
            lookahead = onecycle.Lookahead(
                model.weights,
                plan.total_steps,
                config.lookahead_every_steps,
                config.lookahead_decay,
                start_step=plan.lookahead_start_step,
                copy_every=plan.steps_per_epoch,
            )
    return Run(config, strategy, data, plan, model, optimizer, lookahead)


_LOADED = {}  # the last dataset this process loaded, by what it was loaded from


def initialisation_sample(num_train, count=models.WHITENING_IMAGES, seed=1234):
    """The sorted indices of the training images a model is initialised from: a fixed random sample, the same for
    every run and seed (airbench94 takes the first 5,000 of CIFAR-10's mixed order; an image folder's first ones
    are all of one class)."""
    return np.sort(np.random.default_rng(seed).permutation(num_train)[: min(count, num_train)])


def load_data(config, placement=None):
    """The config's dataset, in memory or read from disk, as `placement` (from `start`) says. The last one loaded is
    kept: a trial's seeds, a comparison's arms and lr_tune's candidates over one dataset load it once."""
    key = (
        config.dataset,
        config.data_dir,
        config.image_size,
        config.batch_size * 8,
        config.skip_bad_images,
        config.input_path,
        config.max_in_memory_gib,
        config.eval_split,
        config.holdout,
    )
    if key not in _LOADED:
        _LOADED.clear()  # one dataset at a time: a comparison of datasets holds one in memory, not all
        _LOADED[key] = _load_data(config, placement)
    return _LOADED[key]


def _load_data(config, placement):
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
        holdout=config.holdout,
    )


def training_input(config, strategy, data, batches_consumed):
    """(the resident training set or None, what the training loop reads): with `config.data_on_device`, the
    variable `batches_consumed` (the global step of each call's first batch), else an iterator over the
    distributed dataset from the data position `batches_consumed` holds (a restored one, on a resume)."""
    augmentation = input_augmentation(config)
    alternate = config.augmentation.flip and config.augmentation.alternate_flip
    if config.data_on_device:
        resident = ResidentTrainingSet(strategy, data, config.batch_size, config.seed, augmentation, alternate)
        return resident, batches_consumed
    start = int(batches_consumed.numpy())
    dataset = input_pipeline.train_dataset(
        strategy, data, config.batch_size, config.seed, start, augmentation=augmentation, alternate_flip=alternate
    )
    return None, iter(dataset)


def input_augmentation(config):
    """The augmentation the input pipeline applies: none when the training step augments on the accelerator."""
    return None if config.augment_on_device else config.augmentation
