"""BUILD.md's sbatch script on a real SLURM cluster (`bash .ci/slurm` starts a one-node one and runs this file).

The script is BUILD.md's own, with only what the hardware decides replaced: one node of 2 CPUs instead of 2
nodes of 8 GPUs, this virtual environment, the quick-start config and a temporary workdir. Outside .ci/slurm
(no cluster) every test here is skipped: .ci/run runs them there, and fails if the cluster does not start.
"""

import os
import pathlib
import re
import signal
import subprocess
import sys
import time

import pytest
from launch import assert_same_state, finish, free_ports, history, run_state, start, strict_json

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

pytestmark = pytest.mark.skipif(
    not os.environ.get("ONECYCLE_SLURM_CLUSTER"), reason="needs the SLURM cluster that .ci/slurm starts"
)


def build_md_script(workdir, *flags):
    """BUILD.md's sbatch script, its hardware lines and its training command made this machine's."""
    with open(os.path.join(REPO, "BUILD.md")) as f:
        text = f.read()
    script = re.search(r"### SLURM.*?```bash\n(#!/bin/bash\n.*?)```", text, re.S).group(1)
    replaced = {
        "#SBATCH --nodes=2\n": "#SBATCH --nodes=1\n",
        "#SBATCH --ntasks-per-node=1": "#SBATCH --ntasks-per-node=2",
        "#SBATCH --gpus-per-node=8\n": "",
        "#SBATCH --cpus-per-task=32\n": "#SBATCH --cpus-per-task=1\n",
        "source .venv/bin/activate": f"source {sys.prefix}/bin/activate",
    }
    for old, new in replaced.items():
        assert old in script, old
        script = script.replace(old, new)
    command = re.search(r"srun python train\.py .*?--workdir=\S+\n", script, re.S).group(0)
    ours = " ".join(["srun python train.py --config=configs/quickstart.py", *flags, f"--workdir={workdir}"])
    return script.replace(command, ours + "\n")


FLAGS = ("--config.checkpoint_every_steps=20", "--config.log_every_steps=10")


def submit(tmp_path, name, epochs, *options):
    """Submits BUILD.md's script for a run of `epochs` in tmp_path/name; returns (job id, workdir)."""
    workdir = tmp_path / name
    port = free_ports(1)[0]
    flags = (f"--config.epochs={epochs}", *FLAGS, f"--config.slurm_port_base={port}")
    script = tmp_path / f"{name}.sbatch"
    script.write_text(build_md_script(workdir, *flags))
    done = subprocess.run(
        ["sbatch", "--parsable", f"--chdir={REPO}", f"--output={tmp_path}/{name}-%j.out", *options, str(script)],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip().split(";")[0], workdir


def job(job_id):
    """{field: value} of `scontrol show job`."""
    text = subprocess.run(["scontrol", "show", "job", "-o", job_id], capture_output=True, text=True).stdout
    return dict(re.findall(r"(\w+)=(\S*)", text))


def wait_for(job_id, predicate, what, timeout=300):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        info = job(job_id)
        if predicate(info):
            return info
        time.sleep(1)
    raise AssertionError(f"job {job_id} never {what}: {job(job_id)}")


def wait_for_step(workdir, step, timeout=300):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (workdir / "history.jsonl").exists() and any(r["step"] >= step for r in history(workdir)):
            return
        time.sleep(0.5)
    raise AssertionError(f"{workdir} never reached step {step}")


def ended(info):
    return info.get("JobState") in ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL")


def tasks_that_exited(log, code):
    """The tasks srun reports as exited with `code`, in either of its forms ("tasks 0-1: ...", or a line each)."""
    tasks = set()
    for first, last in re.findall(rf"srun: error: \S+: tasks? (\d+)(?:-(\d+))?: Exited with exit code {code}\n", log):
        tasks |= set(range(int(first), int(last or first) + 1))
    return tasks


def output(tmp_path, name, job_id):
    return (tmp_path / f"{name}-{job_id}.out").read_text()


def tf_config_run(tmp_path, epochs):
    """The same run as two workers launched by TF_CONFIG on localhost ports, uninterrupted: the reference."""
    from launch import worker_environments

    workdir = tmp_path / f"tf_config_{epochs}"
    workdir.mkdir()
    flags = (f"--config.epochs={epochs}", *FLAGS)
    workers = [
        start(workdir, *flags, environment=env, log_name=f"worker{i}.log")
        for i, env in enumerate(worker_environments(2))
    ]
    assert [finish(w) for w in workers] == [0, 0], (workdir / "worker1.log").read_text()[-3000:]
    return workdir


def assert_same_run(workdir, reference):
    """Both workers' final checkpoints and the chief's history equal the reference run's, bit for bit."""
    for checkpoints in ("checkpoints", "checkpoints_worker1"):
        assert_same_state(run_state(str(workdir / checkpoints)), run_state(str(reference / checkpoints)))
    ours, theirs = history(workdir), history(reference)
    assert [(r["kind"], r["step"], r.get("lr"), r["loss"]) for r in ours] == [
        (r["kind"], r["step"], r.get("lr"), r["loss"]) for r in theirs
    ]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    return tf_config_run(tmp_path_factory.mktemp("reference"), epochs=4)


def test_two_tasks_of_one_job_train_as_two_tf_config_workers_do(tmp_path, reference):
    job_id, workdir = submit(tmp_path, "two", 4)
    info = wait_for(job_id, ended, "ended")
    log = output(tmp_path, "two", job_id)
    assert info["JobState"] == "COMPLETED" and info["ExitCode"] == "0:0", log[-3000:]
    assert log.count("run completed:") == 2  # both tasks; the chief alone writes the reports
    summary = strict_json(workdir / "summary.json")
    assert summary["status"] == "completed" and summary["replicas"] == 2
    assert sorted(p.name for p in workdir.iterdir() if p.name.startswith("checkpoints")) == [
        "checkpoints",
        "checkpoints_worker1",
    ]
    assert_same_run(workdir, reference)


def until_it_ends(job_id):
    """Waits for the job's end. A requeued job is held for the credential lifetime first (`Reason=BeginTime`:
    .ci/slurm's `cred_expire=30`); the wait is SLURM's own, for a start before it can fail at launch."""
    return wait_for(job_id, ended, "ended", timeout=400)


@pytest.mark.parametrize("how", ["scancel", "time_limit"])
def test_a_preempted_job_saves_on_both_tasks_requeues_itself_and_finishes_exact(tmp_path, reference, how):
    if how == "scancel":
        job_id, workdir = submit(tmp_path, how, 4)
        wait_for_step(workdir, 30)
        subprocess.run(["scancel", "--signal=TERM", job_id], check=True)
    else:  # a 3-minute limit and SIGTERM 2 minutes before it (sbatch(1): "up to 60 seconds earlier"; here 5-12
        # s early, about 50 s into the run), into a run of about 3 minutes
        job_id, workdir = submit(tmp_path, how, 40, "--time=3", "--signal=TERM@120")
    wait_for(job_id, lambda i: i.get("Restarts") == "1", "was requeued", timeout=240)
    if how == "time_limit":  # one attempt saved at its limit; the requeued one gets the time to finish the run
        subprocess.run(["scontrol", "update", f"JobId={job_id}", "TimeLimit=20"], check=True)
    log = output(tmp_path, how, job_id)
    saved = re.findall(r"pre-empted at step (\d+): saved \S+", log)
    assert len(saved) == 2 and saved[0] == saved[1], log[-3000:]  # both tasks, the same step
    assert tasks_that_exited(log, 143) == {0, 1}, log[-3000:]  # both tasks saved and exited as pre-empted
    info = until_it_ends(job_id)
    log = output(tmp_path, how, job_id)
    assert info["JobState"] == "COMPLETED" and int(info["Restarts"]) >= 1, log[-3000:]
    assert len(re.findall(rf"resumed from \S+ at step {saved[0]}\n", log)) == 2
    assert strict_json(workdir / "summary.json")["status"] == "completed"
    if how == "scancel":  # the time-limited run is longer than the reference: its resume is what it checks
        assert_same_run(workdir, reference)


def test_a_killed_task_ends_the_job_with_its_cause_and_a_resubmission_resumes(tmp_path, reference):
    job_id, workdir = submit(tmp_path, "killed", 4)
    wait_for_step(workdir, 30)
    pids = subprocess.run(["pgrep", "-f", f"workdir={workdir}"], capture_output=True, text=True).stdout.split()
    worker1 = next(
        int(pid) for pid in pids if b"SLURM_PROCID=1\x00" in pathlib.Path(f"/proc/{pid}/environ").read_bytes()
    )
    os.kill(worker1, signal.SIGKILL)
    info = wait_for(job_id, ended, "ended")
    log = output(tmp_path, "killed", job_id)
    assert info["JobState"] == "FAILED" and info["ExitCode"] != "0:0", log[-3000:]
    assert "task 1: Killed" in log and "lost a peer worker after step" in log, log[-3000:]
    again, _ = submit(tmp_path, "killed", 4)  # the same workdir
    info = wait_for(again, ended, "ended")
    log = output(tmp_path, "killed", again)
    assert info["JobState"] == "COMPLETED", log[-3000:]
    assert len(re.findall(r"resumed from \S+ at step \d+\n", log)) == 2
    assert_same_run(workdir, reference)
