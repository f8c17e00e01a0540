"""training.plan: the derived numbers by hand, and the one predicate for periodic work."""

import dataclasses

import pytest

from configs.base import Config, ConfigError
from training.plan import derive_plan, epochs_to_steps, itstime, peak_lr, steps_to_next, total_steps_of


def test_the_plan_is_computed_once_from_the_global_batch():
    config = Config(batch_size=512, lr=0.4, lr_reference_batch=256, epochs=24, eval_every_epochs=0.5)
    plan = derive_plan(config, 50_000, 8, "memory")
    assert (plan.steps_per_epoch, plan.total_steps, plan.end_step) == (97, 2328, 2328)  # floor(50000 / 512)
    assert (plan.per_replica_batch, plan.eval_every_steps, plan.max_lr) == (64, 48, 0.8)  # round(48.5): even
    assert plan.lr_rule == "max_lr = 0.4 * batch 512 / 256" and plan.input == "memory"
    assert derive_plan(dataclasses.replace(config, stop_at_step=100), 50_000, 8, "disk").end_step == 100
    assert derive_plan(dataclasses.replace(config, stop_at_step=10**6), 50_000, 8, "disk").end_step == 2328
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.total_steps = 1


def test_fractional_epochs_stop_inside_the_last_epoch():
    # airbench94's 9.9 epochs of CIFAR-10 at batch 1024: floor(9.9 x 48) = floor(475.2) = 475 steps
    plan = derive_plan(Config(batch_size=1024, epochs=9.9, eval_every_epochs=1), 50_000, 1, "memory")
    assert (plan.steps_per_epoch, plan.total_steps, plan.eval_every_steps) == (48, 475, 48)
    assert [total_steps_of(e, 30) for e in (0.1, 0.7, 2.5, 1 / 3, 0.01)] == [3, 21, 75, 10, 1]  # exact, at least 1


def test_a_batch_the_replicas_or_the_data_cannot_take_is_refused():
    with pytest.raises(ConfigError, match=r"batch_size=500 is not divisible by 8 replicas; .* \(e\.g\. 496\)"):
        derive_plan(Config(batch_size=500), 50_000, 8, "memory")
    with pytest.raises(ConfigError, match="batch_size=512 is larger than the 300 training examples: use at most 300"):
        derive_plan(Config(batch_size=512), 300, 1, "memory")


def test_durations_and_the_peak_lr():
    assert [epochs_to_steps(e, 97) for e in (0, 0.001, 0.5, 1, 2.5)] == [0, 1, 48, 97, 242]
    assert peak_lr(Config(lr=0.4, batch_size=1024, lr_reference_batch=512)) == 0.8


def test_itstime_is_every_period_and_everything_from_the_final_step():
    assert [s for s in range(1, 12) if itstime(s, 4)] == [4, 8]
    assert [s for s in range(1, 12) if itstime(s, 4, final_step=10)] == [4, 8, 10, 11]
    assert not any(itstime(s, 0) for s in range(1, 12)) and itstime(5, 0, final_step=5)


def test_a_call_runs_to_the_next_boundary():
    config = Config(log_every_steps=10, checkpoint_every_steps=25, steps_per_loop=100)
    plan = derive_plan(dataclasses.replace(config, eval_every_epochs=1), 1200, 1, "memory")  # 2 steps an epoch
    assert [steps_to_next(s, plan, config) for s in (0, 1)] == [2, 1]
    plan = derive_plan(config, 51200, 1, "memory")  # no periodic evaluation
    assert [steps_to_next(s, plan, config) for s in (0, 7, 20, 24)] == [10, 3, 5, 1]
