"""The benchmarks run end to end (a few steps) and print every row; timings are never asserted here."""

import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

pytestmark = pytest.mark.slow  # every test here starts processes
ENVIRONMENT = os.environ | {"TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}


def benchmark(module, *arguments, timeout=1800):
    """Runs `python -m benchmarks.<module> <arguments>` from the project; returns the finished process.

    The step benchmark's smoke run takes about 2 minutes beside the other test process, and was seen taking 11
    on a machine loaded twice over: the timeout only bounds a hang."""
    command = [sys.executable, "-m", f"benchmarks.{module}", *arguments]
    return subprocess.run(command, cwd=REPO, env=ENVIRONMENT, capture_output=True, text=True, timeout=timeout)


def test_step_benchmark_smoke_run_prints_every_row():
    done = benchmark("step", "--windows=1", "--steps=1", "--regimes=overhead")
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [line for line in done.stdout.splitlines() if line.startswith("| overhead |")]
    names = [row.split(" | ")[1] for row in rows]
    assert names == [
        "limit: compiled step, batch in memory",
        "ours: loop + pipeline + 1Cycle",
        "ours, data on device",
        "ours without augmentation",
        "ours, data on device, without augmentation",
        "ours, jit_compile=True",
        "ours: loop + pipeline + 1Cycle",
        "ours: loop + pipeline + 1Cycle",
        "ours: loop + pipeline + 1Cycle",
        "ours: loop + pipeline + 1Cycle",
        "onecycle.Adam @ step 0",
        "onecycle.Adam @ step 1,000,000",
        "input pipeline alone",
    ]
    references = [row.split(" | ")[3] for row in rows]
    assert references[7:10] == [
        "keras fit: naive input, constant lr",
        "keras fit + host-callback 1Cycle",
        "keras fit(jit_compile=True)",
    ]
    assert all(float(row.split(" | ")[4]) > 0 for row in rows)  # every ratio was measured


def test_replicas_benchmark_smoke_run_prints_both_rows():
    done = benchmark("replicas", "--windows=1", "--steps=1", "--regimes=overhead")
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [line for line in done.stdout.splitlines() if line.startswith("| overhead |")]
    assert [row.split(" | ")[1] for row in rows] == ["ours, 1 replica", "ours, 2 replicas (MirroredStrategy)"]


def test_unknown_regime_is_refused():
    done = benchmark("step", "--regimes=gpu", timeout=120)
    assert done.returncode == 2 and "unknown regime(s) ['gpu']" in done.stderr


def test_records_benchmark_smoke_run_prints_its_rows():
    done = benchmark("records", "--windows=1", "--steps=1", "--examples=32", "--size=64")
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [line for line in done.stdout.splitlines() if line.startswith("| disk |")]
    assert [row.split(" | ")[1] for row in rows] == [
        "limit: ResNet-50 step, batch in memory",
        "disk path alone: read, decode, crop, flip",
        "ours: ResNet-50 step reading from disk",
        "tfds stream of the same JPEGs as TFRecord",
    ]
    assert all(float(row.split(" | ")[4]) > 0 for row in rows)
    assert "resident host memory after 1 epoch of the disk path" in done.stdout


def test_optimizers_benchmark_smoke_run_prints_its_row():
    done = benchmark("optimizers", "--windows=1", "--steps=1", "--batch=64")
    assert done.returncode == 0, done.stderr[-3000:]
    assert [line.split(" | ")[1:4:2] for line in done.stdout.splitlines() if line.startswith("| step |")] == [
        ["Muon", "SGD"]
    ]
