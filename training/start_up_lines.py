"""TensorFlow's start-up lines, which say nothing about a run, kept off a user's terminal (train.py, not --tf_logs).

Loading TensorFlow prints, from C++, before any log setting applies, and twice (the profiler plugin is a second
shared library with its own copy of absl's logging):

    WARNING: All log messages before absl::InitializeLog() is called are written to STDERR
    I0000 ... port.cc:153] oneDNN custom operations are on. You may see slightly different numerical results ...
    I0000 ... cudart_stub.cc:31] Could not find cuda drivers on your machine, GPU will not be used.

`filtered()` passes file descriptor 2 through a pipe while TensorFlow is imported and drops exactly these lines;
every other line (a real error, a crash's message) is passed on as it comes. The ERROR-level "failed call to
cuInit" that TensorFlow logs later on a machine without an NVIDIA driver is hidden by `TF_CPP_MIN_LOG_LEVEL`
(`min_log_level`), as TensorFlow documents.
"""

import contextlib
import os
import sys
import threading

START_UP_NOISE = (
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    "port.cc:153] oneDNN custom operations are on.",
    "cudart_stub.cc:31] Could not find cuda drivers on your machine, GPU will not be used.",
    "cpu_feature_guard.cc:",  # "This TensorFlow binary is optimized to use available CPU instructions ..."
    "To enable the following instructions:",  # its second line
)


def min_log_level(has_nvidia_driver=None):
    """TensorFlow's C++ log level for a user's run: "2" (warnings and info hidden, errors shown), or "3" (errors
    too) on a machine without an NVIDIA driver, where the one error every run logs is that CUDA cannot start."""
    if has_nvidia_driver is None:
        has_nvidia_driver = os.path.exists("/proc/driver/nvidia/version")
    return "2" if has_nvidia_driver else "3"


@contextlib.contextmanager
def filtered():
    """Within: what is written to file descriptor 2 is passed on line by line, but for `START_UP_NOISE`."""
    sys.stderr.flush()
    terminal = os.dup(2)
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)
    forwarder = threading.Thread(target=_forward, args=(read_end, terminal), daemon=True)
    forwarder.start()
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(terminal, 2)  # closes the pipe's last write end: the forwarder reads to its end and stops
        forwarder.join(timeout=5)
        os.close(terminal)


def _forward(read_end, terminal):
    with os.fdopen(read_end, "rb") as pipe:
        for line in pipe:
            if not any(noise.encode() in line for noise in START_UP_NOISE):
                os.write(terminal, line)
