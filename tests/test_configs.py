"""configs/*.py: every recipe loads, takes overrides and validates; the race recipe whole resumes exactly."""

import dataclasses
import glob
import os
from pathlib import Path

import numpy as np
import pytest
import tiny

import train
from configs.base import Augmentation, Config
from configs.validation import validate
from training import trainer

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = tiny.RESNET9 | dict(steps_per_loop=4, log_every_steps=4, checkpoint_every_steps=8)


RECIPES = sorted(
    path for path in glob.glob(os.path.join(REPO, "configs", "*.py")) if "def get_config" in Path(path).read_text()
)


@pytest.mark.parametrize("path", RECIPES)
def test_every_config_file_loads_and_overrides(path):
    values, invocation, _ = train.parse(
        [
            "train.py",
            f"--config={path}",
            "--config.batch_size=1024",
            "--config.augmentation.cutout=0",
            "--config.image_size=32,32",  # every dataset takes 32x32, the quick-start sets only it
        ]
    )
    config = values.config
    assert invocation.config_file == path
    assert [f.name for f in dataclasses.fields(config)] == [f.name for f in dataclasses.fields(Config)]
    assert (config.batch_size, config.augmentation.cutout, config.image_size) == (1024, 0, (32, 32))
    validate(config)


@pytest.mark.parametrize("replicas", [1, 2])
def test_the_whole_race_recipe_resumes_where_it_stopped(tmp_path, replicas, two_replicas):
    """airbench94 with every part of configs/cifar10_airbench.py (PyTorch's SGD, bias lr, frozen whitening bias,
    Lookahead, alternating flip, multi-crop TTA) over a fractional 1.5 epochs: a run stopped mid-way and resumed
    ends where the straight one does, on 1 and 2 replicas."""
    import keras

    strategy = two_replicas if replicas == 2 else None
    config = dataclasses.replace(
        Config(**(TINY | tiny.AIRBENCH)),
        width=0.125,
        model="airbench94",
        batch_size=1000,
        lr_reference_batch=1000,
        epochs=1.5,  # 10 steps an epoch: 15 steps
        optimizer="nesterov",
        momentum_form="pytorch",
        weight_decay=1e-3,
        decay_biases_and_norms=True,
        lr_multipliers=("norm_bias=64",),
        whiten_bias_epochs=0.5,
        lookahead_every_steps=2,
        lookahead_start_epochs=0.3,  # begins at step 4; copied in at 10 (an epoch's end) and 15
        augmentation=Augmentation(crop_padding=2, flip=True, alternate_flip=True, cutout=0),
        data_on_device=True,
        eval_flip=True,
        eval_translate=True,
        log_every_steps=1,
        checkpoint_every_steps=100,
    )
    whole = trainer.train_and_evaluate(config, str(tmp_path / "whole"), strategy=strategy)
    trainer.train_and_evaluate(dataclasses.replace(config, stop_at_step=7), str(tmp_path / "split"), strategy)
    resumed = trainer.train_and_evaluate(config, str(tmp_path / "split"), strategy=strategy)
    assert whole["steps"] == resumed["steps"] == 15 and whole["status"] == "completed"
    for a, b in zip(resumed["history"], whole["history"]):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-4)
    assert resumed["eval_accuracy"] == pytest.approx(whole["eval_accuracy"], abs=1e-3)
    exported = [keras.models.load_model(tmp_path / run / "model.keras") for run in ("whole", "split")]
    for a, b in zip(exported[0].weights, exported[1].weights):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-3, atol=1e-5)
