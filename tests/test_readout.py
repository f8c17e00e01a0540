"""training/readout.py: the lines a person reads at a run's start and end, checked for what they say."""

from configs.base import Config
from training.plan import derive_plan
from training.readout import plan_lines, result_lines


def summary(**overrides):
    """A summary as `training.report.run_summary` makes it: 78 steps of 39 an epoch, two evaluations."""
    evaluations = [
        {"step": 39, "epoch": 1.0, "accuracy": 0.91, "loss": 0.5, "train_seconds": 3.5, "dawnbench_seconds": 9.0},
        {"step": 78, "epoch": 2.0, "accuracy": 0.8925, "loss": 0.6, "train_seconds": 7.0, "dawnbench_seconds": 13.0},
    ]
    values = {
        "status": "completed",
        "steps": 78,
        "total_steps": 78,
        "epochs": 2.0,
        "eval_accuracy": 0.8925,
        "eval_split": "test",
        "eval_examples": 2000,
        "evaluations": evaluations,
        "target_accuracy": 0.9,
        "target": evaluations[0],
        "train_seconds": 7.04,
        "compile_seconds": 1.06,
        "eval_seconds": 0.5,
        "data_seconds": 4.2,
        "dawnbench_seconds": 13.2,
        "wall_seconds": 13.7,
        "images_per_second": 2614.4,
        "replicas": 2,
        "precision": "float32",
        "global_batch": 256,
    }
    return values | overrides


def lines_by_label(text):
    return {line.split()[0]: " ".join(line.split()[1:]) for line in text.splitlines()}


def test_the_results_say_status_accuracy_target_clocks_speed_and_files():
    lines = lines_by_label(result_lines(summary(), "runs/q", "runs/q/model.keras"))
    assert lines["status"] == "completed at step 78 of 78 (2.00 epochs)"
    assert lines["accuracy"] == "89.25% final, 91.00% best (epoch 1.00), on test (2,000 examples)"
    assert lines["target"] == "90.00% reached at epoch 1.00 (train 3.5 s, dawnbench 9.0 s)"
    assert lines["seconds"] == "train 7.0 compile 1.1 eval 0.5 data 4.2 dawnbench 13.2 wall 13.7"
    assert lines["speed"] == "2,614 images/s over train_seconds (2 replicas, float32, global batch 256)"
    assert lines["files"].startswith("runs/q: summary.json")
    assert lines["model"] == "runs/q/model.keras (class names: classes.json beside it)"
    assert lines["curves"] == "tensorboard --logdir runs/q/tensorboard"


def test_a_run_without_target_evaluation_or_model_leaves_those_lines_out():
    text = result_lines(summary(target_accuracy=None, target=None), "w")
    assert "target" not in lines_by_label(text) and "model" not in lines_by_label(text)
    missed = lines_by_label(result_lines(summary(target_accuracy=0.95, target=None), "w"))
    assert missed["target"] == "95.00% not reached"
    empty = result_lines(summary(status="diverged", evaluations=[], eval_accuracy=None, images_per_second=None), "w")
    assert {"accuracy", "speed"}.isdisjoint(lines_by_label(empty))


def test_the_plan_says_model_data_length_batch_schedule_evaluation_and_how_it_runs():
    import types

    config = Config(epochs=2, batch_size=256, lr=0.4, stop_at_step=50, eval_every_epochs=1, width=0.25)
    data = types.SimpleNamespace(name="quickstart", num_train=10_000, image_shape=(32, 32, 3), num_classes=10)
    lines = lines_by_label(plan_lines(derive_plan(config, 10_000, 2, "memory"), config, data))
    assert lines["model"] == "resnet9, width 0.25, nesterov optimizer"
    assert lines["data"] == "quickstart: 10,000 training images of 32x32x3, 10 classes"
    assert lines["steps"] == "78 = 2 epochs x 39 steps, stopping at step 50"
    assert lines["batch"] == "256 global = 2 replicas x 128, over 10,000 training examples"
    assert lines["schedule"] == "onecycle, peak lr 0.2 (max_lr = 0.4 * batch 256 / 512)"  # the default reference
    assert lines["evaluation"] == "every 39 steps and at the end"
    assert lines["runs"] == "as float32, XLA off, input from memory"
