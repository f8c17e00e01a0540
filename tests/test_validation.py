"""configs.validation: every refused value is refused with its flag named, and the names it accepts are exactly
the ones the components build."""

import dataclasses

import pytest
import tiny

import models
from configs.base import Augmentation, Config, ConfigError, LRFind, LRTune, Trial
from configs.validation import CHOICES, LR_RULES, validate
from training import trainer

REFUSED = [  # (overrides of the default config, what the message says)
    ({"optimizer": "lamb"}, "--config.optimizer='lamb' is not one of"),
    ({"model": "vgg"}, "--config.model='vgg' is not one of"),
    ({"anneal_strategy": "cosine"}, "--config.anneal_strategy='cosine'"),
    ({"batch_size": 0}, "--config.batch_size must be positive"),
    ({"batch_size": 64.0}, "--config.batch_size=64.0 is not of type int"),
    ({"image_size": (64,)}, "--config.image_size=(64,) is not of type tuple[int, int] | None: give height,width"),
    ({"image_size": (0, 32)}, "--config.image_size must be positive"),
    ({"image_size": (64, 64)}, "--config.image_size=64,64: the quickstart set is generated at 32x32"),
    ({"deterministic": True, "jit_compile": True}, "XLA refuses to compile MaxPool's gradient"),
    ({"dataset": "quickstart_hard", "image_size": (28, 28)}, "the quickstart_hard set is generated at 32x32"),
    ({"lr": float("inf")}, "--config.lr=inf is not a finite number"),
    ({"lr": float("nan")}, "--config.lr=nan is not a finite number"),
    ({"width": 0.0}, "--config.width must be positive"),
    ({"seed": -1}, "--config.seed must be in [0, 4294967295], got -1"),
    ({"seed": 2**32}, "--config.seed must be in [0, 4294967295], got 4294967296"),
    ({"stop_at_step": -5}, "--config.stop_at_step is a step >= 1"),
    ({"stop_at_step": 0}, "--config.stop_at_step is a step >= 1"),
    ({"pct_start": 1.5}, "--config.pct_start must be a fraction in (0, 1)"),
    ({"pct_start": 0.6, "three_phase": True}, "--config.three_phase needs --config.pct_start <= 0.5"),
    ({"base_momentum": 0.99}, "--config.base_momentum <= --config.max_momentum"),
    ({"step_milestones": (0.75, 0.5)}, "--config.step_milestones must be increasing"),
    ({"label_smoothing": 1.0}, "--config.label_smoothing must be in [0, 1)"),
    ({"weight_decay": -1e-4}, "--config.weight_decay must be >= 0"),
    ({"optimizer": "adamw", "weight_decay": 0.0}, "use --config.optimizer=adam, or a weight decay > 0"),
    ({"model": "resnet50", "width": 0.5}, "--config.model=resnet50 has a fixed width"),
    ({"model": "resnet50", "sync_batch_norm": True, "jit_compile": False}, "cannot synchronize its BatchNorm"),
    ({"model": "airbench94", "input_path": "disk"}, "is initialised from training images in memory"),
    ({"data_on_device": True, "input_path": "disk"}, "--config.data_on_device holds the training set"),
    ({"sync_batch_norm": True, "jit_compile": True}, "set --config.jit_compile=False with it"),
    ({"stop_at_target": True}, "--config.stop_at_target needs --config.target_accuracy"),
    ({"holdout": -0.1}, "--config.holdout is a fraction of the training set in (0, 1) or a whole count"),
    ({"holdout": 2.5}, "--config.holdout is a fraction of the training set in (0, 1) or a whole count"),
    ({"lr_find": LRFind(rule="middle")}, "--config.lr_find.rule='middle' is not one of"),
    ({"lr_tune": LRTune(candidates=1)}, "--config.lr_tune.candidates must be >= 2"),
    ({"lr_tune": LRTune(holdout=0.0)}, "--config.lr_tune.holdout is a fraction"),
    ({"holdout": 0.1, "eval_split": "test"}, "--config.eval_split='test' would not be read"),
    ({"target_accuracy": 94.0}, "--config.target_accuracy is a fraction in (0, 1]"),
    ({"ema_momentum": 1.0}, "--config.ema_momentum must be in [0, 1)"),
    ({"eval_every_epochs": -1.0}, "--config.eval_every_epochs must be >= 0"),
    ({"augmentation": Augmentation(cutout=-1)}, "--config.augmentation's crop_padding and cutout must be >= 0"),
    ({"lr_find": LRFind(start_lr=1.0, end_lr=0.1)}, "--config.lr_find needs 0 < start_lr < end_lr"),
    ({"lr_find": LRFind(num_steps=5)}, "--config.lr_find.num_steps must be >= 10"),
    ({"trial": Trial(runs=0)}, "--config.trial.runs must be >= 1"),
    ({"trial": Trial(threshold=1.5)}, "--config.trial.threshold is a fraction in (0, 1]"),
    ({"strategy": "multi_worker"}, "--config.strategy=multi_worker needs TF_CONFIG"),
]


@pytest.mark.parametrize("overrides, message", REFUSED, ids=[str(o) for o, _ in REFUSED])
def test_a_value_that_cannot_work_is_refused_with_its_flag(overrides, message):
    with pytest.raises(ConfigError) as refused:
        validate(dataclasses.replace(Config(), **overrides), environ={})
    assert message in str(refused.value) and "\n" not in str(refused.value)


@pytest.mark.parametrize(
    "tf_config, message",
    [
        ("{not json", "TF_CONFIG is not a cluster description (JSONDecodeError"),
        ('{"task": {"type": "worker", "index": 0}}', "TF_CONFIG is not a cluster description (KeyError"),
        ('{"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 2}}', "task index 2 is outside"),
        ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "chief", "index": 0}}', "KeyError: 'chief'"),
    ],
)
def test_a_cluster_description_that_cannot_start_is_refused(tf_config, message):
    with pytest.raises(ConfigError, match="TF_CONFIG") as refused:
        validate(Config(), environ={"TF_CONFIG": tf_config})
    assert message in str(refused.value)


def test_what_works_passes():
    validate(Config(), environ={})
    cluster = '{"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 1}}'
    validate(Config(strategy="multi_worker"), environ={"TF_CONFIG": cluster})
    validate(Config(strategy="multi_worker"), environ={"SLURM_STEP_NUM_TASKS": "2"})
    validate(Config(strategy="default"), environ={"TF_CONFIG": "{not json"})  # TF_CONFIG is not read then
    validate(Config(dataset="synthetic", model="resnet50", width=1, image_size=(64, 64), target_accuracy=1), {})


def test_the_choices_are_what_the_components_build():
    from onecycle.lr_range import RULES
    from onecycle.schedule import ANNEAL_STRATEGIES
    from training import strategy

    assert LR_RULES == RULES
    assert set(CHOICES["anneal_strategy"]) == set(ANNEAL_STRATEGIES)
    assert CHOICES["strategy"] == strategy.STRATEGIES
    assert set(models.MODELS) >= {"resnet9", "airbench", "airbench94", "resnet50"}


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("optimizer", "lamb", "--config.optimizer='lamb' is not one of"),
        ("precision", "fp16", "--config.precision"),
        ("model", "vgg", "--config.model='vgg'"),
        ("batch_size", 0, "--config.batch_size must be positive"),
        ("lr", -1.0, "--config.lr must be positive"),
        ("pct_start", 1.5, "pct_start"),
        ("sync_batch_norm", True, "set --config.jit_compile=False with it"),
    ],
)
def test_bad_config_fails_before_any_work(tmp_path, field, value, message):
    workdir = tmp_path / "run"
    with pytest.raises(ConfigError, match=message):
        config = Config(**tiny.RESNET9 | {field: value, "jit_compile": True})
        trainer.train_and_evaluate(config, str(workdir))
    assert not workdir.exists()
