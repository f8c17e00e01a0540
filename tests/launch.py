"""Running train.py as users and schedulers do: in subprocesses, on one process or as workers on localhost ports."""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import tensorflow as tf

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENVIRONMENT = os.environ | {"TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}


def run(*arguments, cwd=REPO, timeout=300):
    """`python <arguments>` to its end (a hang past `timeout` seconds fails), as a user runs it: its output kept."""
    command = [sys.executable, *arguments]
    return subprocess.run(command, cwd=cwd, env=ENVIRONMENT, capture_output=True, text=True, timeout=timeout)


def start(workdir, *flags, script="train.py", log_name="train.log", environment=None, ignored=()):
    """Starts `script` (train.py, or tests/run_with_fault.py with its arguments first) on the quick-start config;
    with the signals `ignored` set to be ignored, as `nohup` starts it (SIGHUP) or a shell's background job (SIGINT)."""
    command = [sys.executable, *script.split(), "--config=configs/quickstart.py", f"--workdir={workdir}", *flags]
    log = open(os.path.join(workdir, log_name), "a")  # noqa: SIM115 (closed by the child's exit)
    return subprocess.Popen(
        command,
        cwd=REPO,
        env=ENVIRONMENT | (environment or {}),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=(lambda: [signal.signal(sig, signal.SIG_IGN) for sig in ignored]) if ignored else None,
    )


def finish(process, timeout=300):
    """The exit code; a process still running after `timeout` seconds is killed (with its children)."""
    try:
        return process.wait(timeout=timeout)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)


def wait_for_step(workdir, step, process, timeout=240):
    """Waits until the run's history.jsonl has reached `step` (the run is then between two loop calls or in one)."""
    path, deadline = os.path.join(workdir, "history.jsonl"), time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        if os.path.exists(path):
            with open(path) as f:
                steps = [json.loads(line)["step"] for line in f if line.strip()]
            if steps and max(steps) >= step:
                return
        time.sleep(0.05)
    raise AssertionError(f"{workdir} never reached step {step} (exit code {process.poll()})")


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def worker_environments(count):
    """TF_CONFIG for `count` workers on localhost, one environment each."""
    cluster = {"worker": [f"localhost:{port}" for port in free_ports(count)]}
    tasks = [{"type": "worker", "index": i} for i in range(count)]
    return [{"TF_CONFIG": json.dumps({"cluster": cluster, "task": task})} for task in tasks]


def run_state(checkpoint_dir):
    """{name: array} of every tensor of the latest checkpoint that the training computes: not the clocks, the
    object graph, or the counters of saves and of the pre-emption handler's calls."""
    reader = tf.train.load_checkpoint(checkpoint_dir)
    skipped = ("_CHECKPOINTABLE_OBJECT_GRAPH", "timers", "save_counter", "checkpointed_runs")
    return {
        name: reader.get_tensor(name)
        for name in reader.get_variable_to_shape_map()
        if not any(part in name for part in skipped)
    }


def assert_same_state(a, b):
    assert sorted(a) == sorted(b)
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


def history(workdir):
    with open(os.path.join(workdir, "history.jsonl")) as f:
        return [json.loads(line) for line in f if line.strip()]


def strict_json(path):
    """The JSON file at `path`, refusing NaN and infinities as a strict parser does."""
    with open(path) as f:
        return json.load(f, parse_constant=lambda name: _refuse(path, name))


def _refuse(path, name):
    raise AssertionError(f"{path} holds {name}: not strict JSON")
