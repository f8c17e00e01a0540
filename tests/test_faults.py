"""Runs that are killed, pre-empted or diverge, as real processes: what they leave, and that a rerun of the same
command ends exactly where the uninterrupted run ends."""

import json
import os
import signal
import socket
import subprocess
import time

import numpy as np
import pytest
import tensorflow as tf
from launch import (
    assert_same_state,
    finish,
    history,
    run_state,
    start,
    strict_json,
    wait_for_step,
    worker_environments,
)

from training import checkpoints
from training.faults import EXIT_CODES, INTERRUPTED

# The quick-start job on synthetic data (quicker to make): 10 epochs of 8 steps, a call into the loop every 5 steps
# (after a first call of 1), an evaluation every 20 steps and a checkpoint every 10.
FLAGS = (
    "--config.dataset=synthetic",
    "--config.epochs=10",
    "--config.steps_per_loop=5",
    "--config.log_every_steps=5",
    "--config.checkpoint_every_steps=10",
    "--config.eval_every_epochs=2.5",
)
TOTAL = 80

pytestmark = pytest.mark.slow  # every test here starts processes


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("uninterrupted")
    assert finish(start(workdir, *FLAGS)) == 0, (workdir / "train.log").read_text()[-3000:]
    return workdir


def assert_continues_exactly(workdir, uninterrupted, total=TOTAL):
    """The rerun ended where the uninterrupted run did: same steps, schedule, evaluations and weights."""
    log = (workdir / "train.log").read_text()
    summary, reference = strict_json(workdir / "summary.json"), strict_json(uninterrupted / "summary.json")
    assert summary["status"] == "completed" and summary["steps"] == reference["steps"] == total, log[-3000:]
    ours, theirs = history(workdir), history(uninterrupted)
    assert [(h["kind"], h["step"]) for h in ours] == [(h["kind"], h["step"]) for h in theirs]
    for a, b in zip(ours, theirs):
        assert a.get("lr") == b.get("lr") and a.get("momentum") == b.get("momentum")
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-5) and a["accuracy"] == pytest.approx(b["accuracy"])
    assert_same_state(run_state(str(workdir / "checkpoints")), run_state(str(uninterrupted / "checkpoints")))


@pytest.mark.parametrize(
    "where, n, restored",
    [("train", 4, 10), ("eval", 2, 30), ("save", 3, (20, 30))],
    ids=["mid-epoch", "during-evaluation", "during-a-checkpoint-save"],
)
def test_sigkill_anywhere_then_rerun_continues_exactly(tmp_path, uninterrupted, where, n, restored):
    killed = finish(start(tmp_path, *FLAGS, script=f"tests/run_with_fault.py {where} {n}"))
    assert killed == -signal.SIGKILL
    assert finish(start(tmp_path, *FLAGS)) == 0, (tmp_path / "train.log").read_text()[-3000:]
    log = (tmp_path / "train.log").read_text()
    resumed_at = int(log.split("resumed from")[1].split("at step ")[1].split()[0])
    assert resumed_at in (restored if isinstance(restored, tuple) else (restored,))
    assert not list((tmp_path / "checkpoints").glob("*_temp*"))
    assert_continues_exactly(tmp_path, uninterrupted)


def test_sigkill_mid_epoch_reading_from_disk_then_rerun_continues_exactly(tmp_path, jpegs_data_dir):
    """The same through the disk path (tfds ArrayRecord, random-resized crops): 4 epochs of 6 steps of 40, calls
    of at most 3 steps, a log point every 4 steps and a checkpoint every 8; killed after the 5th call (step 11),
    resumed at step 8, the 3rd step of the 2nd epoch."""
    flags = (
        "--config.dataset=generated_jpegs",
        f"--config.data_dir={jpegs_data_dir}",
        "--config.input_path=disk",
        "--config.image_size=32,32",
        "--config.batch_size=40",
        "--config.epochs=4",
        "--config.steps_per_loop=3",
        "--config.log_every_steps=4",
        "--config.checkpoint_every_steps=8",
        "--config.eval_every_epochs=2",
    )
    (tmp_path / "killed").mkdir()
    (tmp_path / "uninterrupted").mkdir()
    assert finish(start(tmp_path / "uninterrupted", *flags)) == 0
    assert "input: read from disk by index" in (tmp_path / "uninterrupted" / "train.log").read_text()
    assert strict_json(tmp_path / "uninterrupted" / "config.json")["derived"]["input"] == "disk"
    assert finish(start(tmp_path / "killed", *flags, script="tests/run_with_fault.py train 5")) == -signal.SIGKILL
    assert finish(start(tmp_path / "killed", *flags)) == 0, (tmp_path / "killed" / "train.log").read_text()[-3000:]
    log = (tmp_path / "killed" / "train.log").read_text()
    assert log.split("resumed from")[1].split("at step ")[1].split()[0] == "8"
    assert_continues_exactly(tmp_path / "killed", tmp_path / "uninterrupted", total=24)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_saves_where_the_run_is_and_the_rerun_continues_exactly(tmp_path, uninterrupted, sig):
    process = start(tmp_path, *FLAGS)
    wait_for_step(tmp_path, 25, process)
    process.send_signal(sig)
    assert finish(process) == EXIT_CODES["preempted"], (tmp_path / "train.log").read_text()[-3000:]
    summary = strict_json(tmp_path / "summary.json")
    assert summary["status"] == "preempted" and 25 <= summary["steps"] < TOTAL
    assert tf.train.latest_checkpoint(str(tmp_path / "checkpoints")).endswith(f"ckpt-{summary['steps']}")
    assert not (tmp_path / "model.keras").exists()
    log = (tmp_path / "train.log").read_text()
    assert f"pre-empted at step {summary['steps']}" in log and "rerun the same command to resume" in log
    assert finish(start(tmp_path, *FLAGS)) == 0
    assert f"at step {summary['steps']}" in (tmp_path / "train.log").read_text().split("resumed from")[1]
    assert_continues_exactly(tmp_path, uninterrupted)


def test_sigterm_to_one_of_two_workers_saves_both_at_the_same_step(tmp_path):
    environments = worker_environments(2)
    flags = (*FLAGS, "--config.sync_batch_norm=True")  # one set of BatchNorm statistics, as in test_trainer

    def launch():
        return [start(tmp_path, *flags, log_name=f"worker{i}.log", environment=e) for i, e in enumerate(environments)]

    workers = launch()
    wait_for_step(tmp_path, 15, workers[0])
    workers[1].send_signal(signal.SIGTERM)
    codes = [finish(worker) for worker in workers]
    logs = [(tmp_path / f"worker{i}.log").read_text() for i in range(2)]
    assert codes == [EXIT_CODES["preempted"]] * 2, [log[-3000:] for log in logs]
    saved = [tf.train.latest_checkpoint(str(tmp_path / d)) for d in ("checkpoints", "checkpoints_worker1")]
    steps = {int(path.rsplit("-", 1)[1]) for path in saved}
    assert len(steps) == 1 and 15 <= steps.pop() < TOTAL, saved
    assert strict_json(tmp_path / "summary.json")["status"] == "preempted"

    workers = launch()  # the same commands again: both resume from the step they saved together
    assert [finish(worker) for worker in workers] == [0, 0]
    assert strict_json(tmp_path / "summary.json")["steps"] == TOTAL
    assert_same_state(run_state(str(tmp_path / "checkpoints")), run_state(str(tmp_path / "checkpoints_worker1")))


def launch_workers(workdir, *flags):
    """Two workers on localhost ports, each with its own log."""
    environments = worker_environments(2)
    flags = (*FLAGS, "--config.sync_batch_norm=True", *flags)  # one set of BatchNorm statistics
    return [start(workdir, *flags, log_name=f"worker{i}.log", environment=e) for i, e in enumerate(environments)]


def resumed_step(log):
    """The step a run's log says it resumed from."""
    return int(log.split("resumed from")[-1].split("at step ")[1].split()[0])


def test_a_worker_behind_the_chief_resumes_from_the_chiefs_copy(tmp_path):
    assert [finish(worker) for worker in launch_workers(tmp_path, "--config.stop_at_step=20")] == [0, 0]
    # Worker 1 as if killed before its save of step 20 was written (the chief's was): it has only step 10.
    own = tmp_path / "checkpoints_worker1"
    for name in own.glob("ckpt-20.*"):
        name.unlink()
    checkpoints.write_state_file(str(own), [str(own / "ckpt-10")])
    workers = launch_workers(tmp_path)
    codes = [finish(worker) for worker in workers]  # a hang is killed by finish's timeout, and fails here
    logs = [(tmp_path / f"worker{i}.log").read_text() for i in range(2)]
    assert codes == [0, 0], [log[-3000:] for log in logs]
    assert "this worker has no checkpoint at step 20: restoring a copy of the chief's" in logs[1]
    assert resumed_step(logs[0]) == resumed_step(logs[1]) == 20
    assert strict_json(tmp_path / "summary.json")["steps"] == TOTAL
    assert [h["step"] for h in history(tmp_path) if h["kind"] == "train"] == list(range(5, TOTAL + 1, 5))
    assert_same_state(run_state(str(tmp_path / "checkpoints")), run_state(str(own)))


def test_a_one_process_run_resumed_on_two_workers_continues_from_its_checkpoint(tmp_path):
    """Any replica count on resume: the second worker has no checkpoint of its own and restores the chief's; the
    only copy of the run so far is never deleted."""
    single = ("--config.sync_batch_norm=True", "--config.stop_at_step=20")
    assert finish(start(tmp_path, *FLAGS, *single)) == 0, (tmp_path / "train.log").read_text()[-3000:]
    workers = launch_workers(tmp_path)
    codes = [finish(worker) for worker in workers]
    logs = [(tmp_path / f"worker{i}.log").read_text() for i in range(2)]
    assert codes == [0, 0], [log[-3000:] for log in logs]
    assert resumed_step(logs[0]) == resumed_step(logs[1]) == 20 and "removing" not in logs[0]
    summary = strict_json(tmp_path / "summary.json")
    assert summary["steps"] == TOTAL and summary["replicas"] == 2
    assert [h["step"] for h in history(tmp_path) if h["kind"] == "train"] == list(range(5, TOTAL + 1, 5))


def test_a_worker_whose_peer_is_killed_exits_with_the_retryable_code(tmp_path):
    workers = launch_workers(tmp_path)
    wait_for_step(tmp_path, 15, workers[0])
    os.killpg(workers[1].pid, signal.SIGKILL)
    code = finish(workers[0], timeout=180)
    log = (tmp_path / "worker0.log").read_text()
    assert code == EXIT_CODES["peer_lost"] == 129, log[-3000:]
    assert "lost a peer worker after step" in log and "Traceback" not in log
    assert strict_json(tmp_path / "summary.json")["status"] == "peer_lost"


def test_divergence_stops_with_its_code_and_keeps_the_last_good_checkpoint(tmp_path):
    flags = (
        "--config.lr=1000",
        "--config.steps_per_loop=1",
        "--config.log_every_steps=1",
        "--config.checkpoint_every_steps=2",
    )
    code = finish(start(tmp_path, *flags))
    log = (tmp_path / "train.log").read_text()
    assert code == EXIT_CODES["diverged"], log[-3000:]
    summary = strict_json(tmp_path / "summary.json")
    assert summary["status"] == "diverged" and summary["eval_accuracy"] is None
    # It stopped at the first check that saw it: the loss after each call, the weights before each save.
    logged = [h["step"] for h in history(tmp_path)]
    assert logged == list(range(1, len(logged) + 1)) and summary["steps"] - len(logged) in (0, 1)
    assert f"at step {summary['steps']}" in log and "--mode=lr_find" in log
    assert not (tmp_path / "model.keras").exists()
    latest = tf.train.latest_checkpoint(str(tmp_path / "checkpoints"))
    assert int(latest.rsplit("-", 1)[1]) == (summary["steps"] - 1) // 2 * 2
    for name, value in run_state(str(tmp_path / "checkpoints")).items():
        assert tf.reduce_all(tf.math.is_finite(tf.cast(value, tf.float64))), name
    for path in tmp_path.glob("*.json"):
        strict_json(path)
    assert os.path.getsize(tmp_path / "history.jsonl") > 0


@pytest.fixture
def small_disk(tmp_path):
    """A 64 MiB file system of its own (tmpfs, mounted as root does), unmounted afterwards."""
    mount = tmp_path / "disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_disk_that_fills_between_checkpoints_stops_with_its_code_and_the_rerun_resumes(small_disk, uninterrupted):
    run = start(small_disk, *FLAGS)
    wait_for_step(small_disk, 12, run)  # past the checkpoint at step 10
    filler = small_disk / "filler"
    subprocess.run(["dd", "if=/dev/zero", f"of={filler}", "bs=1M", "count=64"], capture_output=True, check=False)
    code = finish(run)
    log = (small_disk / "train.log").read_text()
    assert code == EXIT_CODES["disk_full"] == 28, log[-3000:]
    assert "error: no space left on the disk of" in log and "Traceback" not in log
    assert "is usable: free some space and rerun the same command" in log
    filler.unlink()
    (small_disk / "train.log").write_text("")  # the rerun's log alone
    assert finish(start(small_disk, *FLAGS)) == 0, (small_disk / "train.log").read_text()[-3000:]
    assert_continues_exactly(small_disk, uninterrupted)


@pytest.mark.parametrize("under_nohup", [False, True])
def test_a_worker_whose_peer_never_starts_says_so_and_gives_up(tmp_path, under_nohup):
    lonely = start(
        tmp_path,
        *FLAGS,
        "--config.cluster_wait_seconds=25",
        environment=worker_environments(2)[0],
        ignored=(signal.SIGHUP,) if under_nohup else (),  # nohup ignores SIGHUP: the watchdog must still end it
    )
    code = finish(lonely, timeout=120)
    log = (tmp_path / "train.log").read_text()
    assert code == -signal.SIGHUP and EXIT_CODES["peer_lost"] == 128 + signal.SIGHUP, log[-3000:]  # 129 in a shell
    assert "waiting for the cluster" in log and "this is worker 0 of [worker localhost:" in log
    assert "error: the cluster did not form in 25 s" in log and "--config.cluster_wait_seconds" in log
    assert sorted(path.name for path in tmp_path.iterdir()) == ["train.log"]  # nothing of the run was written


def test_a_signal_is_acknowledged_at_once_while_the_compiled_call_runs_on(tmp_path):
    """SIGTERM 0.5 s into a call of 100 steps (seconds long): the acknowledgement, naming the call, comes within a
    second, before the call returns; then the run saves and exits as pre-empted."""
    flags = ("--config.dataset=synthetic", "--config.epochs=40", "--config.steps_per_loop=100")
    flags += ("--config.log_every_steps=1000", "--config.checkpoint_every_steps=1000", "--config.eval_every_epochs=0")
    code = finish(start(tmp_path, *flags, script="tests/run_with_fault.py train-sigterm 3"))
    lines = (tmp_path / "train.log").read_text().splitlines()
    assert code == EXIT_CODES["preempted"], "\n".join(lines[-30:])
    sent = next(i for i, line in enumerate(lines) if line.endswith("sending SIGTERM"))
    acknowledged = next(i for i, line in enumerate(lines) if "SIGTERM received: stopping" in line)
    returned = next(i for i, line in enumerate(lines) if line.endswith("the call into the loop returned"))
    assert sent < acknowledged < returned
    assert "The call in flight (100 steps, at most about" in lines[acknowledged]
    seconds = [_log_seconds(lines[i]) for i in (sent, acknowledged, returned)]
    assert seconds[1] - seconds[0] < 1.0 and seconds[2] - seconds[0] > 1.0, seconds  # at once; the call went on
    assert "pre-empted at step 201" in "\n".join(lines[returned:])  # after calls of 1 (compiling), 100 and 100


def _log_seconds(line):
    """The time of day of an absl log line ("I1202 07:38:32.181231 ..."), in seconds."""
    hours, minutes, seconds = line.split()[1].split(":")
    return 3600 * int(hours) + 60 * int(minutes) + float(seconds)


def test_sigterm_during_the_export_is_acknowledged_and_the_run_completes(tmp_path):
    code = finish(start(tmp_path, *FLAGS, script="tests/run_with_fault.py export-sigterm 1"))
    log = (tmp_path / "train.log").read_text()
    assert code == 0, log[-3000:]
    assert "SIGTERM received: the run is finishing (its last evaluation, the export and the summary)" in log
    assert strict_json(tmp_path / "summary.json")["status"] == "completed"
    import keras

    assert keras.models.load_model(tmp_path / "model.keras").output.shape[-1] == 10  # written whole


def test_a_second_ctrl_c_stops_at_once_without_saving_and_the_rerun_resumes(tmp_path):
    """Two SIGINTs inside one compiled call of 40 steps: the process ends at once (130), with the last checkpoint
    as `kill -9` would leave it, and the rerun ends where an uninterrupted run does."""
    longer = {"steps_per_loop": 40, "log_every_steps": 40, "checkpoint_every_steps": 40, "eval_every_epochs": 0}
    flags = tuple(flag for flag in FLAGS if flag.split("=")[0].removeprefix("--config.") not in longer)
    flags += (*(f"--config.{field}={value}" for field, value in longer.items()), "--config.max_call_seconds=1e9")
    (tmp_path / "straight").mkdir()
    (tmp_path / "stopped").mkdir()
    assert finish(start(tmp_path / "straight", *flags)) == 0
    process = start(tmp_path / "stopped", *flags)
    wait_for_step(tmp_path / "stopped", 40, process)  # the log of step 40, then its checkpoint, then steps 41-80
    deadline = time.monotonic() + 60
    while not (tmp_path / "stopped" / "checkpoints" / "ckpt-40.index").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(1.0)  # into the call of 40 steps (several seconds)
    process.send_signal(signal.SIGINT)
    time.sleep(0.3)
    sent = time.monotonic()
    process.send_signal(signal.SIGINT)
    code = finish(process)
    log = (tmp_path / "stopped" / "train.log").read_text()
    assert code == INTERRUPTED == 130 and time.monotonic() - sent < 5, log[-3000:]
    assert "a second Ctrl-C: stopping at once, without saving; the last checkpoint is" in log and "ckpt-40" in log
    assert tf.train.latest_checkpoint(str(tmp_path / "stopped" / "checkpoints")).endswith("ckpt-40")
    assert finish(start(tmp_path / "stopped", *flags)) == 0
    assert_continues_exactly(tmp_path / "stopped", tmp_path / "straight")


def test_ctrl_c_in_the_lr_sweep_is_one_line_and_its_code(tmp_path):
    """Started as a shell's background job (SIGINT ignored, inherited): kill -INT still stops the sweep."""
    flags = ("--mode=lr_find", "--config.lr_find.num_steps=2000", "--config.dataset=synthetic")
    process = start(tmp_path, *flags, ignored=(signal.SIGINT,))
    deadline = time.monotonic() + 120
    while "lr_find step" not in (tmp_path / "train.log").read_text() and time.monotonic() < deadline:
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    code = finish(process)
    lines = (tmp_path / "train.log").read_text().strip().splitlines()
    assert code == INTERRUPTED and "Traceback" not in "\n".join(lines), lines[-30:]
    assert lines[-1] == "interrupted (Ctrl-C): stopped without saving; rerun the same command to resume"


def test_a_worker_whose_port_is_taken_names_it_and_exits_2(tmp_path):
    environments = worker_environments(2)
    address = json.loads(environments[1]["TF_CONFIG"])["cluster"]["worker"][1]
    with socket.socket() as holder:  # another program (or a worker started twice as index 1) holds its port
        holder.bind(("", int(address.rpartition(":")[2])))
        holder.listen()
        started = time.monotonic()
        code = finish(start(tmp_path, *FLAGS, environment=environments[1]), timeout=120)
    log = (tmp_path / "train.log").read_text()
    assert code == 2 and time.monotonic() - started < 60, log[-3000:]
    assert f"this worker (worker 1 of the cluster) cannot listen on its address {address}" in log.splitlines()[-1]
    assert "Traceback" not in log and sorted(p.name for p in tmp_path.iterdir()) == ["train.log"]


@pytest.mark.parametrize("state_file", ["lost", "garbled"])
def test_a_lost_or_garbled_state_file_still_refuses_another_config_and_resumes_this_one(
    tmp_path, uninterrupted, state_file
):
    assert finish(start(tmp_path, *FLAGS, "--config.stop_at_step=20")) == 0
    state = tmp_path / "checkpoints" / "checkpoint"
    if state_file == "lost":
        state.unlink()
    else:
        state.write_bytes(bytes(range(256)) * 4)  # random bytes: not even text
    recorded = (tmp_path / "config.json").read_bytes()
    for change, named in (("--config.width=0.5", "width: 0.25 -> 0.5"), ("--config.lr=0.05", "lr: 0.4 -> 0.05")):
        code = finish(start(tmp_path, *FLAGS, change))
        last = (tmp_path / "train.log").read_text().strip().splitlines()[-1]
        assert code == 2 and named in last and last.startswith("error: workdir"), last
        assert (tmp_path / "config.json").read_bytes() == recorded  # nothing rewritten before a restore
    (tmp_path / "train.log").write_text("")
    assert finish(start(tmp_path, *FLAGS)) == 0, (tmp_path / "train.log").read_text()[-3000:]
    assert resumed_step((tmp_path / "train.log").read_text()) == 20
    assert_continues_exactly(tmp_path, uninterrupted)


def test_checkpoints_without_their_config_are_refused_with_the_fix(tmp_path):
    assert finish(start(tmp_path, *FLAGS, "--config.stop_at_step=10")) == 0
    (tmp_path / "config.json").unlink()
    code = finish(start(tmp_path, *FLAGS, "--config.lr=0.05"))
    last = (tmp_path / "train.log").read_text().strip().splitlines()[-1]
    assert code == 2 and "holds checkpoints but no config.json" in last and "allow_config_change=True" in last
    assert not (tmp_path / "config.json").exists()


def corrupt_folder(root):
    """root/train/<class>/*.jpg (2 classes of 40 plain JPEGs) and root/test/..., one training JPEG garbled."""
    from PIL import Image

    for split, count in (("train", 40), ("test", 8)):
        for name in ("a", "b"):
            (root / split / name).mkdir(parents=True)
            for i in range(count):
                pixels = np.random.default_rng(i).integers(0, 255, (40, 40, 3)).astype(np.uint8)
                Image.fromarray(pixels).save(root / split / name / f"{i}.jpg")
    (root / "train" / "b" / "7.jpg").write_bytes(b"\xff\xd8\xff\xe0" + b"garbage" * 30)
    return root / "train" / "b" / "7.jpg"


@pytest.mark.parametrize("input_path", ["disk", "memory"])
def test_an_undecodable_image_is_named_or_skipped_on_both_paths(tmp_path, input_path):
    bad = corrupt_folder(tmp_path / "folder")
    flags = (
        "--config.dataset=image_folder",
        f"--config.data_dir={tmp_path / 'folder'}",
        "--config.image_size=32,32",
        f"--config.input_path={input_path}",
        "--config.batch_size=16",
        "--config.lr_reference_batch=16",
    )
    (tmp_path / "named").mkdir()
    code = finish(start(tmp_path / "named", *flags))
    last = (tmp_path / "named" / "train.log").read_text().strip().splitlines()[-1]
    assert code == 2 and f"cannot decode {bad}" in last and "--config.skip_bad_images=True" in last, last
    (tmp_path / "skipped").mkdir()
    assert finish(start(tmp_path / "skipped", *flags, "--config.skip_bad_images=True")) == 0
    log = (tmp_path / "skipped" / "train.log").read_text()
    assert f"skipped 1 undecodable or empty files of {tmp_path / 'folder' / 'train'}" in log and str(bad) in log
    assert strict_json(tmp_path / "skipped" / "summary.json")["steps"] == 3 * (79 // 16)
