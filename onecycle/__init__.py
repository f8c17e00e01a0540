"""1Cycle (super-convergence) for Keras 3 on TensorFlow: step-keyed schedules and momentum-cycling optimizers."""

from onecycle.optimizers import (
    SGD,
    Adam,
    AdamW,
    LossScaleOptimizer,
    RMSprop,
    exclude_biases_and_norms_from_weight_decay,
)
from onecycle.schedule import OneCycle

__all__ = [
    "SGD",
    "Adam",
    "AdamW",
    "LossScaleOptimizer",
    "OneCycle",
    "RMSprop",
    "exclude_biases_and_norms_from_weight_decay",
]
