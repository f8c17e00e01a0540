"""Strategy selection: SLURM job steps are recognised by `auto`, as `srun` would start them."""

import socket

import pytest
from launch import assert_same_state, finish, run_state, start, strict_json

from training import strategy

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
