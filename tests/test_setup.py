"""training.setup: the checks before a run, the extension points resolved, the data loaded once, the model
initialised from a sample of every class."""

import dataclasses
import os
import subprocess
import sys

import numpy as np
import pytest

from configs.base import Config, ConfigError
from configs.validation import validate
from training import setup

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.slow
def test_deterministic_turns_on_tensorflows_op_determinism_before_the_run_is_built(tmp_path):
    code = (
        "from configs.base import Config; from training import setup; "
        "from tensorflow.python.framework import config; "
        "run = setup.build(Config(deterministic=True), setup.start(Config(deterministic=True))); "
        "print(run.plan.deterministic, config.is_op_determinism_enabled())"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert result.stdout.split() == ["True", "True"], result.stderr[-2000:]


def test_a_dataset_read_from_disk_refuses_what_needs_it_in_memory(jpegs_data_dir):
    config = Config(dataset="generated_jpegs", data_dir=str(jpegs_data_dir), image_size=(32, 32), input_path="disk")
    assert not setup.start(config).placement.in_memory
    assert setup.start(dataclasses.replace(config, input_path="auto")).placement.in_memory
    too_large = dataclasses.replace(config, input_path="auto", max_in_memory_gib=1e-4)  # placed on disk by size
    with pytest.raises(ConfigError, match="data_on_device holds the training set on every device, but generated_jpegs"):
        setup.start(dataclasses.replace(too_large, data_on_device=True))
    with pytest.raises(ConfigError, match="airbench94 sets its whitening stem from training images in memory"):
        setup.start(dataclasses.replace(too_large, model="airbench94"))
    with pytest.raises(ConfigError, match="input_path=disk: set one of them otherwise"):
        setup.start(dataclasses.replace(config, data_on_device=True))
    with pytest.raises(ConfigError, match="input_path='tape' is not one of"):
        validate(dataclasses.replace(config, input_path="tape"))


def test_the_whitening_sample_spans_a_folder_sorted_by_class():
    """An image folder lists its images class by class: the first 5,000 of CIFAR-10's are all airplanes."""
    labels = np.repeat(np.arange(10), 5000)  # CIFAR-10's folder order
    sample = setup.initialisation_sample(len(labels))
    assert len(sample) == 5000 and np.all(np.diff(sample) > 0)
    assert np.bincount(labels[sample], minlength=10).min() > 400
    np.testing.assert_array_equal(sample, setup.initialisation_sample(len(labels)))  # the same for every run


def test_a_process_loads_a_dataset_once_for_all_its_runs(monkeypatch):
    import input_pipeline

    loads = []
    load = input_pipeline.load
    monkeypatch.setattr(input_pipeline, "load", lambda config, placement=None: loads.append(config) or load(config))
    monkeypatch.setattr(setup, "_LOADED", {})
    first = setup.load_data(Config(dataset="quickstart", seed=0))
    assert setup.load_data(Config(dataset="quickstart", seed=7, lr=0.1)) is first  # another seed, another rate
    assert setup.load_data(Config(dataset="quickstart", holdout=0.1)) is not first  # another dataset
    assert len(loads) == 2
