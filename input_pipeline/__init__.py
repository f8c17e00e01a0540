"""Datasets -> per-replica batches: tfds, image folders, the offline quick-start set, synthetic data; held in memory
or, when larger, read from disk by index."""

from input_pipeline.augmentations import Augmentation, augment
from input_pipeline.pipeline import (
    PREFETCH_STEPS,
    epoch_order,
    eval_dataset,
    first_epoch_flips,
    normalise,
    per_replica_batch_size,
    pipeline_augmentation,
    resident_batch,
    steps_examples,
    steps_per_epoch,
    train_dataset,
)
from input_pipeline.records import DiskData
from input_pipeline.sources import INPUT_PATHS, Data, DatasetError, Placement, check_source, load

__all__ = [
    "Augmentation",
    "Data",
    "DatasetError",
    "DiskData",
    "INPUT_PATHS",
    "Placement",
    "augment",
    "epoch_order",
    "check_source",
    "eval_dataset",
    "first_epoch_flips",
    "load",
    "normalise",
    "PREFETCH_STEPS",
    "per_replica_batch_size",
    "pipeline_augmentation",
    "resident_batch",
    "steps_examples",
    "steps_per_epoch",
    "train_dataset",
]
