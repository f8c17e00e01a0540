"""training.optimization: the config's optimizer, its per-kind learning rates and its frozen whitening bias."""

import dataclasses

import pytest

import models
from configs.base import Config, ConfigError
from configs.validation import validate
from training.optimization import create_optimizer, create_schedule, variable_kinds


def airbench94():
    return models.create_model("airbench94", (32, 32, 3), 10, width=0.25)


def test_variable_kinds_of_airbench94():
    model = airbench94()
    kinds = {kind: [v.path for v in variables] for kind, variables in variable_kinds(model).items()}
    assert len(kinds["norm_bias"]) == 6 and all(path.endswith("/beta") for path in kinds["norm_bias"])
    assert kinds["norm_scale"] == []  # airbench's BatchNorm has no scale
    assert kinds["bias"] == ["whiten_bias/bias"]  # its stem's bias is a plain bias (the kernel is frozen)
    assert len(kinds["filter"]) == 6 and all(len(v.shape) == 4 for v in variable_kinds(model)["filter"])  # 3x3 convs
    assert len(kinds["kernel"]) == 1  # the head's


def test_the_config_sets_each_kinds_factor_and_the_freeze_step():
    model = airbench94()
    config = Config(model="airbench94", lr_multipliers=("norm_bias=64", "kernel=0.5"), whiten_bias_epochs=3)
    optimizer = create_optimizer(config, model, create_schedule(config, 0.1, 100), whiten_bias_freeze_step=30)
    factors = {v.path: optimizer.learning_rate_factor(v) for v in model.trainable_variables}
    assert {factors[v.path] for v in variable_kinds(model)["norm_bias"]} == {64.0}
    assert {factors[v.path] for v in variable_kinds(model)["kernel"]} == {0.5}
    assert factors["whiten_bias/bias"] == 1.0
    assert list(optimizer._freeze_steps.values()) == [30]


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"lr_multipliers": ("norm_bias",)}, "is not kind=factor"),
        ({"lr_multipliers": ("beta=64",)}, "is not kind=factor"),
        ({"lr_multipliers": ("bias=2", "bias=3")}, "names bias twice"),
        ({"lr_multipliers": ("bias=-1",)}, "a factor > 0"),
        ({"whiten_bias_epochs": 3.0, "model": "resnet9"}, "has none: use airbench94"),
        ({"momentum_form": "pytorch", "optimizer": "adam"}, "is SGD's update form"),
        ({"lookahead_every_steps": 5, "ema_momentum": 0.9}, "use one of them"),
    ],
)
def test_bad_optimizer_settings_are_refused_by_name(overrides, message):
    with pytest.raises(ConfigError, match=message):
        validate(dataclasses.replace(Config(), **overrides))
