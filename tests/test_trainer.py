"""The trainer end to end: real steps on the quick-start set under 1 and 2 replicas, resume, two workers."""

import dataclasses
import glob
import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
import tiny
from launch import free_ports

from configs.base import Config
from training import trainer

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = tiny.RESNET9 | dict(steps_per_loop=4, log_every_steps=4, checkpoint_every_steps=8)


def tiny_config(**overrides):
    return Config(**(TINY | overrides))


def assert_run_outputs(workdir, summary, steps):
    assert summary["steps"] == steps
    assert glob.glob(os.path.join(workdir, "checkpoints", f"ckpt-{steps}.index"))
    assert glob.glob(os.path.join(workdir, "tensorboard", "events.out.tfevents.*"))
    with open(os.path.join(workdir, "summary.json")) as f:
        written = json.load(f)
    assert written["eval_accuracy"] == summary["eval_accuracy"] and np.isfinite(written["eval_loss"])
    with open(os.path.join(workdir, "config.json")) as f:
        derived = json.load(f)["derived"]
    assert derived["total_steps"] == 10_000 // 64 and derived["max_lr"] == 0.4 and derived["input"] == "memory"


def test_trains_on_one_device(tmp_path):
    summary = trainer.train_and_evaluate(tiny_config(stop_at_step=40), str(tmp_path))
    assert_run_outputs(str(tmp_path), summary, 40)
    losses = [h["loss"] for h in summary["history"]]
    assert all(np.isfinite(losses)) and np.mean(losses[-3:]) < losses[0] - 0.1
    assert summary["replicas"] == 1


@pytest.mark.slow
def test_trains_on_two_replicas_with_xla(tmp_path, two_replicas):
    config = tiny_config(stop_at_step=16, jit_compile=True, augment_on_device=True)
    summary = trainer.train_and_evaluate(config, str(tmp_path), strategy=two_replicas)
    assert_run_outputs(str(tmp_path), summary, 16)
    assert summary["replicas"] == 2 and all(np.isfinite(h["loss"]) for h in summary["history"])
    assert summary["history"][-1]["loss"] < summary["history"][0]["loss"]


@pytest.mark.slow
def test_the_exported_model_takes_raw_images_and_predicts_as_the_evaluation_did(tmp_path):
    import keras

    import input_pipeline
    import models

    config = tiny_config(epochs=1, batch_size=2000, lr_reference_batch=2000)
    summary = trainer.train_and_evaluate(config, str(tmp_path))
    assert summary["steps"] == 5
    exported = keras.models.load_model(os.path.join(tmp_path, "model.keras"))
    assert exported.input.dtype == "uint8" and tuple(exported.output.shape) == (None, 10)
    data = input_pipeline.load(Config(dataset="quickstart"))
    logits = exported.predict(data.eval_images, batch_size=500, verbose=0)
    assert np.mean(np.argmax(logits, -1) == data.eval_labels) == pytest.approx(summary["eval_accuracy"], abs=1e-4)
    # The same logits as the trained network (restored from the run's checkpoint) on normalised images.
    network = models.create_model("resnet9", (32, 32, 3), 10, width=0.125)
    tf.train.Checkpoint(model=network).restore(
        tf.train.latest_checkpoint(str(tmp_path / "checkpoints"))
    ).expect_partial()
    reference = network(input_pipeline.normalise(data.eval_images[:100], data), training=False)
    np.testing.assert_allclose(logits[:100], reference.numpy(), rtol=1e-4, atol=1e-4)


@pytest.mark.slow
def test_rerunning_a_finished_run_changes_nothing(tmp_path):
    config = tiny_config(stop_at_step=4)
    first = trainer.train_and_evaluate(config, str(tmp_path))
    files = {path: path.read_bytes() for path in tmp_path.rglob("*") if path.is_file() and path.name != "run.lock"}
    again = trainer.train_and_evaluate(config, str(tmp_path))
    assert {path: path.read_bytes() for path in files} == files and set(tmp_path.rglob("*")) >= set(files)
    assert again["train_seconds"] == first["train_seconds"] and again["steps"] == 4
    assert trainer.train_and_evaluate(dataclasses.replace(config, stop_at_step=8), str(tmp_path))["steps"] == 8


@pytest.mark.slow
def test_resume_continues_the_same_schedule_and_data(tmp_path):
    config = tiny_config(log_every_steps=1, checkpoint_every_steps=4, stop_at_step=12)
    whole = trainer.train_and_evaluate(config, str(tmp_path / "whole"))
    first = trainer.train_and_evaluate(dataclasses.replace(config, stop_at_step=6), str(tmp_path / "split"))
    second = trainer.train_and_evaluate(config, str(tmp_path / "split"))  # the same command again: resumes at 6
    assert first["steps"] == 6 and second["steps"] == whole["steps"] == 12
    resumed = second["history"]  # the curve of the first process is carried over from history.jsonl
    assert [h["step"] for h in first["history"]] == list(range(1, 7))
    assert [h["step"] for h in resumed] == [h["step"] for h in whole["history"]] == list(range(1, 13))
    for a, b in zip(resumed, whole["history"]):
        assert (a["lr"], a["momentum"]) == (b["lr"], b["momentum"])
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-4)  # same batches, same augmentation
    assert second["eval_accuracy"] == pytest.approx(whole["eval_accuracy"], abs=1e-3)
    # The timers count on from the checkpoint: both processes' training, and two compilations.
    assert (first["processes"], second["processes"], whole["processes"]) == (1, 2, 1)
    assert second["train_seconds"] > first["train_seconds"] and second["compile_seconds"] > first["compile_seconds"]


@pytest.mark.slow
def test_two_workers_on_localhost_end_with_identical_weights(tmp_path):
    cluster = {"worker": [f"localhost:{port}" for port in free_ports(2)]}
    # Synchronized BatchNorm: with per-replica BN each worker keeps its own moving statistics (by design).
    settings = TINY | dict(stop_at_step=8, checkpoint_every_steps=8, sync_batch_norm=True)
    overrides = [f"--config.{k}={v}" for k, v in settings.items()]
    workers = []
    for index in range(2):
        environment = os.environ | {
            "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}}),
            "CUDA_VISIBLE_DEVICES": "",
        }
        command = [sys.executable, "train.py", "--config=configs/quickstart.py", f"--workdir={tmp_path}", *overrides]
        with open(tmp_path / f"worker{index}.log", "w") as log:
            workers.append(
                subprocess.Popen(
                    command, cwd=REPO, env=environment, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
                )
            )
    try:
        codes = [worker.wait(timeout=240) for worker in workers]
    finally:
        for worker in workers:  # a worker whose peer never came ignores SIGTERM: kill hard
            if worker.poll() is None:
                os.killpg(worker.pid, signal.SIGKILL)
    logs = [(tmp_path / f"worker{i}.log").read_text()[-3000:] for i in range(2)]
    assert codes == [0, 0], logs
    chief = tf.train.load_checkpoint(str(tmp_path / "checkpoints"))
    other = tf.train.load_checkpoint(str(tmp_path / "checkpoints_worker1"))

    # Every tensor: weights, BatchNorm statistics, optimizer slots and step counters (not the object graph, nor
    # each worker's own clock).
    def state(reader):
        return sorted(
            n
            for n in reader.get_variable_to_shape_map()
            if n.split("/")[0] not in ("_CHECKPOINTABLE_OBJECT_GRAPH", "timers")
        )

    names = state(chief)
    assert names == state(other) and any(n.startswith("timers") for n in chief.get_variable_to_shape_map())
    assert len(names) >= 25 + 16 + 25  # 25 trainable variables, 16 BN statistics, a momentum slot per trainable
    for name in names:
        np.testing.assert_array_equal(chief.get_tensor(name), other.get_tensor(name))
    with open(tmp_path / "summary.json") as f:
        assert json.load(f)["replicas"] == 2


@pytest.mark.slow
@pytest.mark.parametrize("precision", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_trains_with_float32_logits(tmp_path, precision):
    import keras

    try:
        summary = trainer.train_and_evaluate(tiny_config(precision=precision, stop_at_step=8), str(tmp_path))
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert summary["precision"] == precision and summary["steps"] == 8  # applied updates, even if a batch was skipped
    assert all(np.isfinite(h["loss"]) for h in summary["history"]) and np.isfinite(summary["eval_loss"])
    assert summary["history"][-1]["momentum"] < 0.95  # read through the LossScaleOptimizer for float16


@pytest.mark.slow
def test_tta_at_the_end_evaluates_one_view_during_training_and_both_at_the_end(tmp_path):
    """With eval_tta_at="end", the evaluations during training are the plain ones a run without TTA makes (same
    training: TTA changes no step), and the final one records the plain accuracy beside the TTA one."""
    config = tiny_config(stop_at_step=24, eval_every_epochs=0.05, eval_flip=False)  # an eval every 8 steps
    plain = trainer.train_and_evaluate(config, str(tmp_path / "plain"))["evaluations"]
    config = dataclasses.replace(config, eval_flip=True, eval_tta_at="end")
    tta = trainer.train_and_evaluate(config, str(tmp_path / "tta"))["evaluations"]
    assert [e["step"] for e in tta] == [8, 16, 24]
    for with_tta, without in zip(tta[:-1], plain[:-1]):
        assert (with_tta["views"], with_tta["accuracy"], with_tta["loss"]) == (1, without["accuracy"], without["loss"])
    final, final_plain = tta[-1], plain[-1]
    assert final["views"] == 2 and final["loss"] != final_plain["loss"]
    assert (final["plain_accuracy"], final["plain_loss"]) == (final_plain["accuracy"], final_plain["loss"])


@pytest.mark.slow
def test_target_crossing_is_the_first_evaluation_at_or_above_it(tmp_path):
    config = tiny_config(stop_at_step=40, eval_every_epochs=0.05, target_accuracy=0.2)  # an eval every 8 steps
    summary = trainer.train_and_evaluate(config, str(tmp_path / "on"))
    evaluations = summary["evaluations"]
    assert [e["step"] for e in evaluations] == [8, 16, 24, 32, 40]
    first = next(e for e in evaluations if e["accuracy"] >= 0.2)  # fails the test if the target is never reached
    assert summary["target"] == first and summary["status"] == "stopped"
    for e in evaluations:  # every record's times are consistent
        assert e["train_seconds"] + e["eval_seconds"] + e["compile_seconds"] <= e["wall_seconds"]
    assert [e["train_seconds"] for e in evaluations] == sorted(e["train_seconds"] for e in evaluations)

    # Dawnbench: stop at the crossing; the run is finished there and exports its model.
    stopped = trainer.train_and_evaluate(dataclasses.replace(config, stop_at_target=True), str(tmp_path / "stop"))
    assert stopped["status"] == "target_reached" and stopped["steps"] == first["step"]
    assert stopped["evaluations"][-1]["step"] == first["step"]  # no second evaluation at the stopping step
    assert os.path.exists(tmp_path / "stop" / "model.keras")


@pytest.mark.slow
@pytest.mark.parametrize("replicas", [1, 2])
def test_ema_weights_are_evaluated_exported_and_resumed(tmp_path, replicas, two_replicas):
    import keras

    import input_pipeline

    strategy = two_replicas if replicas == 2 else None
    # Synchronized BatchNorm on 2 replicas: the statistics every replica evaluates with are then replica 0's, the
    # ones the exported model holds (per-replica statistics would make its accuracy differ from the run's).
    config = tiny_config(
        batch_size=2000,
        lr_reference_batch=2000,
        epochs=2,
        ema_momentum=0.8,
        log_every_steps=5,
        checkpoint_every_steps=5,
        sync_batch_norm=replicas == 2,
    )
    whole = trainer.train_and_evaluate(config, str(tmp_path / "whole"), strategy=strategy)
    trainer.train_and_evaluate(dataclasses.replace(config, stop_at_step=3), str(tmp_path / "split"), strategy=strategy)
    resumed = trainer.train_and_evaluate(config, str(tmp_path / "split"), strategy=strategy)
    assert whole["steps"] == resumed["steps"] == 10
    exported = keras.models.load_model(tmp_path / "whole" / "model.keras")
    again = keras.models.load_model(tmp_path / "split" / "model.keras")
    for a, b in zip(exported.weights, again.weights):  # the average survives the restart
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-4, atol=1e-6)

    # The exported weights are the moving averages, not the last weights (which the checkpoint holds).
    import models

    last = models.create_model("resnet9", (32, 32, 3), 10, width=0.125)
    tf.train.Checkpoint(model=last).restore(
        tf.train.latest_checkpoint(tmp_path / "whole" / "checkpoints")
    ).assert_existing_objects_matched()
    differences = [
        np.abs(a.numpy() - b.numpy()).max() for a, b in zip(last.trainable_weights, exported.trainable_weights)
    ]
    assert min(differences) > 1e-7
    # ... and evaluation used them: the exported model's accuracy on the evaluation set is the run's.
    data = input_pipeline.load(Config(dataset="quickstart"))
    logits = exported.predict(data.eval_images, batch_size=500, verbose=0)  # raw images: it normalises them
    accuracy = np.mean(np.argmax(logits, -1) == data.eval_labels)
    assert accuracy == pytest.approx(whole["eval_accuracy"], abs=1e-3)


@pytest.mark.slow
@pytest.mark.parametrize("replicas, augment_on_device", [(1, False), (2, False), (1, True)])
def test_data_on_device_trains_on_the_same_batches_and_resumes(tmp_path, replicas, augment_on_device, two_replicas):
    """The training set held on the device gives the tf.data path's batches: the same losses, step by step
    (with augment_on_device too: augmented once, in the step, not a second time)."""
    strategy = two_replicas if replicas == 2 else None
    config = tiny_config(
        log_every_steps=1,
        checkpoint_every_steps=4,
        stop_at_step=10,
        batch_size=2000,
        lr_reference_batch=2000,
        epochs=3,  # 5 steps an epoch: crosses an epoch boundary
        augment_on_device=augment_on_device,
    )
    fed = trainer.train_and_evaluate(config, str(tmp_path / "fed"), strategy=strategy)
    on_device = dataclasses.replace(config, data_on_device=True)
    trainer.train_and_evaluate(dataclasses.replace(on_device, stop_at_step=6), str(tmp_path / "dev"), strategy)
    resident = trainer.train_and_evaluate(on_device, str(tmp_path / "dev"), strategy=strategy)  # resumed at 6
    assert [h["step"] for h in resident["history"]] == [h["step"] for h in fed["history"]] == list(range(1, 11))
    losses = [(a["loss"], b["loss"]) for a, b in zip(resident["history"], fed["history"])]
    # Step 1 is bit-identical; after it the gather and normalisation inside the training graph round differently
    # from tf.data's, and training near the peak lr amplifies that about tenfold a step.
    np.testing.assert_allclose(*zip(*losses[:4]), rtol=1e-4)
    np.testing.assert_allclose(*zip(*losses), rtol=5e-3)


@pytest.mark.slow
def test_progress_lines_come_on_time_as_well_as_at_log_steps(tmp_path, monkeypatch, caplog):
    import logging

    from training import report

    monkeypatch.setattr(report, "PROGRESS_SECONDS", 0.0)  # a line after every call
    config = tiny_config(log_every_steps=100, checkpoint_every_steps=100, stop_at_step=5, max_call_seconds=1e-9)
    with caplog.at_level(logging.INFO):
        trainer.train_and_evaluate(config, str(tmp_path))
    messages = [record.getMessage() for record in caplog.records]
    assert any(m.startswith("compiling the training step") for m in messages)
    assert any(m.startswith("compiled and ran the first step in") for m in messages)
    progress = [m.split("/")[0] for m in messages if m.startswith("step ") and "loss" not in m]
    assert progress == ["step 2", "step 3", "step 4"]  # steps 1..4 by time (1: the compiling call); 5 is logged
