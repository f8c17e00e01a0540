"""training/progress_bar.py: the bar's line by hand, and train.py on a real terminal (a pseudo-terminal)."""

import io
import os
import re
import subprocess
import sys

import pytest

from training.progress_bar import ProgressBar

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_the_bar_interpolates_the_call_in_flight_and_never_passes_its_end():
    bar = ProgressBar(total_steps=100, steps_per_epoch=10, global_batch=256)
    bar.call_started(0, 1, None)
    bar._call = (0, 1, 1000.0, None)  # started at t = 1000 s
    assert bar.text(now=1004.2) == "compiling the training step, 4 s"
    bar.call_ended(1)
    bar.call_started(1, 9, 2.0, steady=False)  # an estimate with the compile in it: moves the bar, not shown
    bar._call = (1, 9, 1000.0, 2.0)
    assert bar.text(now=1004.0) == "step 3/100 [>                       ]   3%  epoch 0.30"
    bar.call_started(10, 20, 0.5)
    bar._call = (10, 20, 1000.0, 0.5)
    # 5 s at 0.5 s a step: step 20, a fifth of the run; 256 images / 0.5 s; 80 steps left at 0.5 s
    assert bar.text(now=1005.0) == "step 20/100 [====>                   ]  20%  epoch 2.00  512 img/s  ETA 0m40s"
    assert bar.text(now=2000.0).startswith("step 30/100 ")  # the call's last step, however late


def test_the_compile_is_counted_from_the_tracing_before_the_first_call_through_that_call():
    bar = ProgressBar(total_steps=100, steps_per_epoch=10, global_batch=256, stream=io.StringIO())
    bar.start(0, compiling=True)  # the run traces its loops from here
    try:
        tracing_started = bar._call[2]
        bar.call_started(0, 1, None)  # the first call: XLA compiles and runs one step
        assert bar.text(now=tracing_started + 7.2) == "compiling the training step, 7 s"
    finally:
        bar.close()


@pytest.mark.slow
def test_on_a_terminal_train_py_draws_the_bar_and_every_log_line_stays_whole(tmp_path):
    main, terminal = os.openpty()
    environment = os.environ | {"TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    flags = ["--config.epochs=2", f"--workdir={tmp_path}"]
    process = subprocess.Popen(
        [sys.executable, "train.py", *flags], cwd=REPO, env=environment, stdout=terminal, stderr=terminal
    )
    os.close(terminal)
    output = b""
    while True:
        try:
            chunk = os.read(main, 65536)
        except OSError:  # the terminal's other end closed
            break
        if not chunk:
            break
        output += chunk
    assert process.wait(timeout=300) == 0
    text = output.decode()
    frames = text.replace("\r\n", "\n").split("\r")
    assert any(re.fullmatch(r"compiling the training step, \d+ s\x1b\[K", frame) for frame in frames)
    assert any(re.search(r"^step \d+/78 \[=*>? *\] +\d+%  epoch [\d.]+  [\d,]+ img/s  ETA \dm\d\ds", f) for f in frames)
    for line in text.replace("\r\n", "\n").split("\n"):  # what a terminal shows of a line: after its last \r
        if re.search(r"[IWE]\d{4} \d\d:\d\d:\d\d\.\d+ ", line):  # a log line: the bar was cleared before it
            assert re.match(r"(\x1b\[K)?[IWE]\d{4} ", line.split("\r")[-1]), repr(line)
    assert "run completed:" in text and text.rstrip().endswith(f"tensorboard --logdir {tmp_path / 'tensorboard'}")
