"""Progressive resizing (config.resize_schedule): the side each step trains at is the plan's, keyed to the
global step, across a resume that lands mid-stage and on 2 replicas; evaluation at the full size; a model
that takes one size only is refused."""

import dataclasses

import numpy as np
import pytest
import tensorflow as tf
import tiny

from configs.base import Config, ConfigError
from configs.validation import validate
from training import trainer
from training.plan import derive_plan

# 10 steps an epoch (batch 1000 of the quick-start set's 10,000), 3 epochs: 16 px for epoch 0, 24 for 1 and 2
CONFIG = Config(
    **tiny.AIRBENCH | dict(model="probe_models:side_recorder", batch_size=1000, lr_reference_batch=1000, epochs=3),
    resize_schedule=(16, 24),
    log_every_steps=5,
    checkpoint_every_steps=100,
)


def recorded_sides(workdir):
    """The sides the model's recorder saw, step by step, from the run's last checkpoint."""
    reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(str(workdir / "checkpoints")))
    names = [name for name in reader.get_variable_to_shape_map() if name.startswith("model/")]
    sides, count = (reader.get_tensor(next(n for n in names if f"/{what}/" in n)) for what in ("sides", "count"))
    return sides[: int(count)].tolist()


def test_the_plan_stages_follow_the_epochs():
    plan = derive_plan(CONFIG, 10_000, 1, "memory")
    assert plan.resize_stages == ((0, 16), (10, 24))
    assert [plan.image_side(step) for step in (0, 9, 10, 29, 500)] == [16, 16, 24, 24, 24]
    assert [plan.next_resize(step) for step in (0, 9, 10)] == [10, 10, None]


@pytest.mark.slow
@pytest.mark.parametrize("replicas", [1, 2])
def test_each_step_trains_at_the_planned_side_across_a_resume(tmp_path, replicas, two_replicas):
    strategy = two_replicas if replicas == 2 else None
    whole = trainer.train_and_evaluate(CONFIG, str(tmp_path / "whole"), strategy=strategy)
    trainer.train_and_evaluate(dataclasses.replace(CONFIG, stop_at_step=15), str(tmp_path / "split"), strategy)
    resumed = trainer.train_and_evaluate(CONFIG, str(tmp_path / "split"), strategy=strategy)  # mid-stage: at 15
    planned = [16] * 10 + [24] * 20
    assert recorded_sides(tmp_path / "whole") == recorded_sides(tmp_path / "split") == planned
    assert whole["steps"] == resumed["steps"] == 30
    assert [h["loss"] for h in resumed["history"]] == pytest.approx([h["loss"] for h in whole["history"]], rel=1e-5)
    assert np.isfinite(whole["eval_accuracy"])  # evaluated on the 32 px images as loaded


def test_a_model_of_one_size_is_refused():
    with pytest.raises(ConfigError, match=r"model=resnet50 takes images of one size .* any_input_size"):
        validate(Config(model="resnet50", width=1.0, resize_schedule=(24, 32)))
    with pytest.raises(ConfigError, match=r"resize_schedule holds a side in pixels per epoch, each >= 1"):
        validate(Config(model="airbench", resize_schedule=(0,)))
