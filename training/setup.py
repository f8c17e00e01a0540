"""One run's setup, shared by training, the LR range test and trials: checks, strategy, data, plan, model and
optimizer, in the order of DESIGN.md's data flow.

    prepared = setup.start(config)               # before the workdir is touched: every check, the strategy
    run = setup.build(config, prepared)          # data, plan, and in the strategy's scope the model (initialised
                                                 # from data if its spec says so) and the optimizer with its schedule
"""

import dataclasses
from typing import NamedTuple

import keras
import numpy as np
import tensorflow as tf
from absl import logging

import input_pipeline
import models
import onecycle
from configs import registry
from configs.base import ConfigError
from configs.validation import check_model_spec, validate
from input_pipeline.resident import ResidentTrainingSet
from training import compile_cache
from training import strategy as strategy_lib
from training.optimization import create_optimizer, create_schedule
from training.plan import Plan, derive_plan


class Prepared(NamedTuple):
    """What `start` found: the strategy, where the data will be held, and the model's spec."""

    strategy: object
    placement: object  # input_pipeline.Placement
    spec: models.ModelSpec


@dataclasses.dataclass(frozen=True)
class Run:
    """What every mode trains with: the config, its strategy, dataset, plan, model and optimizer."""

    config: object
    strategy: object
    data: object  # input_pipeline.Data (in memory) or input_pipeline.DiskData (read from disk)
    plan: Plan
    model: object
    optimizer: object
    lookahead: object = None  # onecycle.Lookahead, with config.lookahead_every_steps


def start(config, strategy=None):
    """Every check that needs no data, then the strategy: a `Prepared`.

    The user's own code the config names (`module:attribute`) is imported here, once the rest of the config is
    valid. Raises `ConfigError` or `input_pipeline.DatasetError` before any file is read whole or written.
    """
    validate(config)
    spec = resolve_extensions(config)
    strategy_lib.prepare_devices(config.devices)  # before anything starts TensorFlow's runtime
    placement = input_pipeline.check_source(config)
    if not placement.in_memory:
        if config.data_on_device:
            raise ConfigError(
                f"--config.data_on_device holds the training set on every device, but {config.dataset} is read "
                f"from disk ({placement.reason}): set --config.data_on_device=False, or --config.input_path=memory "
                "if it fits"
            )
        if spec.needs_images_in_memory:
            raise ConfigError(
                f"--config.model={config.model} sets its whitening stem from training images in memory, but "
                f"{config.dataset} is read from disk: use --config.input_path=memory"
            )
    compile_cache.prepare(config)
    return Prepared(strategy or strategy_lib.from_config(config), placement, spec)


def resolve_extensions(config):
    """Imports what the config names at each extension point (configs/registry.py), so that a wrong path fails
    now, and checks the config against the model's spec; returns the spec."""
    for field in ("optimizer", "schedule"):
        registry.resolve(field, getattr(config, field))
    for name in config.augmentation.extra:
        registry.resolve("augmentation.extra", name)
    try:
        spec = models.ModelSpec.of(registry.resolve("model", config.model))
    except TypeError as error:
        raise ConfigError(f"--config.model={config.model}: {error}") from None
    check_model_spec(config, spec)
    return spec


def build(config, prepared, schedule=None, momentum=None):
    """The `Run` of `config` (with `prepared`, from `start`): loads the data, derives the plan, and builds the
    model and optimizer in the strategy's scope.

    `schedule` and `momentum` replace the config's (the LR range test sweeps the rate at a held momentum).
    """
    strategy = prepared.strategy
    keras.mixed_precision.set_global_policy(config.precision)
    keras.utils.set_random_seed(config.seed)
    data = load_data(config, prepared.placement)
    plan = derive_plan(
        config,
        data.num_train,
        strategy.num_replicas_in_sync,
        "memory" if data.in_memory else "disk",
        jit_compile=strategy_lib.resolve_jit_compile(config, strategy),
        deterministic=strategy_lib.resolve_deterministic(config, strategy),
    )
    too_large = [side for _, side in plan.resize_stages if side > min(data.image_shape[:2])]
    if too_large:
        raise ConfigError(
            f"--config.resize_schedule={config.resize_schedule}: {too_large} exceed the training images' "
            f"{data.image_shape[0]}x{data.image_shape[1]}: progressive resizing downsamples; use sides up to theirs"
        )
    if plan.deterministic:  # before the model is built: it chooses the kernels (process-wide)
        tf.config.experimental.enable_op_determinism()
    if config.xla_cache and compile_cache.enabled_directory():
        logging.info("XLA's compiled programs are kept in %s (config.xla_cache)", compile_cache.enabled_directory())
        if not plan.jit_compile:
            logging.warning("config.xla_cache keeps XLA's programs, but jit_compile is off: there are none to keep")
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
        schedule = schedule or create_schedule(config, plan.max_lr, plan.total_steps, plan.steps_per_epoch)
    except ValueError as error:
        raise ConfigError(f"config schedule fields: {error}") from None
    spec = prepared.spec
    with strategy.scope():
        model = spec.create(data.image_shape, data.num_classes, config.sync_batch_norm, config.width)
        optimizer = create_optimizer(
            config, model, schedule, momentum, plan.whiten_bias_freeze_step, spec, plan.total_steps
        )
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
    key = _data_key(config)
    if key not in _LOADED:
        _LOADED.clear()  # one dataset at a time: a comparison of datasets holds one in memory, not all
        _LOADED[key] = input_pipeline.load(config, placement)
    return _LOADED[key]


DATA_FIELDS = (  # the fields a built-in dataset's examples depend on
    "dataset",
    "data_dir",
    "download",
    "image_size",
    "batch_size",  # synthetic data: 8 global batches
    "skip_bad_images",
    "input_path",
    "max_in_memory_gib",
    "eval_split",
    "holdout",
)


def _data_key(config):
    """What the dataset of `config` is loaded from, to know it again; a dataset function that names a field of
    its own (one not in DATA_FIELDS) is keyed by that field's value too."""
    fields = list(DATA_FIELDS)
    if registry.is_path(config.dataset):
        fields += registry.parameters(registry.resolve("dataset", config.dataset))[0]
    return tuple(str(getattr(config, name, None)) for name in fields)


def training_input(config, strategy, data, batches_consumed):
    """(the resident training set or None, what the training loop reads): with `config.data_on_device`, the
    variable `batches_consumed` (the global step of each call's first batch), else an iterator over the
    distributed dataset from the data position `batches_consumed` holds (a restored one, on a resume)."""
    if config.data_on_device:
        return ResidentTrainingSet(strategy, data, config), batches_consumed
    dataset = input_pipeline.train_dataset(strategy, data, config, int(batches_consumed.numpy()))
    return None, iter(dataset)
