"""1Cycle (super-convergence) for Keras 3 on TensorFlow: step-keyed schedules (1Cycle and the baselines it is
measured against) and momentum-cycling optimizers."""

from onecycle.baselines import Constant, LinearDecay, StepDecay, WarmupCosine
from onecycle.callbacks import LRFinder, OneCycleScheduler
from onecycle.lookahead import Lookahead
from onecycle.lr_range import ExponentialSweep
from onecycle.muon import Muon
from onecycle.optimizers import (
    SGD,
    Adam,
    AdamW,
    LossScaleOptimizer,
    RMSprop,
    ScheduledMomentum,
    exclude_biases_and_norms_from_weight_decay,
)
from onecycle.schedule import OneCycle, StepFunction

__all__ = [
    "Adam",
    "AdamW",
    "Constant",
    "exclude_biases_and_norms_from_weight_decay",
    "ExponentialSweep",
    "LinearDecay",
    "Lookahead",
    "LossScaleOptimizer",
    "LRFinder",
    "Muon",
    "OneCycle",
    "OneCycleScheduler",
    "RMSprop",
    "ScheduledMomentum",
    "SGD",
    "StepDecay",
    "StepFunction",
    "WarmupCosine",
]
