"""train.py, killed with SIGKILL at a chosen point of the real trainer: a test's way to place a crash exactly.

    python tests/run_with_fault.py <where> <n> [train.py flags...]

where: "train" (after the n-th call into the compiled training loop: mid-epoch), "eval" (inside the n-th
evaluation, before its result is recorded) or "save" (a few milliseconds into the n-th checkpoint save); or,
with a signal instead of the kill, "train-sigterm" (SIGTERM to itself 0.5 s into the n-th call, which logs
when it returns) and "export-sigterm" (SIGTERM to itself as the exported model starts being written; n is
unused). Nothing else changes: the process runs train.py's own main.
"""

import contextlib
import os
import signal
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import logging  # noqa: E402

import train  # noqa: E402
from training import checkpoints, export, report  # noqa: E402


def kill():
    os.kill(os.getpid(), signal.SIGKILL)


def signal_itself():
    logging.info("sending SIGTERM")
    os.kill(os.getpid(), signal.SIGTERM)


def on_nth_call(original, n, before=None, after=None):
    """`original`, with `before()` and `after()` around its n-th call."""
    calls = [0]

    def wrapper(*args, **kwargs):
        calls[0] += 1
        if calls[0] == n and before:
            before()
        result = original(*args, **kwargs)
        if calls[0] == n and after:
            after()
        return result

    return wrapper


def main():
    where, n = sys.argv[1], int(sys.argv[2])
    del sys.argv[1:3]
    # Calls follow the log and checkpoint boundaries alone: capped by time, a loaded machine (a slow first,
    # compiling call) would cut them shorter, and the n-th call would come at another step.
    sys.argv.append("--config.max_call_seconds=1e9")
    if where == "train":
        report.Clock.time_training = on_nth_call(report.Clock.time_training, n, after=kill)
    elif where == "eval":
        evaluating, calls = report.Clock.evaluating, [0]

        @contextlib.contextmanager
        def evaluating_then_killed(self):
            calls[0] += 1
            with evaluating(self):
                yield
            if calls[0] == n:
                kill()  # the evaluation ran; its record is not written yet

        report.Clock.evaluating = evaluating_then_killed
    elif where == "export-sigterm":
        serving_model = export.serving_model

        def signalled_while_saving(model, data):
            served = serving_model(model, data)
            save = served.save

            def save_after_a_signal(*args, **kwargs):
                os.kill(os.getpid(), signal.SIGTERM)
                return save(*args, **kwargs)

            served.save = save_after_a_signal
            return served

        export.serving_model = signalled_while_saving
    elif where == "train-sigterm":  # SIGTERM to itself 0.5 s into the n-th call, and a line when the call returns
        signal_soon = lambda: threading.Timer(0.5, signal_itself).start()  # noqa: E731
        returned = lambda: logging.info("the call into the loop returned")  # noqa: E731
        report.Clock.time_training = on_nth_call(report.Clock.time_training, n, before=signal_soon, after=returned)
    elif where == "save":
        checkpoints.save = on_nth_call(checkpoints.save, n, before=lambda: threading.Timer(0.005, kill).start())
    else:
        raise SystemExit(f"unknown fault point {where!r}")
    train.cli()


if __name__ == "__main__":
    main()
