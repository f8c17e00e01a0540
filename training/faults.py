"""The ways a run ends early on its own: pre-empted (SIGTERM or SIGINT: save, then exit), diverged, and (with
several workers) a lost peer.

Both raise `RunInterrupted` out of the trainer after `summary.json` says so; `train.py` turns it into the
distinct exit code of `EXIT_CODES`, so a scheduler can tell "requeue me" (pre-empted) from "fix me" (diverged).
"""

import errno
import os
import shutil
import signal
import threading

import tensorflow as tf
from absl import logging

# Pre-empted: 143 (128 + SIGTERM), what a process ended by SIGTERM reports, which schedulers treat as worth a
# restart (Kubeflow's `restartPolicy: ExitCode` retries codes >= 128). A lost peer worker: 129 (128 + SIGHUP,
# the line to the peer hung up), retryable too: every worker resumes from the last common checkpoint.
# Diverged: 3, a failure a restart repeats.
# Disk full: 28 (ENOSPC's number), final for a scheduler (a restart fails again until space is freed).
EXIT_CODES = {"preempted": 143, "peer_lost": 129, "diverged": 3, "disk_full": 28}
# Stopped at once by Ctrl-C, without saving: a second one during a run, or one before a run's handlers are in place
# (loading, building) or during the LR sweep, which keeps no state (128 + SIGINT, as a shell reports it).
INTERRUPTED = 130
# What a collective raises when another worker of the cluster died or stopped answering.
PEER_ERRORS = (
    tf.errors.UnavailableError,
    tf.errors.CancelledError,
    tf.errors.DeadlineExceededError,
    tf.errors.AbortedError,
    tf.errors.InternalError,
)


class RunInterrupted(Exception):
    """A run that ended early with `status` (a key of EXIT_CODES) at `step`; `summary` is what it wrote."""

    def __init__(self, status, step, message, summary=None):
        super().__init__(message)
        self.status, self.step, self.summary = status, step, summary

    @property
    def exit_code(self):
        return EXIT_CODES[self.status]


class DiskFull(Exception):
    """A write of the run (a checkpoint, a summary, the history, TensorBoard, the model) failed for lack of space:
    the run stops at once; its last checkpoint stays usable."""

    exit_code = EXIT_CODES["disk_full"]

    def __init__(self, workdir, error, last_checkpoint=None):
        try:
            free = f"{shutil.disk_usage(workdir).free / 2**20:.1f} MiB free"
        except OSError:
            free = "free space unknown"
        super().__init__(
            f"no space left on the disk of {workdir} ({free}): {(str(error).splitlines() or [''])[0]}. The last "
            f"checkpoint, {last_checkpoint or 'none'}, is usable: free some space and rerun the same command"
        )


def error_summary(error):
    """`Type: what it says` of an error in one line: for TensorFlow's "Graph execution error", the message above its
    op's line (the first line only says where it was raised)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    op = next((i for i, line in enumerate(lines) if line.startswith("[[")), None)
    said = lines[op - 1] if op else (lines[0] if lines else "")
    return f"{type(error).__name__}: {said}"[:300]


def is_disk_full(error):
    """Whether `error` (an OSError, or TensorFlow's error for a file write) says the disk is full."""
    return getattr(error, "errno", None) == errno.ENOSPC or "No space left on device" in str(error)


class Preemption:
    """Watches for SIGTERM (what SLURM, Kubernetes and cloud pre-emption send) and SIGINT (Ctrl-C).

    `save_if_preempted(step)` is called after every call into the compiled loop, on every worker. On one process
    it saves at once; across workers TensorFlow's `PreemptionCheckpointHandler` agrees on the call after which
    all of them save (the one after the call in flight when the first signal came), so their checkpoints match.
    Either way the save is the trainer's own `save(step)` (its checks and clocks included), and then
    `RunInterrupted` is raised. A second Ctrl-C ends the process at once, even inside a compiled call, without
    saving (exit code 130, `INTERRUPTED`): the workdir is as a `kill -9` leaves it, resumable from its last
    checkpoint.
    """

    def __init__(self, strategy, manager, save):
        self.manager = manager
        self.signalled = threading.Event()
        self._save = save
        self._call = None  # (steps, expected seconds or None) of the call into the loop in flight
        self._previous = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
        self._acknowledged, self._lock, self._interrupts = False, threading.Lock(), 0
        self._wakeup = _SignalWatcher(self._on_delivery)
        self._handler = None
        resolver = getattr(strategy, "cluster_resolver", None)
        cluster = resolver.cluster_spec().jobs if resolver else []  # empty for a single-process MultiWorker...
        if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) and cluster:
            self._handler = tf.distribute.experimental.PreemptionCheckpointHandler(
                resolver,
                manager,
                termination_config=tf.distribute.experimental.TerminationConfig(
                    termination_watcher_fn=self.signalled.is_set,
                    exit_fn=self._exit,
                    grace_period=0,
                    save_fn=lambda checkpoint_number: save(checkpoint_number),
                ),
            )
        self._step = None

    def call_started(self, num_steps, expected_seconds):
        """The trainer starts a call into the compiled loop of `num_steps` steps, expected to take about
        `expected_seconds` (None: unknown, the compiling call): what a signal's acknowledgement says."""
        self._call = (num_steps, expected_seconds)

    def finishing(self):
        """The trainer's steps are done: a signal from here on lets the run complete (what it says then)."""
        self._call = "finishing"

    def _acknowledge(self, signum):
        """Says at once (from the watcher thread, while the compiled call runs on) what a signal will do, and
        raises the flag that every worker's save waits for."""
        with self._lock:
            if self._acknowledged:
                return
            self._acknowledged = True
        self.signalled.set()
        if self._call == "finishing":
            logging.warning(
                "%s received: the run is finishing (its last evaluation, the export and the summary) and completes",
                signal.Signals(signum).name,
            )
            return
        steps, seconds = self._call or (0, None)
        bound = f", at most about {seconds:.0f} s" if seconds is not None else ""
        logging.warning(
            "%s received: stopping. The call in flight (%d steps%s) finishes, then the run saves a checkpoint "
            "and exits (a second Ctrl-C stops at once, without saving)",
            signal.Signals(signum).name,
            steps,
            bound,
        )

    def _on_signal(self, signum, frame):
        """Python's handler: it runs only once the compiled call returns (the watcher thread has spoken)."""
        self._acknowledge(signum)  # in case the watcher has not yet

    def _on_delivery(self, signum):
        """Each signal as it arrives (from the watcher thread, once per signal): a second Ctrl-C abandons the run
        at once, whatever the main thread is in; any first signal is acknowledged."""
        if signum == signal.SIGINT:
            self._interrupts += 1
            if self._interrupts == 2:
                last = self.manager.latest_checkpoint or "none"
                logging.error(
                    "a second Ctrl-C: stopping at once, without saving; the last checkpoint is %s: rerun the same "
                    "command to resume from it",
                    last,
                )
                logging.flush()
                os._exit(INTERRUPTED)
        self._acknowledge(signum)

    def save_if_preempted(self, step):
        self._step = step
        if self._handler is not None:
            self._handler.save_checkpoint_if_preempted(checkpoint_number=step)
        elif self.signalled.is_set():
            self._save(step)
            self._exit()

    def _exit(self):
        raise RunInterrupted(
            "preempted",
            self._step,
            f"pre-empted at step {self._step}: saved {self.manager.latest_checkpoint}; "
            "rerun the same command to resume",
        )

    def close(self):
        """Gives the signals back to their previous handlers."""
        self._wakeup.close()
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)


class _SignalWatcher:
    """Calls `on_signal(signum)` from a thread as soon as SIGTERM or SIGINT arrives, while the main thread is still
    inside a compiled call (where Python's own handler waits for the call to return).

    It uses Python's wakeup file descriptor: the C-level handler writes each signal's number to it at once.
    """

    def __init__(self, on_signal):
        self._on_signal = on_signal
        self._read, self._write = os.pipe()
        os.set_blocking(self._write, False)
        self._previous = signal.set_wakeup_fd(self._write, warn_on_full_buffer=False)
        self._thread = threading.Thread(target=self._watch, name="signal-watcher", daemon=True)
        self._thread.start()

    def _watch(self):
        while True:
            try:
                numbers = os.read(self._read, 64)
            except OSError:
                return
            if not numbers:  # closed
                return
            for signum in numbers:
                if signum in (signal.SIGTERM, signal.SIGINT):
                    self._on_signal(signum)

    def close(self):
        signal.set_wakeup_fd(self._previous)
        os.close(self._write)  # the thread reads the end and stops
        self._thread.join(timeout=5)
        os.close(self._read)


def all_finite(variables):
    """True if every value of every floating-point variable is finite (one reduction per variable, on its device)."""
    floats = [v for v in variables if tf.as_dtype(v.dtype).is_floating]
    return bool(tf.reduce_all([tf.reduce_all(tf.math.is_finite(v)) for v in floats]).numpy())
