"""training/compile_cache.py: XLA's persistent cache, set up by train.py before TensorFlow starts."""

import hashlib
import json
import os
import subprocess

import launch
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


def cached_run(workdir, *extra):
    """train.py with XLA and its cache (in workdir's parent), to step 20; it must succeed."""
    flags = ["--config.xla_cache=True", "--config.jit_compile=True", "--config.epochs=2", "--config.stop_at_step=20"]
    done = launch.run("train.py", *flags, *extra, f"--workdir={workdir}", timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


@pytest.mark.slow
def test_a_damaged_or_read_only_cache_is_set_aside_or_skipped_with_a_warning_and_the_run_trains_the_same(tmp_path):
    """A cache is an optimisation: a truncated or garbled program, or a folder that cannot be written, costs a
    warning and a compilation, never the run (nor the next: the damaged folder is set aside)."""
    cache = tmp_path / "xla_cache" / f"tf{tf.__version__}"
    cached_run(tmp_path / "first")
    reference = json.loads((tmp_path / "first" / "summary.json").read_text())
    programs = sorted(cache.glob("*.pb"))
    assert sorted(json.loads((cache / "checksums.json").read_text())) == [p.name for p in programs]
    # Bytes overwritten in the middle: XLA would load and run it; its checksum does not match, so it is moved aside
    largest = max(programs, key=lambda p: p.stat().st_size)  # the training step's, loaded by the first call
    data = largest.read_bytes()
    largest.write_bytes(data[:200] + bytes(range(256)) * 8 + data[2248:])
    done = cached_run(tmp_path / "checked")
    assert "1 program(s) in" in done.stderr and "do not match their recorded checksums" in done.stderr
    # Truncated, and its record made to match (what the record cannot see): it fails as it loads, and is set aside
    # The training step's, failing inside the first call: what ran of that step (Keras counts it before its
    # gradients) is undone before the call is made again, so the run trains as the first did.
    largest = max(cache.glob("*.pb"), key=lambda p: p.stat().st_size)
    largest.write_bytes(largest.read_bytes()[:1000])
    recorded = json.loads((cache / "checksums.json").read_text())
    recorded[largest.name] = hashlib.sha256(largest.read_bytes()).hexdigest()
    (cache / "checksums.json").write_text(json.dumps(recorded))
    done = cached_run(tmp_path / "damaged")
    warning = [line for line in done.stderr.splitlines() if "cannot be loaded" in line]
    assert len(warning) == 1 and f"the folder is set aside as {cache}.damaged-" in warning[0], done.stderr[-3000:]
    later = cached_run(tmp_path / "later")  # the folder holds the new programs: loaded, not damaged
    assert "cannot be loaded" not in later.stderr and "checksums" not in later.stderr
    subprocess.run(["mount", "--bind", str(cache), str(cache)], check=True)  # read-only: as root, a mount
    subprocess.run(["mount", "-o", "remount,ro,bind", str(cache)], check=True)
    try:
        done = cached_run(tmp_path / "read_only")
    finally:
        subprocess.run(["umount", "-l", str(cache)], check=False)
    assert f"config.xla_cache: {cache} cannot be written (Read-only file system)" in done.stderr
    for name in ("checked", "damaged", "later", "read_only"):
        summary = json.loads((tmp_path / name / "summary.json").read_text())
        assert [r["loss"] for r in summary["history"]] == [r["loss"] for r in reference["history"]]


@pytest.mark.slow
def test_a_second_run_beside_the_first_loads_its_programs_and_trains_the_same(tmp_path):
    """train.py --config.xla_cache: the first run writes the step's and the evaluation's programs, the second
    (another workdir in the same folder, a new process, its training cut into other calls as a slower or busier
    machine cuts it) compiles nothing new and gives the same results."""
    cache = tmp_path / "xla_cache" / f"tf{tf.__version__}"
    summaries, programs = [], []
    for name, extra in (("first", ()), ("second", ("--config.max_call_seconds=0.001",))):
        done = cached_run(tmp_path / name, *extra)
        assert "XLA wrote no program" not in done.stderr
        summaries.append(json.loads((tmp_path / name / "summary.json").read_text()))
        programs.append(sorted(os.listdir(cache)))
    assert len(programs[0]) >= 2  # the training step's forward and backward pass, and the evaluation
    assert programs[1] == programs[0]  # the second run loaded them all
    first, second = summaries
    assert [r["loss"] for r in second["history"]] == [r["loss"] for r in first["history"]]
    assert second["eval_accuracy"] == first["eval_accuracy"]
