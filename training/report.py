"""What a run tells: a concise terminal line, TensorBoard scalars and JSON files, all written by the chief only."""

import json
import os
import time

import tensorflow as tf
from absl import logging


class Reporter:
    """Logs progress lines and TensorBoard scalars; measures throughput excluding the first (compiling) call."""

    def __init__(self, workdir, chief, total_steps, steps_per_epoch, global_batch, synthetic):
        self.chief, self.total_steps, self.steps_per_epoch = chief, total_steps, steps_per_epoch
        self.global_batch, self.tag = global_batch, " [synthetic data]" if synthetic else ""
        self.writer = (
            tf.summary.create_file_writer(os.path.join(workdir, "tensorboard")) if chief
            else tf.summary.create_noop_writer()
        )  # fmt: skip
        self.first_call_seconds = None  # tracing + XLA compilation + the first call's steps
        self.first_call_steps = 0
        self.steady_seconds = 0.0
        self.steady_steps = 0

    def timed_call(self, fn, num_steps):
        """Runs fn() (num_steps training steps) and books its time; the first call is booked apart."""
        start = time.perf_counter()
        fn()
        seconds = time.perf_counter() - start
        if self.first_call_seconds is None:
            self.first_call_seconds, self.first_call_steps = seconds, num_steps
        else:
            self.steady_seconds += seconds
            self.steady_steps += num_steps
        return seconds

    @property
    def step_seconds(self):
        """Mean seconds per step after the first call (or including it, if there was only one)."""
        if self.steady_steps:
            return self.steady_seconds / self.steady_steps
        return self.first_call_seconds / max(self.first_call_steps, 1)

    @property
    def compile_seconds(self):
        """The first call's time beyond what its steps take at the steady rate: tracing and compilation."""
        if self.first_call_seconds is None:
            return None
        return max(self.first_call_seconds - self.first_call_steps * self.step_seconds, 0.0)

    @property
    def train_seconds(self):
        return (self.first_call_seconds or 0.0) + self.steady_seconds

    def train(self, step, loss, accuracy, lr, momentum):
        images_per_second = self.global_batch / self.step_seconds
        eta = (self.total_steps - step) * self.step_seconds
        logging.info(
            "step %d/%d  epoch %.2f  loss %.4f  acc %.2f%%  lr %.4g  mom %.3f  %.0f img/s  ETA %s%s",
            step, self.total_steps, step / self.steps_per_epoch, loss, 100 * accuracy, lr, momentum,
            images_per_second, _duration(eta), self.tag,
        )  # fmt: skip
        self._scalars(step, {"train/loss": loss, "train/accuracy": accuracy, "lr": lr, "momentum": momentum,
                             "images_per_second": images_per_second, "step_seconds": self.step_seconds})  # fmt: skip

    def evaluation(self, step, loss, accuracy):
        logging.info("eval at step %d: loss %.4f  accuracy %.2f%%%s", step, loss, 100 * accuracy, self.tag)
        self._scalars(step, {"eval/loss": loss, "eval/accuracy": accuracy})

    def _scalars(self, step, values):
        with self.writer.as_default(step=step):
            for name, value in values.items():
                tf.summary.scalar(name, value)
        self.writer.flush()


def write_json(path, payload):
    with open(path, "w") as f:
        json.dump(payload, f, indent=2, sort_keys=True, default=str)
        f.write("\n")


def _duration(seconds):
    minutes, seconds = divmod(int(seconds), 60)
    return f"{minutes}m{seconds:02d}s"
