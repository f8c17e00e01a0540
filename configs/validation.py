"""One validation step: every field's type, shape and range, and every combination known to fail, checked before
anything is loaded or written. Pure Python (no TensorFlow), so a bad value is answered in well under a second.

`validate(config)` raises `ConfigError` with a one-line message that names the flag and a value that works.
What can only be known later (the batch against the number of replicas and of training examples; the dataset's
own files) is checked as soon as it is known, still before the workdir holds anything of the run.
"""

import dataclasses
import json
import math
import os
import re
import types
import typing

import models
from configs import registry
from configs.base import ConfigError, with_overrides

# The values of the fields that are not extension points (those are configs/registry.py's tables).
CHOICES = {
    "precision": ("float32", "mixed_float16", "mixed_bfloat16"),
    "strategy": ("auto", "default", "mirrored", "multi_worker", "tpu"),
    "anneal_strategy": ("linear", "cos"),
    "input_path": ("auto", "memory", "disk"),
    "momentum_form": ("keras", "pytorch"),
    "eval_tta_at": ("every", "end"),
}
VARIABLE_KINDS = ("norm_bias", "norm_scale", "bias", "kernel", "filter")  # training.optimization.variable_kinds
POSITIVE = (
    "batch_size",
    "epochs",
    "lr",
    "lr_reference_batch",
    "width",
    "log_every_steps",
    "checkpoint_every_steps",
    "steps_per_loop",
    "max_call_seconds",
    "max_in_memory_gib",
    "div_factor",
    "final_div_factor",
    "slurm_port_base",
    "cluster_wait_seconds",
)
SEED_RANGE = (0, 2**32 - 1)  # what NumPy's and Keras's seeding accept
LR_RULES = ("onecycle", "valley", "minimum_over_10", "steepest")  # onecycle.lr_range.RULES, without TensorFlow


def validate(config, environ=None):
    """Raises `ConfigError` for the first value of `config` (a `configs.base.Config`) that cannot work.

    `environ` (default `os.environ`) is where a multi-worker cluster is described (`TF_CONFIG`, SLURM).
    """
    environ = os.environ if environ is None else environ
    _check_types(config)
    _check_choices(config)
    _check_ranges(config)
    _check_schedule(config)
    _check_model(config)
    _check_combinations(config)
    _check_cluster(config, environ)
    _check_lr_find(config.lr_find)
    _check_lr_tune(config.lr_tune)
    _check_trial(config.trial)


def _fail(message):
    raise ConfigError(message)


def _check_types(config, prefix=""):
    """Each field's value is of its annotated type (a tuple of the annotated length, for image_size)."""
    hints = typing.get_type_hints(type(config))
    for field in dataclasses.fields(config):
        value, annotation = getattr(config, field.name), hints[field.name]
        if dataclasses.is_dataclass(value):
            _check_types(value, f"{prefix}{field.name}.")
        elif not _is_of(value, annotation):
            _fail(
                f"--config.{prefix}{field.name}={value!r} is not of type {_type_name(annotation)}"
                + (": give height,width, e.g. --config.image_size=64,64" if field.name == "image_size" else "")
            )


def _is_of(value, annotation):
    origin, arguments = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (types.UnionType, typing.Union):
        return any(_is_of(value, argument) for argument in arguments)
    if annotation is type(None):
        return value is None
    if annotation is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if origin is tuple:
        if not isinstance(value, tuple):
            return False
        if len(arguments) == 2 and arguments[1] is Ellipsis:
            return all(_is_of(item, arguments[0]) for item in value)
        return len(value) == len(arguments) and all(_is_of(v, a) for v, a in zip(value, arguments))
    return isinstance(value, annotation)


def _type_name(annotation):
    return getattr(annotation, "__name__", None) or str(annotation).replace("typing.", "")


def _check_choices(config):
    for field, allowed in CHOICES.items():
        if getattr(config, field) not in allowed:
            _fail(f"--config.{field}={getattr(config, field)!r} is not one of {allowed}")
    for field in ("model", "optimizer", "schedule"):
        registry.check_name(field, getattr(config, field))
    registry.check_name("dataset", config.dataset, tfds_fallback=True)
    for name in config.augmentation.extra:
        registry.check_name("augmentation.extra", name)


def _check_ranges(config):
    for name, value in _numbers(config):
        if isinstance(value, float) and not math.isfinite(value):
            _fail(f"--config.{name}={value} is not a finite number")
    for field in POSITIVE:
        if getattr(config, field) <= 0:
            _fail(f"--config.{field} must be positive, got {getattr(config, field)}")
    low, high = SEED_RANGE
    if not low <= config.seed <= high:
        _fail(f"--config.seed must be in [{low}, {high}], got {config.seed}")
    if config.stop_at_step is not None and config.stop_at_step < 1:
        _fail(f"--config.stop_at_step is a step >= 1 (or None: the whole run), got {config.stop_at_step}")
    if config.eval_every_epochs < 0:
        _fail(f"--config.eval_every_epochs must be >= 0 (0: only at the end), got {config.eval_every_epochs}")
    if config.target_accuracy is not None and not 0 < config.target_accuracy <= 1:
        _fail(f"--config.target_accuracy is a fraction in (0, 1] (0.94 for 94%), got {config.target_accuracy}")
    if not 0 <= config.ema_momentum < 1:
        _fail(f"--config.ema_momentum must be in [0, 1) (0: no EMA; 0.99 is usual), got {config.ema_momentum}")
    if config.lookahead_every_steps < 0 or not 0 <= config.lookahead_decay < 1 or config.lookahead_start_epochs < 0:
        _fail(
            "--config.lookahead_every_steps must be >= 0 (0: off; airbench: 5), --config.lookahead_decay in [0, 1) "
            f"and --config.lookahead_start_epochs >= 0, got {config.lookahead_every_steps}, "
            f"{config.lookahead_decay} and {config.lookahead_start_epochs}"
        )
    if config.lookahead_every_steps and config.ema_momentum:
        _fail(
            "--config.lookahead_every_steps and --config.ema_momentum each keep a moving average of the weights "
            "(Lookahead writes it back into them, Keras's EMA only evaluates it): use one of them"
        )
    if not 0 <= config.muon_momentum < 1 or config.muon_weight_decay < 0:
        _fail(
            f"--config.muon_momentum must be in [0, 1) and --config.muon_weight_decay >= 0, got "
            f"{config.muon_momentum} and {config.muon_weight_decay}"
        )
    if not 0 <= config.label_smoothing < 1:
        _fail(f"--config.label_smoothing must be in [0, 1) (0: none), got {config.label_smoothing}")
    if config.weight_decay < 0:
        _fail(f"--config.weight_decay must be >= 0 (0: none), got {config.weight_decay}")
    if config.image_size is not None and min(config.image_size) < 1:
        _fail(f"--config.image_size must be positive (height,width), got {config.image_size}")
    if config.holdout and not _is_holdout(config.holdout):
        _fail(
            f"--config.holdout is a fraction of the training set in (0, 1) or a whole count of examples "
            f"(0: none), got {config.holdout}"
        )
    if config.eval_translate and not config.eval_flip:
        _fail("--config.eval_translate averages mirror pairs of shifted images (airbench's TTA): set eval_flip=True")
    augmentation = config.augmentation
    if augmentation.alternate_flip and not augmentation.flip:
        _fail("--config.augmentation.alternate_flip chooses how images are flipped: set augmentation.flip=True too")
    if any(size < 1 for size in config.resize_schedule):
        _fail(f"--config.resize_schedule holds a side in pixels per epoch, each >= 1, got {config.resize_schedule}")
    if augmentation.crop_padding < 0 or augmentation.cutout < 0:
        _fail(f"--config.augmentation's crop_padding and cutout must be >= 0 (0: off), got {augmentation}")


def _numbers(config, prefix=""):
    """(name, value) of every number in `config` and its groups."""
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        if dataclasses.is_dataclass(value):
            yield from _numbers(value, f"{prefix}{field.name}.")
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            yield prefix + field.name, value


def _check_schedule(config):
    """The schedule fields' ranges (the schedules check them again when built, with the run's length)."""
    if not 0 < config.pct_start < 1:
        _fail(f"--config.pct_start must be a fraction in (0, 1), got {config.pct_start} (0.3 means 30% of the steps)")
    if config.three_phase and config.pct_start > 0.5:
        _fail(
            f"--config.three_phase needs --config.pct_start <= 0.5 (warm-up and cool-down each take it), got "
            f"{config.pct_start}"
        )
    if not 0 <= config.base_momentum <= config.max_momentum < 1:
        _fail(
            f"momentum needs 0 <= --config.base_momentum <= --config.max_momentum < 1, got "
            f"{config.base_momentum} and {config.max_momentum}"
        )
    milestones = config.step_milestones
    if not (all(0 < m < 1 for m in milestones) and list(milestones) == sorted(set(milestones))):
        _fail(f"--config.step_milestones must be increasing fractions of the run in (0, 1), got {milestones}")
    if not 0 < config.step_factor < 1:
        _fail(f"--config.step_factor must be in (0, 1), got {config.step_factor}")
    if not 0 <= config.warmup_pct < 1:
        _fail(f"--config.warmup_pct must be a fraction in [0, 1), got {config.warmup_pct}")
    if not 0 <= config.final_lr_ratio < 1:
        _fail(f"--config.final_lr_ratio must be in [0, 1), got {config.final_lr_ratio}")
    if config.momentum_form == "pytorch" and config.optimizer not in ("sgd", "nesterov"):
        _fail(
            f"--config.momentum_form=pytorch is SGD's update form, but --config.optimizer={config.optimizer}: use "
            "sgd or nesterov, or momentum_form=keras"
        )
    learning_rate_multipliers(config.lr_multipliers)
    if config.whiten_bias_epochs < 0:
        _fail(f"--config.whiten_bias_epochs must be >= 0 (0: never frozen), got {config.whiten_bias_epochs}")
    if config.optimizer == "adamw" and config.weight_decay == 0:
        _fail(
            "--config.optimizer=adamw is Adam with decoupled weight decay, but --config.weight_decay=0: use "
            "--config.optimizer=adam, or a weight decay > 0"
        )


def learning_rate_multipliers(entries):
    """{kind: factor} of `config.lr_multipliers` ("norm_bias=64" ...); raises ConfigError naming a bad entry."""
    factors = {}
    for entry in entries:
        kind, _, factor = entry.partition("=")
        try:
            value = float(factor)
        except ValueError:
            value = math.nan
        if kind not in VARIABLE_KINDS or not value > 0:
            _fail(
                f"--config.lr_multipliers entry {entry!r} is not kind=factor with a kind of {VARIABLE_KINDS} and "
                'a factor > 0, e.g. --config.lr_multipliers="norm_bias=64"'
            )
        if kind in factors:
            _fail(f"--config.lr_multipliers={entries} names {kind} twice: give each kind one factor")
        factors[kind] = value
    return factors


def _check_model(config):
    if not registry.is_path(config.model):  # the user's own is checked once imported, when the run starts
        check_model_spec(config, models.MODELS[config.model])


def check_model_spec(config, spec):
    """Raises `ConfigError` for a config that the model of `spec` (a `models.ModelSpec`) cannot run."""
    if config.whiten_bias_epochs and spec.whitening_bias is None:
        _fail(
            f"--config.whiten_bias_epochs={config.whiten_bias_epochs:g} freezes a whitening stem's bias, but "
            f"--config.model={config.model} has none: use airbench94, or whiten_bias_epochs=0"
        )
    if config.resize_schedule and not spec.any_input_size:
        _fail(
            f"--config.model={config.model} takes images of one size (no global pool before its head), but "
            f"--config.resize_schedule={config.resize_schedule} trains on several: use a model whose ModelSpec "
            "says any_input_size (airbench, airbench94, airbench_speedrun, resnet9), or resize_schedule=()"
        )
    if not spec.scales_with_width and config.width != 1.0:
        _fail(f"--config.model={config.model} has a fixed width: set --config.width=1.0, got {config.width}")
    if not spec.sync_batch_norm and config.sync_batch_norm:
        _fail(f"--config.model={config.model} cannot synchronize its BatchNorm: set --config.sync_batch_norm=False")
    if spec.needs_images_in_memory and config.input_path == "disk":
        _fail(
            f"--config.model={config.model} is initialised from training images in memory, but "
            "--config.input_path=disk: use --config.input_path=memory (or auto)"
        )


def _check_combinations(config):
    if config.sync_batch_norm and config.jit_compile:
        _fail(
            "--config.sync_batch_norm all-reduces inside the forward pass, which the per-replica XLA compilation "
            "cannot contain: set --config.jit_compile=False with it"
        )
    if config.dataset in ("quickstart", "quickstart_hard") and config.image_size not in (None, (32, 32)):
        _fail(
            f"--config.image_size={config.image_size[0]},{config.image_size[1]}: the {config.dataset} set is "
            "generated at 32x32 and is not resized; leave image_size unset (or use --config.dataset=synthetic, "
            "which is made at any size)"
        )
    if config.deterministic and config.jit_compile:
        _fail(
            "--config.deterministic=True with --config.jit_compile=True: under op determinism XLA refuses to "
            'compile MaxPool\'s gradient, which every model here has; drop one of them (BUILD.md, "Faults")'
        )
    if config.stop_at_target and config.target_accuracy is None:
        _fail("--config.stop_at_target needs --config.target_accuracy (e.g. --config.target_accuracy=0.94)")
    if config.holdout and config.eval_split:
        _fail(
            f"--config.holdout={config.holdout:g} evaluates on examples held out of the training set, so "
            f"--config.eval_split={config.eval_split!r} would not be read: set one of them"
        )
    if config.data_on_device and config.input_path == "disk":
        _fail(
            "--config.data_on_device holds the training set on every device, but --config.input_path=disk: "
            "set one of them otherwise"
        )


def _check_cluster(config, environ):
    """A multi-worker cluster described well enough to start: TF_CONFIG is JSON naming this task in the cluster."""
    text = environ.get("TF_CONFIG")
    if text and config.strategy in ("auto", "multi_worker"):
        try:
            cluster_config = json.loads(text)
            task, cluster = cluster_config.get("task", {}), cluster_config["cluster"]
            members = cluster[task["type"]]
            index = int(task.get("index", 0))
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            _fail(
                f"TF_CONFIG is not a cluster description ({type(error).__name__}: {error}): it must be JSON like "
                '{"cluster": {"worker": ["host1:port", "host2:port"]}, "task": {"type": "worker", "index": 0}}'
            )
        if not 0 <= index < len(members):
            _fail(
                f"TF_CONFIG's task index {index} is outside its {task['type']} list of {len(members)} "
                f"({members}): use an index from 0 to {len(members) - 1}"
            )
    slurm_tasks = int(environ.get("SLURM_STEP_NUM_TASKS", "1") or 1)
    if config.strategy == "multi_worker" and not text and slurm_tasks < 2:
        _fail(
            "--config.strategy=multi_worker needs TF_CONFIG describing the cluster, or several SLURM tasks "
            "(srun): see BUILD.md's Launch section, or use --config.strategy=auto"
        )


def _check_lr_find(settings):
    if not 0 < settings.start_lr < settings.end_lr:
        _fail(f"--config.lr_find needs 0 < start_lr < end_lr, got {settings.start_lr} and {settings.end_lr}")
    if settings.num_steps < 10:
        _fail(f"--config.lr_find.num_steps must be >= 10 for a readable curve, got {settings.num_steps}")
    if settings.divergence <= 1:
        _fail(f"--config.lr_find.divergence is a multiple of the minimum loss, > 1; got {settings.divergence}")
    if not 0 <= settings.beta < 1:
        _fail(f"--config.lr_find.beta must be in [0, 1), got {settings.beta}")
    if settings.rule not in LR_RULES:
        _fail(f"--config.lr_find.rule={settings.rule!r} is not one of {LR_RULES}")


def _is_holdout(value):
    """A part of a training set to hold out: a fraction in (0, 1), or a whole count >= 1."""
    return 0 < value < 1 or (value >= 1 and value == int(value))


def _check_lr_tune(settings):
    if settings.candidates < 2:
        _fail(f"--config.lr_tune.candidates must be >= 2 to choose between, got {settings.candidates}")
    if settings.epochs < 0 or settings.runs < 1:
        _fail(
            f"--config.lr_tune needs epochs >= 0 (0: a quarter of config.epochs) and runs >= 1, got "
            f"{settings.epochs} and {settings.runs}"
        )
    if not _is_holdout(settings.holdout):
        _fail(
            f"--config.lr_tune.holdout is a fraction of the training set in (0, 1) or a whole count of examples, "
            f"got {settings.holdout}"
        )


def arm_configs(config, environ=None):
    """{arm text: the config with that arm's overrides} of a comparison, every arm validated."""
    if len(config.trial.arms) < 2:
        _fail(
            f"a comparison needs at least two config.trial.arms, got {config.trial.arms}; e.g. "
            "--config.trial.arms=\"('schedule=onecycle', 'schedule=warmup_cosine lr=0.2')\""
        )
    arms = {}
    for text in config.trial.arms:
        try:
            arms[text] = with_overrides(config, text)
        except Exception as error:  # absl's and ml_collections' parse errors, reworded with the arm
            raise ConfigError(f"--config.trial.arms: cannot apply {text!r}: {error}") from None
        validate(arms[text], environ)
    if len({arm_folder(text) for text in arms}) < len(arms):
        _fail(f"--config.trial.arms has arms that differ only in spacing or punctuation: {list(arms)}")
    return arms


def arm_folder(text):
    """A folder name for an arm: its overrides with anything but letters, digits, '.', '=' and '-' as '_'."""
    return re.sub(r"[^A-Za-z0-9.=-]+", "_", text).strip("_")


def _check_trial(trial):
    if trial.runs < 1:
        _fail(f"--config.trial.runs must be >= 1, got {trial.runs}")
    if trial.threshold is not None and not 0 < trial.threshold <= 1:
        _fail(f"--config.trial.threshold is a fraction in (0, 1], got {trial.threshold}")
    if trial.price_per_hour < 0:
        _fail(f"--config.trial.price_per_hour must be >= 0, got {trial.price_per_hour}")
