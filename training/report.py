"""What a run tells: its clocks, its curve (history.jsonl), a terminal line, TensorBoard scalars and JSON files.

Only the chief writes files. Every time a run reports follows one of `CONVENTIONS`, named wherever it is shown.
"""

import contextlib
import json
import os
import sys
import time

import numpy as np
import tensorflow as tf
from absl import logging

from training.progress_bar import ProgressBar
from training.workdir import WorkdirError

CONVENTIONS = {
    "train_seconds": "training steps only, as airbench counts: no compilation, evaluation, data preparation, "
    "checkpointing or logging (the first, compiling call of each process is counted as its steps at the "
    "steady rate)",
    "dawnbench_seconds": "wall time from the start of data preparation, as Dawnbench counts, without evaluation "
    "(compilation, checkpoints and logging included)",
    "compile_seconds": "tracing and XLA compilation: each call that compiles (the first of each process, and "
    "the first at each image size of progressive resizing), which runs one step, less one step at the steady rate",
    "eval_seconds": "evaluation, including its own first compilation",
    "data_seconds": "loading the dataset (none when a process's earlier run loaded it)",
    "prepare_seconds": "this process's preparation of the run after its data: the model and optimizer built and "
    "initialised (airbench94's whitening from the data), a checkpoint restored, the input pipelines and loops "
    "made; no compilation",
    "record_seconds": "prepare_seconds + train_seconds: what the CIFAR-10 speed records time (fulcrum's "
    "compute-honest protocol): each run's preparation and its training loop; not the build (compilation, "
    "data loading) nor the evaluation, test-time augmentation included",
    "wall_seconds": "everything from the start of data preparation",
}
PROGRESS_SECONDS = 30  # a progress line at least this often, whatever log_every_steps says
_CARRIED = ("train_seconds", "compile_seconds", "eval_seconds", "data_seconds", "wall_seconds", "processes")


class Clock:
    """The run's timers. Totals over restarts: what a checkpoint saved (`carried`) plus this process's time.

    Time spent after the last checkpoint of a killed process is lost with it; every restart adds a compilation.
    """

    def __init__(self):
        self.carried = tf.Variable(tf.zeros([len(_CARRIED)], tf.float64), trainable=False, name="timers")
        self.previous = dict.fromkeys(_CARRIED, 0.0)  # earlier processes' totals, read from `carried` on restore
        self.start = time.perf_counter()
        self.data_seconds = None
        self.prepare_seconds = None
        self.eval_seconds = 0.0
        self.compiling_calls = []  # (seconds, steps) of each call that compiled: the first, then new image sizes
        self.steady_seconds = 0.0
        self.steady_steps = 0

    def restored(self):
        """Takes the totals of the processes before this one from the (just restored, or still zero) checkpoint."""
        self.previous = dict(zip(_CARRIED, self.carried.numpy().tolist()))

    def data_loaded(self):
        self.data_seconds = time.perf_counter() - self.start

    def prepared(self):
        """The run is ready for its first step: what followed the data's load was its preparation."""
        self.prepare_seconds = time.perf_counter() - self.start - (self.data_seconds or 0.0)

    @property
    def first_call_seconds(self):
        """The time of the process's first call into the loop (None before it)."""
        return self.compiling_calls[0][0] if self.compiling_calls else None

    def time_training(self, fn, num_steps, compiling=False):
        """Runs fn() (num_steps training steps) and books its time; a call that compiles (`compiling`, and
        always the first) is booked apart."""
        start = time.perf_counter()
        fn()
        seconds = time.perf_counter() - start
        if compiling or not self.compiling_calls:
            self.compiling_calls.append((seconds, num_steps))
        else:
            self.steady_seconds += seconds
            self.steady_steps += num_steps

    @contextlib.contextmanager
    def evaluating(self):
        start = time.perf_counter()
        yield
        self.eval_seconds += time.perf_counter() - start

    @property
    def step_seconds(self):
        """Mean seconds per step after the first call (or including it, if there was only one)."""
        if self.steady_steps:
            return self.steady_seconds / self.steady_steps
        if not self.compiling_calls:
            return None
        seconds, steps = self.compiling_calls[0]
        return seconds / max(steps, 1)

    def images_per_second(self, global_batch):
        return global_batch / self.step_seconds if self.steady_steps else None

    def totals(self):
        """Every timer of `CONVENTIONS`, over all processes of this run so far."""
        # a compiling call's steps count at the steady rate (all of it, until there is one), the rest is compiling
        steps_times = [steps * self.step_seconds if self.steady_steps else s for s, steps in self.compiling_calls]
        session = {
            "train_seconds": self.steady_seconds + sum(steps_times),
            "compile_seconds": sum(max(s - t, 0.0) for (s, _), t in zip(self.compiling_calls, steps_times)),
            "eval_seconds": self.eval_seconds,
            "data_seconds": self.data_seconds or 0.0,
            "wall_seconds": time.perf_counter() - self.start,
            "processes": 1,
        }
        totals = {name: self.previous[name] + session[name] for name in _CARRIED}
        totals["processes"] = int(totals["processes"])
        totals["dawnbench_seconds"] = totals["wall_seconds"] - totals["eval_seconds"]
        totals["prepare_seconds"] = self.prepare_seconds or 0.0  # this process's (a record's run is one process)
        totals["record_seconds"] = totals["prepare_seconds"] + totals["train_seconds"]
        return totals

    def carry(self):
        """Stores the totals in the variable the checkpoint saves, so that a resumed run counts on from them."""
        totals = self.totals()
        self.carried.assign([float(totals[name]) for name in _CARRIED])


class RunLog:
    """The run's curve: a JSON line per training log point and per evaluation, in `history.jsonl`.

    On resume the lines past the restored step (written after the last checkpoint by a process that was then
    killed) are dropped, so the curve is that of the checkpointed run, continued.
    """

    def __init__(self, path, chief, restored_step):
        self.path, self.chief = path, chief
        self.train, self.evaluations = [], []
        kept = [record for record in read_history(path) if record["step"] <= restored_step]
        if chief:  # written whole, as write_json writes: a kill now leaves the old file or the new one
            partial = f"{path}.partial"
            with open(partial, "w") as f:
                f.writelines(json.dumps(record) + "\n" for record in kept)
            os.replace(partial, path)
        for record in kept:
            kind = record.pop("kind")
            (self.train if kind == "train" else self.evaluations).append(record)

    def add(self, kind, record):
        (self.train if kind == "train" else self.evaluations).append(record)
        if self.chief:
            with open(self.path, "a") as f:
                f.write(json.dumps({"kind": kind} | record, allow_nan=False) + "\n")

    def crossing(self, target):
        """The first evaluation at or above `target` (None if there is none, or no target)."""
        return None if target is None else first_crossing(self.evaluations, target)


def read_history(path):
    """The records of a `history.jsonl` (none if it does not exist). A torn last line, what a kill in the middle
    of a write leaves, is dropped with a warning; a damaged line before it is an error naming the file and line."""
    if not os.path.exists(path):
        return []
    with open(path) as f:
        lines = [line for line in f.read().split("\n") if line.strip()]
    records = []
    for number, line in enumerate(lines, 1):
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as error:
            if number < len(lines):
                message = f"{path} line {number} is not JSON ({error}): move the file away to start anew"
                raise WorkdirError(message) from None
            logging.warning("%s: dropped its torn last line (a write cut short): %r", path, line[:80])
    return records


def first_crossing(evaluations, threshold):
    """The first evaluation whose accuracy is at or above `threshold`, or None: the time-to-target rule."""
    return next((e for e in evaluations if e["accuracy"] >= threshold), None)


class Reporter:
    """Logs progress lines and TensorBoard scalars; on the chief's terminal, between log points, a progress bar
    (`training.progress_bar`) instead of the progress lines."""

    def __init__(self, workdir, chief, total_steps, steps_per_epoch, global_batch, synthetic, clock, eval_split="test"):
        self.total_steps, self.steps_per_epoch, self.global_batch = total_steps, steps_per_epoch, global_batch
        self.eval_split = eval_split
        self.tag, self.clock = " [synthetic data]" if synthetic else "", clock
        self.last_line = time.monotonic()
        self.writer = (
            tf.summary.create_file_writer(os.path.join(workdir, "tensorboard"))
            if chief
            else tf.summary.create_noop_writer()
        )
        self.bar = ProgressBar(total_steps, steps_per_epoch, global_batch) if chief and sys.stderr.isatty() else None

    def start(self, step):
        """The run trains from `step`: the bar (if any) shows from here, and takes over stderr."""
        if self.bar:
            compiling = self.clock.first_call_seconds is None
            self.bar.start(step, [logging.get_absl_handler().python_handler], compiling)

    def call_started(self, step, num_steps):
        if self.bar:
            compiling = self.clock.first_call_seconds is None
            steady = bool(self.clock.steady_steps)
            self.bar.call_started(step, num_steps, None if compiling else self.clock.step_seconds, steady)

    def call_ended(self, step):
        if self.bar:
            self.bar.call_ended(step)

    def close(self):
        if self.bar:
            self.bar.close()

    def progress_due(self):
        return not self.bar and time.monotonic() - self.last_line >= PROGRESS_SECONDS

    def progress(self, step):
        """A line between log points: where the run is and when it will end (no loss: the sums run on)."""
        self.last_line = time.monotonic()
        logging.info(
            "step %d/%d  epoch %.2f  %.0f img/s  ETA %s%s",
            step,
            self.total_steps,
            step / self.steps_per_epoch,
            self.global_batch / self.clock.step_seconds,
            _duration((self.total_steps - step) * self.clock.step_seconds),
            self.tag,
        )

    def train(self, step, loss, accuracy, lr, momentum):
        """A log point's line and scalars; `momentum` is None for an optimizer without one."""
        self.last_line = time.monotonic()
        step_seconds = self.clock.step_seconds
        images_per_second = self.global_batch / step_seconds
        eta = _duration((self.total_steps - step) * step_seconds) if self.clock.steady_steps else "--"
        logging.info(
            "step %d/%d  epoch %.2f  loss %.4f  acc %.2f%%  lr %.4g  %s%.0f img/s  ETA %s%s",
            step,
            self.total_steps,
            step / self.steps_per_epoch,
            loss,
            100 * accuracy,
            lr,
            "" if momentum is None else f"mom {momentum:.3f}  ",
            images_per_second,
            eta,
            self.tag,
        )
        scalars = {"train/loss": loss, "train/accuracy": accuracy, "lr": lr}
        scalars |= {} if momentum is None else {"momentum": momentum}
        self._scalars(step, scalars | {"images_per_second": images_per_second, "step_seconds": step_seconds})

    def evaluation(self, step, record):
        """An evaluation's line and scalars: its loss and accuracy, and the plain ones beside test-time
        augmentation's."""
        self.last_line = time.monotonic()
        plain = f" ({100 * record['plain_accuracy']:.2f}% plain)" if "plain_accuracy" in record else ""
        views = f", {record['views']} views" if record["views"] > 1 else ""
        logging.info(
            "eval (%s%s) at step %d: loss %.4f  accuracy %.2f%%%s%s",
            self.eval_split,
            views,
            step,
            record["loss"],
            100 * record["accuracy"],
            plain,
            self.tag,
        )
        scalars = {"eval/loss": record["loss"], "eval/accuracy": record["accuracy"]}
        if plain:
            scalars |= {"eval/plain_loss": record["plain_loss"], "eval/plain_accuracy": record["plain_accuracy"]}
        self._scalars(step, scalars)

    def _scalars(self, step, values):
        with self.writer.as_default(step=step):
            for name, value in values.items():
                tf.summary.scalar(name, value)
        self.writer.flush()


def run_summary(status, step, config, data, plan, evaluations, clock):
    """The machine-readable record of a run at `step`, as summary.json holds it (without the training history).

    `evaluations` are the run's evaluation records (step, epoch, loss, accuracy and the clocks), oldest first.
    """
    final = evaluations[-1] if evaluations else {}
    return {
        "status": status,
        "dataset": data.name,
        "synthetic": data.synthetic,
        "model": config.model,
        "schedule": config.schedule,
        "seed": config.seed,
        "eval_split": data.eval_split,  # "holdout": examples held out of the training set (config.holdout)
        "eval_examples": data.num_eval,
        "class_names": list(data.class_names),  # logit i is class i (also in classes.json beside model.keras)
        "eval_accuracy": final.get("accuracy"),
        "eval_loss": final.get("loss"),
        "eval_views": final.get("views"),  # forward passes per image: 1, or 2 or 6 with test-time augmentation
        "eval_accuracy_plain": _plain_accuracy(final),  # without it (None if not measured)
        "best_eval_accuracy": max((e["accuracy"] for e in evaluations), default=None),
        "steps": step,
        "end_step": plan.end_step,
        "total_steps": plan.total_steps,
        "epochs": step / plan.steps_per_epoch,
        "target_accuracy": config.target_accuracy,
        "target": None if config.target_accuracy is None else first_crossing(evaluations, config.target_accuracy),
        **clock.totals(),
        "images_per_second": clock.images_per_second(config.batch_size),
        "replicas": plan.replicas,
        "precision": config.precision,
        "global_batch": config.batch_size,
        "evaluations": evaluations,
    }


def _plain_accuracy(evaluation):
    """An evaluation's accuracy without test-time augmentation, if it measured one."""
    if "plain_accuracy" in evaluation:
        return evaluation["plain_accuracy"]
    return evaluation.get("accuracy") if evaluation.get("views", 1) == 1 else None


def data_record(data):
    """What config.json records of the dataset a run trained on: its name, sizes, classes and the statistics it
    was normalised with (the exported model normalises with them too)."""
    return {
        "name": data.name,
        "train_examples": data.num_train,
        "eval_examples": data.num_eval,
        "eval_split": data.eval_split,
        "image_shape": list(data.image_shape),
        "num_classes": data.num_classes,
        "mean": list(data.mean),
        "std": list(data.std),
    }


def write_json(path, payload):
    """Strict JSON (a NaN or an infinity is an error, not an invalid file), written whole or not at all."""
    text = json.dumps(payload, indent=2, sort_keys=True, default=_plain, allow_nan=False) + "\n"
    partial = f"{path}.partial"
    with open(partial, "w") as f:
        f.write(text)
    os.replace(partial, path)


def _plain(value):
    """numpy scalars as Python numbers; anything else by its str."""
    return value.item() if isinstance(value, np.generic) else str(value)


def _duration(seconds):
    minutes, seconds = divmod(int(seconds), 60)
    return f"{minutes}m{seconds:02d}s"
