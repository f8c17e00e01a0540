"""README's "Adapt it": each extension point's file, shown whole there, and its command, run as written; a run of
it stopped and resumed ends as the straight one does; `--help` never imports the user's code; unknown names are
refused with the known ones; stock Keras optimizers and 2 replicas through train.py alone."""

import dataclasses
import os
import re
import subprocess
import sys
import time

import launch
import numpy as np
import pytest
import tensorflow as tf

import train
from configs import registry
from configs.base import Config, ConfigError
from configs.validation import validate
from training import trainer

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRAIN = os.path.join(REPO, "train.py")


def readme_examples():
    """{point: (file name, its text, the command's arguments)} of README's "Add your own ..." sections."""
    with open(os.path.join(REPO, "README.md")) as f:
        text = f.read()
    examples = {}
    for point, body in re.findall(r"### Add your own (\w+)\n(.*?)(?=\n### |\n## |\Z)", text, re.S):
        code = re.search(r"```python\n# (\S+\.py)\n(.*?)```", body, re.S)
        command = re.search(r"```bash\npython train\.py (.*?)\n```", body, re.S)
        examples[point] = (code.group(1), code.group(2), command.group(1).split())
    return examples


EXAMPLES = readme_examples()


def test_the_readme_shows_every_extension_point():
    assert set(EXAMPLES) == {"model", "dataset", "optimizer", "schedule", "augmentation"}


def config_of(arguments):
    values, _, _ = train.parse(["train.py", *arguments])
    return values.config


@pytest.mark.slow
@pytest.mark.parametrize("point", sorted(EXAMPLES))
def test_each_readme_example_runs_as_written_and_resumes_exactly(point, tmp_path, monkeypatch):
    """The command, as a user runs it beside their file, stopped at step 3; resumed in process to step 6, it
    ends with the losses and weights of a straight run to step 6."""
    name, code, arguments = EXAMPLES[point]
    (tmp_path / name).write_text(code)
    flags = [a for a in arguments if not a.startswith("--workdir")]
    done = launch.run(TRAIN, *flags, "--config.stop_at_step=3", "--workdir=split", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [str(tmp_path), *sys.path])
    config = dataclasses.replace(config_of(flags), stop_at_step=6, log_every_steps=1)
    straight = trainer.train_and_evaluate(config, str(tmp_path / "straight"))
    resumed = trainer.train_and_evaluate(dataclasses.replace(config, allow_config_change=True), str(tmp_path / "split"))
    assert straight["steps"] == resumed["steps"] == 6
    assert [h["loss"] for h in resumed["history"][-3:]] == [h["loss"] for h in straight["history"][-3:]]
    weights = [tf.train.load_checkpoint(str(tmp_path / run / "checkpoints")) for run in ("straight", "split")]
    for variable in weights[0].get_variable_to_shape_map():
        if variable.startswith("model/"):
            np.testing.assert_array_equal(weights[0].get_tensor(variable), weights[1].get_tensor(variable))


def test_help_and_helpconfig_import_neither_tensorflow_nor_the_users_code(tmp_path):
    for name, code, _ in EXAMPLES.values():
        (tmp_path / name).write_text(code + "\nraise SystemExit('imported')\n")  # importing it would end the run
    extensions = [argument for _, _, arguments in EXAMPLES.values() for argument in arguments[:1]]
    for flag in ("--help", "--helpconfig"):
        done = subprocess.run(
            [sys.executable, "-X", "importtime", os.path.join(REPO, "train.py"), flag, *extensions],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        imported = {line.split("|")[-1].strip().split(".")[0] for line in done.stderr.splitlines() if "|" in line}
        assert not imported & {"tensorflow", "keras", "my_nets", "my_data", "my_optimizers", "my_schedules"}


@pytest.mark.parametrize(
    "field, value, known",
    [
        ("model", "vgg", "'resnet9', 'airbench', 'airbench94'"),
        ("optimizer", "lamb", "'sgd', 'nesterov', 'adam', 'adamw', 'rmsprop'"),
        ("schedule", "cosine", "'onecycle', 'constant', 'step', 'warmup_cosine'"),
        ("augmentation", "blur", "('jitter',)"),
    ],
)
def test_an_unknown_name_is_refused_with_the_known_ones(field, value, known):
    overrides = {field: value} if field != "augmentation" else {"augmentation": Config().augmentation}
    config = Config(**overrides)
    if field == "augmentation":
        config = dataclasses.replace(config, augmentation=dataclasses.replace(config.augmentation, extra=(value,)))
    with pytest.raises(ConfigError, match=re.escape(known)):
        validate(config)


def test_an_unknown_dataset_is_refused_with_the_known_ones():
    from input_pipeline import DatasetError, check_source

    with pytest.raises(DatasetError, match=re.escape("use one of ('quickstart', 'quickstart_hard', 'synthetic'")):
        check_source(Config(dataset="cifar11"))


def test_a_path_that_does_not_import_names_what_is_missing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "few_nets.py").write_text("def small_cnn(input_shape, num_classes):\n    pass\n")
    with pytest.raises(ConfigError, match=r"--config.model=no_such_module:net: cannot import no_such_module"):
        registry.resolve("model", "no_such_module:net")
    with pytest.raises(ConfigError, match=r"few_nets has no 'big_cnn' \(it has \['small_cnn'\]\)"):
        registry.resolve("model", "few_nets:big_cnn")
    assert registry.resolve("model", f"{tmp_path / 'few_nets.py'}:small_cnn").__name__ == "small_cnn"  # a file
    with pytest.raises(ConfigError, match="is not module:attribute"):
        validate(Config(model="my_nets:"))


def test_a_function_is_called_with_the_run_values_and_config_fields_it_names():
    def schedule(max_lr, total_steps, warmup_pct, spare=7):
        return (max_lr, total_steps, warmup_pct, spare)

    assert registry.call_with(schedule, "schedule", {"max_lr": 0.1, "total_steps": 10}, Config()) == (0.1, 10, 0.05, 7)

    def needs(max_lr, beta):
        return beta

    with pytest.raises(ConfigError, match="takes 'beta', which is neither a value of the run"):
        registry.call_with(needs, "schedule", {"max_lr": 0.1}, Config())


@pytest.mark.parametrize("optimizer", ["keras.optimizers:SGD", "keras.optimizers:AdamW"])
def test_a_stock_keras_optimizer_trains_under_two_replicas_and_logs_its_rate(optimizer, tmp_path, two_replicas):
    import tiny

    config = Config(**tiny.AIRBENCH | dict(optimizer=optimizer, lr=0.003, stop_at_step=4, log_every_steps=2))
    summary = trainer.train_and_evaluate(config, str(tmp_path), strategy=two_replicas)
    assert summary["steps"] == 4 and summary["replicas"] == 2
    history = summary["history"]
    assert history[0]["lr"] < history[1]["lr"]  # 1Cycle's warm-up, evaluated at optimizer.iterations
    held = 0.95 if optimizer.endswith("SGD") else 0.9  # SGD: --config.max_momentum; AdamW: its beta_1
    assert [h["momentum"] for h in history] == pytest.approx([held, held])
    losses = [h["loss"] for h in history]
    assert all(np.isfinite(losses))


@pytest.mark.slow
def test_two_replicas_on_the_cpu_through_train_py_alone(tmp_path):
    flags = ["--config.strategy=mirrored", "--config.devices=/cpu:0,/cpu:1", "--config.stop_at_step=2"]
    done = launch.run(TRAIN, *flags, f"--workdir={tmp_path / 'run'}")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "256 global = 2 replicas x 128" in done.stderr


@pytest.mark.parametrize("devices", ["/gpu:0,/gpu:1", "/cpu:0,/gpu:0"])
def test_a_device_that_does_not_exist_is_refused_within_seconds(devices, tmp_path):
    """MirroredStrategy over a device TensorFlow lacks waits for ever; the check names what it sees instead."""
    started = time.monotonic()
    done = launch.run(TRAIN, f"--config.devices={devices}", f"--workdir={tmp_path / 'r'}", timeout=120)  # no hang
    last = done.stderr.strip().splitlines()[-1]
    assert done.returncode == 2 and last.startswith(f"error: --config.devices={devices}: TensorFlow sees no GPU here")
    assert not (tmp_path / "r").exists() and time.monotonic() - started < 120
