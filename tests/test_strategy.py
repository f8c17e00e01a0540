"""Strategy selection: SLURM job steps are recognised by `auto`, as `srun` would start them; the rules that turn
XLA and op determinism on where they pay."""

import os
import socket
import subprocess
import sys

import pytest
import tensorflow as tf
from launch import assert_same_state, finish, run_state, start, strict_json

from configs.base import Config
from training import strategy
from training.strategy import device_kinds, resolve_deterministic, resolve_jit_compile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SLURM_TWO_NODES = {
    "SLURM_STEP_NUM_TASKS": "4",
    "SLURM_STEP_NODELIST": "gpu[07-08]",
    "SLURM_STEP_TASKS_PER_NODE": "2(x2)",
    "SLURM_PROCID": "3",
}


def test_the_slurm_resolver_places_tasks_on_nodes_and_ports(monkeypatch):
    for name, value in SLURM_TWO_NODES.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")  # a CPU-only node: no nvidia-smi is needed
    resolver = strategy.slurm_cluster_resolver(port_base=9000)
    assert resolver.cluster_spec().as_dict() == {"worker": ["gpu07:9000", "gpu07:9001", "gpu08:9000", "gpu08:9001"]}
    assert (resolver.task_type, resolver.task_id) == ("worker", 3)
    assert resolver.num_accelerators() == {}  # else MultiWorkerMirroredStrategy places every op on a missing GPU


def test_outside_srun_there_is_no_slurm_cluster(monkeypatch):
    monkeypatch.delenv("SLURM_STEP_NUM_TASKS", raising=False)
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ValueError, match="needs TF_CONFIG describing the cluster or several SLURM tasks"):
        strategy.create_strategy("multi_worker")


def two_free_ports_in_a_row():
    for _ in range(50):
        with socket.socket() as first:
            first.bind(("localhost", 0))
            port = first.getsockname()[1]
            with socket.socket() as second:
                try:
                    second.bind(("localhost", port + 1))
                except OSError:
                    continue
        return port
    raise RuntimeError("no two free ports in a row")


@pytest.mark.slow
def test_two_srun_tasks_train_as_two_workers(tmp_path):
    port = two_free_ports_in_a_row()
    tasks = [
        {
            "SLURM_STEP_NUM_TASKS": "2",
            "SLURM_STEP_NODELIST": "localhost",
            "SLURM_STEP_TASKS_PER_NODE": "2",
            "SLURM_PROCID": str(i),
        }
        for i in range(2)
    ]
    flags = (
        "--config.stop_at_step=6",
        "--config.steps_per_loop=3",
        "--config.checkpoint_every_steps=3",
        "--config.sync_batch_norm=True",
        f"--config.slurm_port_base={port}",
    )
    workers = [start(tmp_path, *flags, log_name=f"task{i}.log", environment=task) for i, task in enumerate(tasks)]
    codes = [finish(worker) for worker in workers]
    assert codes == [0, 0], [(tmp_path / f"task{i}.log").read_text()[-3000:] for i in range(2)]
    assert strict_json(tmp_path / "summary.json")["replicas"] == 2
    assert_same_state(run_state(str(tmp_path / "checkpoints")), run_state(str(tmp_path / "checkpoints_worker1")))


@pytest.mark.parametrize(
    "overrides, expected",
    [
        ({}, False),
        ({"precision": "mixed_bfloat16"}, True),
        ({"jit_compile": True}, True),
        ({"precision": "mixed_float16", "sync_batch_norm": True}, False),
        ({"jit_compile": False}, False),
    ],
)
def test_xla_by_default_only_where_it_pays(overrides, expected, two_replicas):
    """On this CPU: off for float32, on for mixed precision; a forced value wins; never with synchronized BN."""
    for distribution in (tf.distribute.get_strategy(), two_replicas):
        assert resolve_jit_compile(Config(**overrides), distribution) is expected


@pytest.mark.parametrize("overrides, expected", [({}, False), ({"deterministic": True}, True)])
def test_op_determinism_by_default_only_on_gpus_without_xla(overrides, expected, two_replicas):
    """On this CPU the kernels are deterministic already: off unless asked for. On GPUs: on only where XLA is
    off, and asking for it turns XLA's auto rule off."""
    for distribution in (tf.distribute.get_strategy(), two_replicas):
        assert resolve_deterministic(Config(**overrides), distribution) is expected
    gpus = tf.distribute.MirroredStrategy(["/gpu:0", "/gpu:1"])
    kinds = [device_kinds(s) for s in (tf.distribute.get_strategy(), two_replicas, gpus)]
    assert kinds == [{"CPU"}, {"CPU"}, {"GPU"}]  # the default strategy too: it has no device list to read
    assert resolve_jit_compile(Config(), gpus) is True and resolve_deterministic(Config(), gpus) is False
    assert resolve_deterministic(Config(jit_compile=False), gpus) is True
    assert resolve_jit_compile(Config(deterministic=True), gpus) is False


@pytest.mark.slow
def test_xla_still_refuses_maxpools_gradient_under_op_determinism():
    """Why deterministic and jit_compile exclude each other (every model here pools). If a TensorFlow release
    compiles it, this fails: then the rule can go."""
    code = (
        "import tensorflow as tf\n"
        "tf.config.experimental.enable_op_determinism()\n"
        "x = tf.Variable(tf.ones([1, 4, 4, 1]))\n"
        "@tf.function(jit_compile=True)\n"
        "def step():\n"
        "    with tf.GradientTape() as tape:\n"
        "        y = tf.reduce_sum(tf.nn.max_pool2d(x, 2, 2, 'VALID'))\n"
        "    return tape.gradient(y, x)\n"
        "try:\n"
        "    step()\n"
        "    print('compiled')\n"
        "except tf.errors.UnimplementedError as error:\n"
        "    print('refused' if 'deterministic XLA implementation' in str(error) else error)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert result.stdout.split() == ["refused"], result.stderr[-2000:]
