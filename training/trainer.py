"""The trainer: one run of a config in a workdir, resumable at its exact step, on any tf.distribute strategy.

`train_and_evaluate(config, workdir)` is what `train.py` calls for one run, and what trials reuse: it never reads
flags. The setup it shares with the LR range test is `training.setup`; what it reports is `training.report`.
"""

import contextlib
import dataclasses
import functools
import math
import os

import tensorflow as tf
from absl import logging

import input_pipeline
from input_pipeline import records
from training import checkpoints, compile_cache, export, faults, loops, optimization, readout, report, setup
from training import workdir as workdir_lib
from training.loops import tta_views
from training.plan import itstime, steps_to_next
from training.strategy import is_chief, num_workers, smallest_over_workers, task_id


def main(config, workdir, invocation):
    """`--mode=train`: one run, recorded with the command that started it."""
    train_and_evaluate(config, workdir, command=invocation.command)


def train_and_evaluate(config, workdir, strategy=None, command=None):
    """Trains `config` in `workdir` (resuming from its latest readable checkpoint) and returns the final summary.

    `command`: the command line that started it, recorded in config.json (`--mode=report` lists it).

    The summary (also written as `summary.json` by the chief) holds the status, the final and best evaluation,
    the whole evaluation curve, the first evaluation at or above `config.target_accuracy`, and the timers of
    `report.CONVENTIONS`; the returned dict adds the training log (`history`). A run pre-empted by a signal or
    whose loss diverges writes its summary, then raises `faults.RunInterrupted`.
    """
    prepared = setup.start(config, strategy)
    strategy = prepared.strategy
    chief = is_chief(strategy)
    checkpoint_dir = os.path.join(workdir, "checkpoints" if chief else f"checkpoints_worker{task_id(strategy)}")
    with workdir_lib.claimed(workdir, chief):
        # A resume is decided by the checkpoints on disk, once a lost or garbled state file is rewritten from them
        checkpoints.recover_state_file(checkpoint_dir)
        changes = workdir_lib.check_same_run(workdir, config, checkpoints.on_disk(checkpoint_dir), chief)
        finished = None if changes else workdir_lib.finished_summary(workdir, config)
        if finished and finished["status"] != "stopped" and chief:
            finished = _repaired(workdir, finished)
        if finished:
            model_path = os.path.join(workdir, "model.keras") if finished["status"] != "stopped" else None
            logging.info(
                "%s already finished: nothing to do\n%s", workdir, readout.result_lines(finished, workdir, model_path)
            )
            return finished
        logging.info(
            "run in %s: config.json, history.jsonl, summary.json, tensorboard/ and checkpoints/ go there", workdir
        )
        return Training(config, workdir, prepared, checkpoint_dir, changes, command).run()


def _repaired(workdir, finished):
    """`finished` (a run's summary) once what its rerun can repair is: a lost classes.json is written again from
    the summary; a missing or damaged model.keras gives None (the run restores its last checkpoint, has no step
    left to train, and exports again)."""
    damage = export.damage(os.path.join(workdir, "model.keras"))
    if damage:
        logging.warning("%s finished but its model.keras is %s: exporting it again", workdir, damage)
        return None
    if not os.path.exists(os.path.join(workdir, export.CLASS_NAMES_FILE)):
        logging.warning("%s finished but its %s is missing: writing it again", workdir, export.CLASS_NAMES_FILE)
        report.write_json(os.path.join(workdir, export.CLASS_NAMES_FILE), finished["class_names"])
    return finished


class Training:
    """One process's part of a run: built (data, model, optimizer, restored checkpoint, loops), then `run()`."""

    def __init__(self, config, workdir, prepared, checkpoint_dir, changes, command=None):
        strategy = prepared.strategy
        self.config, self.workdir, self.strategy, self.chief = config, workdir, strategy, is_chief(strategy)
        self.workers = num_workers(strategy)
        self.clock = report.Clock()
        setup.load_data(config, prepared.placement)  # kept: `build` takes it from there
        self.clock.data_loaded()
        self.built = run = setup.build(config, prepared)
        self.sides = set()  # the image sizes this process has compiled a training step for (None: as loaded)
        self.data, self.plan, self.model, self.optimizer = run.data, run.plan, run.model, run.optimizer
        self.lookahead = run.lookahead
        logging.info("plan:\n%s", readout.plan_lines(self.plan, config, self.data))
        if changes:
            logging.warning("continuing %s with a changed config (allow_config_change): %s", workdir, changes)
        with strategy.scope():
            self.batches_consumed = tf.Variable(0, dtype=tf.int64, trainable=False, name="batches_consumed")
        self.manager = self.restore(strategy, checkpoint_dir)
        if self.chief:  # only once the restore has succeeded: a refused resume leaves the workdir as it was
            record = {
                "config": dataclasses.asdict(config),
                "derived": dataclasses.asdict(self.plan),
                "data": report.data_record(self.data),
            }
            record |= {"command": command} if command else {}
            report.write_json(
                os.path.join(workdir, workdir_lib.CONFIG_FILE), record | _earlier_configs(workdir, changes)
            )
        self.log = report.RunLog(os.path.join(workdir, "history.jsonl"), self.chief, self.step)
        self.resident, self.train_input = setup.training_input(config, strategy, self.data, self.batches_consumed)
        self.loops = loops.make_loops(run, self.resident)
        self.eval_data, self.eval_steps = input_pipeline.eval_dataset(strategy, self.data, config)
        self.clock.prepared()
        self.reporter = report.Reporter(
            workdir,
            self.chief,
            self.plan.total_steps,
            self.plan.steps_per_epoch,
            config.batch_size,
            self.data.synthetic,
            self.clock,
            self.data.eval_split,
        )
        self.ema_weights = (
            optimization.swap_in_ema_weights(self.optimizer) if config.ema_momentum else contextlib.nullcontext
        )
        self.preemption = faults.Preemption(strategy, self.manager, self.save)

    def restore(self, strategy, checkpoint_dir):
        """Restores the newest readable checkpoint (if any; with several workers, the newest step all of them
        have) into the model, optimizer, data position and clocks; returns the checkpoint manager."""
        checkpoint = tf.train.Checkpoint(
            model=self.model,
            optimizer=self.optimizer,
            batches_consumed=self.batches_consumed,
            timers=self.clock.carried,
            **({"lookahead": self.lookahead} if self.lookahead else {}),
        )
        checkpoints.remove_stale_temporaries(checkpoint_dir)
        agree = functools.partial(checkpoints.newest_common_step, strategy) if self.workers > 1 else None
        shared = None if self.chief else os.path.join(self.workdir, "checkpoints")  # the chief's, if it is here too
        manager, restored = checkpoints.restore_newest_readable(
            checkpoint, checkpoint_dir, max_to_keep=3, agree=agree, shared=shared
        )
        self.step = int(self.optimizer.iterations.numpy())
        if restored:
            logging.info("resumed from %s at step %d", restored, self.step)
        self.clock.restored()
        return manager

    def run(self):
        """Trains to the plan's end step (or the target), evaluates, exports, and returns the summary."""
        config, plan = self.config, self.plan
        self.reporter.start(self.step)
        self.trace_loops()
        try:
            while self.step < plan.end_step and not (
                config.stop_at_target and self.log.crossing(config.target_accuracy)
            ):
                self.train_call()
                step = self.step
                if not itstime(step, config.log_every_steps, plan.end_step):
                    if self.clock.steady_steps and self.reporter.progress_due():
                        self.reporter.progress(step)
                else:
                    self.log_training(step)
                if step < plan.end_step and itstime(step, plan.eval_every_steps):
                    self.evaluate(step)
                if itstime(step, config.checkpoint_every_steps, plan.end_step):
                    self.save(step)
                self.preemption.save_if_preempted(step)
            self.preemption.finishing()
            if not self.log.evaluations or self.log.evaluations[-1]["step"] != self.step:
                self.evaluate(self.step, final=True)
            return self.finish()  # a signal from here on is acknowledged, and the run completes: exit 0
        except faults.PEER_ERRORS as error:
            if self.workers == 1:
                raise
            summary = self.summarize("peer_lost", self.step)
            reason = faults.error_summary(error)
            message = (
                f"lost a peer worker after step {self.step} ({reason}); the last checkpoint is "
                f"{self.manager.latest_checkpoint or 'none'}: rerun every worker's command to resume from the "
                "newest step they all saved"
            )
            logging.error("%s", message)
            raise faults.RunInterrupted("peer_lost", self.step, message, summary) from None
        except (OSError, tf.errors.OpError) as error:
            if faults.is_disk_full(error):  # a summary, the history or TensorBoard: the checkpoints say it too
                raise faults.DiskFull(self.workdir, error, self.manager.latest_checkpoint) from None
            raise
        except faults.RunInterrupted as interrupted:
            if interrupted.status == "preempted":
                interrupted.summary = self.summarize("preempted", interrupted.step)
            logging.error("%s", interrupted)
            raise
        finally:  # the signal handlers stay until the summary is written, so the export is never cut short
            self.preemption.close()
            self.reporter.close()

    def trace_loops(self):
        """Traces the training loop at each image size and the evaluation loops before the first call, by calling
        them for zero steps (nothing runs, XLA compiles nothing). TensorFlow names a traced function with a
        process-wide counter that every call moves on, and XLA's persistent cache keys a program by that name:
        traced when first needed, the evaluation's programs and a later image size's were named by how many calls
        `max_call_seconds` had cut the training into before (so by the machine's load), and a rerun compiled them
        again."""
        for side in dict.fromkeys(side for _, side in self.plan.resize_stages) or (None,):
            self.loops.train(self.train_input, tf.constant(0), side)
        for which in ("eval", "eval_plain"):  # tracing: in the wall clock, in no step's or evaluation's
            if getattr(self.loops, which) is not None:
                getattr(self.loops, which)(iter(self.eval_data), tf.constant(0))

    def train_call(self):
        """One call into the compiled loop: as many steps as fit before the next boundary and in a progress interval.

        A call that compiles (the first of a process, and with progressive resizing the first at each image size)
        is one step, so that its time is compilation plus one step's worth, booked apart.
        """
        clock, step = self.clock, self.step
        side = self.plan.image_side(step)
        compiling = clock.first_call_seconds is None or side not in self.sides
        if compiling:
            num_steps = 1
            logging.info(
                "compiling the training step (%s)%s; the call runs one step",
                "tracing and XLA" if self.plan.jit_compile else "tracing",
                f" for {side}x{side} images" if side else "",
            )
        else:
            num_steps = min(steps_to_next(step, self.plan, self.config), self.plan.end_step - step)
            most = max(int(self.config.max_call_seconds / clock.step_seconds), 1)
            if self.workers > 1:  # every worker's clock is its own, and all must run the same call
                most = smallest_over_workers(self.strategy, most)
            num_steps = min(num_steps, most)
        if self.resident:  # a call ends at its epoch's end, where the resident set's order changes
            num_steps = self.resident.prepare_call(self.batches_consumed.numpy(), num_steps)
        self.preemption.call_started(num_steps, None if compiling else num_steps * clock.step_seconds)
        self.reporter.call_started(step, num_steps)
        try:
            clock.time_training(
                lambda: self.compiled(
                    lambda: self.loops.train(self.train_input, tf.constant(num_steps), side), compiling
                ),
                num_steps,
                compiling,
            )
        except tf.errors.InvalidArgumentError:  # read from disk, an image that does not decode: which one?
            first = int(self.batches_consumed.numpy())
            self.name_undecodable(
                "train",
                input_pipeline.steps_examples(
                    self.data.num_train, self.config, first, first + num_steps + input_pipeline.PREFETCH_STEPS
                ),
            )
            raise
        if compiling:
            self.sides.add(side)
            logging.info("compiled and ran the first step in %.1f s", clock.compiling_calls[-1][0])
            compile_cache.check_written(self.config, self.plan.jit_compile)
            compile_cache.seal()
        self.batches_consumed.assign_add(num_steps)
        self.step = int(self.optimizer.iterations.numpy())  # fewer than the batches if mixed_float16 skipped a step
        self.reporter.call_ended(self.step)
        if not math.isfinite(float(self.loops.train_sums.loss.read_value())):  # the sums since the last log point
            raise self.diverged(self.step, "the training loss is not finite")

    def log_training(self, step):
        loss, accuracy = self.loops.train_sums.result_and_reset()
        lr, momentum = float(self.optimizer.learning_rate), optimization.momentum_of(self.optimizer)
        record = {"step": step, "epoch": step / self.plan.steps_per_epoch, "loss": loss, "accuracy": accuracy}
        self.log.add("train", record | {"lr": lr, "momentum": momentum} | self.clock.totals())
        self.reporter.train(step, loss, accuracy, lr, momentum)

    def evaluate(self, step, final=False):
        """Evaluates with the config's test-time augmentation (during training only if `eval_tta_at` is
        "every"); the final evaluation also records the plain accuracy beside it."""
        config = self.config
        has_tta = self.loops.eval_plain is not None  # "eval" is then the TTA loop, "eval_plain" one view
        tta = has_tta and (final or config.eval_tta_at == "every")
        record = {"step": step, "epoch": step / self.plan.steps_per_epoch}
        with self.clock.evaluating(), self.ema_weights():
            if tta:
                record |= self._evaluated("eval", "", views=tta_views(config))
            if not tta or final:
                record |= self._evaluated("eval_plain" if has_tta else "eval", "plain_" if tta else "", views=1)
        compile_cache.seal()  # the evaluation's programs, if it compiled them
        if not math.isfinite(record["loss"]):
            raise self.diverged(step, "the evaluation loss is not finite")
        self.log.add("eval", record | self.clock.totals())
        self.reporter.evaluation(step, record)

    def compiled(self, call, trains=False):
        """`call()`, a compiled loop's; if a damaged program in the XLA cache stops it, the cache's folder is set
        aside, the loops traced anew (a new trace has a new name: XLA remembers the failed one's load), the input
        read again from the data position, and the call made again. A training call (`trains`) that fails there
        has still run what does not wait for the gradients (Keras counts the step in `optimizer.iterations`,
        Lookahead may move): its weights and optimizer state are put back first."""
        saved = None
        if trains and self.config.xla_cache:  # only a call that may load a program: the first at each size
            state = [*self.model.weights, *self.optimizer.variables, *(self.lookahead or tf.Module()).variables]
            saved = [(variable, variable.numpy()) for variable in state]
        try:
            return call()
        except compile_cache.damage_errors() as error:
            if not compile_cache.set_aside_if_damaged(self.config, error):
                raise
            for variable, value in saved or ():
                variable.assign(value)
            self.loops = loops.make_loops(self.built, self.resident)
            if self.resident is None:
                self.train_input = setup.training_input(self.config, self.strategy, self.data, self.batches_consumed)[1]
            return call()

    def name_undecodable(self, split, examples):
        """Raises the `DatasetError` that names the first of `examples` (indices of the training or evaluation
        split, `split`) whose image does not decode, if the data is read from disk and one does not: TensorFlow's
        decoding error names no file."""
        if self.data.in_memory:
            return
        found = records.first_undecodable(self.data.train if split == "train" else self.data.eval, examples)
        if found:
            name, reason = found
            raise input_pipeline.DatasetError(
                f"{self.data.name}: cannot decode {name} ({reason}): fix or remove it, or skip such images with "
                "--config.skip_bad_images=True"
            )

    def _evaluated(self, which, prefix, views):
        """The loss and accuracy of the evaluation loop `which` ("eval" or "eval_plain"), named with `prefix`."""
        try:
            self.compiled(lambda: getattr(self.loops, which)(iter(self.eval_data), tf.constant(self.eval_steps)))
        except tf.errors.InvalidArgumentError:
            self.name_undecodable("eval", range(self.data.num_eval))
            raise
        loss, accuracy = self.loops.eval_sums.result_and_reset()
        return {f"{prefix}loss": loss, f"{prefix}accuracy": accuracy, f"{prefix}views": views}

    def save(self, step):
        if not faults.all_finite(self.model.weights + self.optimizer.variables):  # BatchNorm statistics and slots
            raise self.diverged(step, "a weight or optimizer state is not finite")
        self.clock.carry()
        checkpoints.save(self.manager, step)

    def diverged(self, step, what):
        """The `RunInterrupted` to raise for a divergence at `step`, after writing the run's summary."""
        summary = self.summarize("diverged", step)
        last = self.manager.latest_checkpoint or "none (it diverged before the first save)"
        message = (
            f"diverged: {what} at step {step}, so the run stopped; its last good checkpoint is {last} and no model "
            "was exported. Lower --config.lr, or find a good one with --mode=lr_find"
        )
        return faults.RunInterrupted("diverged", step, message, summary)

    def summarize(self, status, step, model_path=None):
        """The run's summary: written by the chief as summary.json (strict JSON), logged as a table and returned
        with its history."""
        summary = report.run_summary(status, step, self.config, self.data, self.plan, self.log.evaluations, self.clock)
        if self.chief:
            report.write_json(os.path.join(self.workdir, "summary.json"), summary | {"history": self.log.train})
        logging.info("run %s:\n%s", status, readout.result_lines(summary, self.workdir, model_path))
        return summary | {"history": self.log.train}

    def finish(self):
        """Exports the model (unless the run only stopped) and writes the summary."""
        config, step = self.config, self.step
        reached_and_stop = self.log.crossing(config.target_accuracy) and config.stop_at_target
        status = "completed" if step >= self.plan.total_steps else "target_reached" if reached_and_stop else "stopped"
        model_path = os.path.join(self.workdir, "model.keras") if status != "stopped" else None
        if self.chief and model_path:
            with self.ema_weights():
                export.export(self.model, self.data, model_path)
        return self.summarize(status, step, model_path)


def _earlier_configs(workdir, changes):
    """The configs this workdir ran under before an allowed change (kept in config.json, oldest first)."""
    if not changes:
        return {}
    recorded = workdir_lib.read_json(os.path.join(workdir, workdir_lib.CONFIG_FILE))
    earlier = recorded.pop("earlier_configs", [])
    return {"earlier_configs": earlier + [recorded]}
