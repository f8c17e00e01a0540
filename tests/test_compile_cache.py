"""training/compile_cache.py: XLA's persistent cache, set up by train.py before TensorFlow starts."""

import json
import os
import subprocess
import sys

import pytest
import tensorflow as tf

from configs.base import Config, ConfigError
from training import compile_cache

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_the_directory_is_beside_the_workdir_and_per_tensorflow_version():
    expected = os.path.join("runs", "xla_cache", f"tf{tf.__version__}")
    assert compile_cache.directory("runs/race.trial") == expected
    assert compile_cache.directory("runs/race.trial/") == expected
    assert compile_cache.directory("race") == os.path.join(".", "xla_cache", f"tf{tf.__version__}")
    assert compile_cache.directory("gs://bucket/runs/r9") == f"gs://bucket/runs/xla_cache/tf{tf.__version__}"


def test_enable_appends_to_tf_xla_flags_and_keeps_a_directory_the_user_set(monkeypatch):
    monkeypatch.setenv("TF_XLA_FLAGS", "--tf_xla_auto_jit=2")
    compile_cache.enable("/cache/a")
    assert os.environ["TF_XLA_FLAGS"] == "--tf_xla_auto_jit=2 --tf_xla_persistent_cache_directory=/cache/a"
    compile_cache.enable("/cache/b")
    assert compile_cache.enabled_directory() == "/cache/a"


def test_a_config_asking_for_the_cache_where_nobody_enabled_it_is_refused(monkeypatch, tmp_path):
    monkeypatch.delenv("TF_XLA_FLAGS", raising=False)
    compile_cache.prepare(Config())  # not asked for: nothing to do
    with pytest.raises(ConfigError, match="--config.xla_cache: TensorFlow reads XLA's flags when it starts"):
        compile_cache.prepare(Config(xla_cache=True))
    monkeypatch.setenv("TF_XLA_FLAGS", f"--tf_xla_persistent_cache_directory={tmp_path}/cache/tf")
    compile_cache.prepare(Config(xla_cache=True))
    assert (tmp_path / "cache" / "tf").is_dir()  # XLA itself makes only the last folder


@pytest.mark.slow
def test_a_second_run_beside_the_first_loads_its_programs_and_trains_the_same(tmp_path):
    """train.py --config.xla_cache: the first run writes the step's and the evaluation's programs, the second
    (another workdir in the same folder, a new process) compiles nothing new and gives the same results."""
    cache = tmp_path / "xla_cache" / f"tf{tf.__version__}"
    summaries, programs = [], []
    for name in ("first", "second"):
        done = subprocess.run(
            [
                sys.executable,
                "train.py",
                "--config.xla_cache=True",
                "--config.jit_compile=True",
                "--config.epochs=2",
                "--config.stop_at_step=20",
                f"--workdir={tmp_path / name}",
            ],
            cwd=REPO,
            env=os.environ | {"TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""},
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        assert "XLA wrote no program" not in done.stderr
        summaries.append(json.loads((tmp_path / name / "summary.json").read_text()))
        programs.append(sorted(os.listdir(cache)))
    assert len(programs[0]) >= 2  # the training step's forward and backward pass, and the evaluation
    assert programs[1] == programs[0]  # the second run loaded them all
    first, second = summaries
    assert [r["loss"] for r in second["history"]] == [r["loss"] for r in first["history"]]
    assert second["eval_accuracy"] == first["eval_accuracy"]
