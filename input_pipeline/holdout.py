"""A held-out split carved from the training set, for tuning (the learning rate, a recipe) without the test split.

`--config.holdout=0.1` (a fraction) or `=5000` (a count) takes that many training examples out of training and
evaluates on them instead of the test split, which is then not read at all. Which examples: the first of a
permutation of the training indices drawn from the fixed `HOLDOUT_SEED`, so a function of the training set's size
alone: the same examples for every seed, replica count, worker count, input path and resume, and so for every
run of a trial or of `--mode=lr_tune`. The rest keep their order and become the training set the pipeline
permutes each epoch, so its guarantees (each example once an epoch, exact resume at any step) hold as before.
The normalisation statistics stay those of the whole training set: they are pixel statistics, not labels.
"""

import dataclasses

import numpy as np

from input_pipeline import records
from input_pipeline.errors import DatasetError

HOLDOUT_SEED = 1234  # fixed: the held-out examples must not change with the run's seed


def holdout_count(num_train, holdout):
    """How many of `num_train` examples `holdout` asks for: a fraction in (0, 1), or a count >= 1."""
    count = round(holdout * num_train) if holdout < 1 else int(holdout)
    if not 0 < count < num_train:
        raise DatasetError(
            f"--config.holdout={holdout:g} holds out {count} of the {num_train} training examples: it must leave "
            f"at least one on each side (a fraction like 0.1, or a count below {num_train})"
        )
    return count


def held_out_indices(num_train, holdout):
    """(held-out indices, remaining indices) of a training set of `num_train` examples, each sorted, int64."""
    count = holdout_count(num_train, holdout)
    permutation = np.random.default_rng(HOLDOUT_SEED).permutation(num_train)
    return np.sort(permutation[:count]), np.sort(permutation[count:])


def carve(data, holdout):
    """`data` (a `Data` in memory or a `DiskData`) with the held-out examples as its evaluation split and the rest as
    its training split. Its former evaluation split, if it had one, is dropped."""
    held, kept = held_out_indices(data.num_train, holdout)
    if data.in_memory:
        return dataclasses.replace(
            data,
            train_images=data.train_images[kept],
            train_labels=data.train_labels[kept],
            eval_images=data.train_images[held],
            eval_labels=data.train_labels[held],
            eval_split="holdout",
        )
    return dataclasses.replace(
        data,
        train=records.subset(data.train, kept, "training"),
        eval=records.subset(data.train, held, "held out"),
        eval_split="holdout",
    )
