"""training/start_up_lines.py: TensorFlow's start-up lines kept off the terminal, every other line passed on."""

import os
import subprocess
import sys

import pytest

from training.start_up_lines import START_UP_NOISE, min_log_level

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_lines_written_to_file_descriptor_2_pass_but_for_the_start_up_noise():
    code = (
        "import os, sys\n"
        "from training import start_up_lines\n"
        "with start_up_lines.filtered():\n"
        "    os.write(2, b'WARNING: All log messages before absl::InitializeLog() is called are written to '\n"
        "             b'STDERR\\n')\n"
        "    os.write(2, b'I0000 00:00:1.2 7 port.cc:153] oneDNN custom operations are on. You may see\\n')\n"
        "    os.write(2, b'F0000 a real crash\\n')\n"
        "    print('from Python', file=sys.stderr)\n"
        "print('after', file=sys.stderr)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert done.returncode == 0 and done.stderr == "F0000 a real crash\nfrom Python\nafter\n"


def test_cudas_error_is_hidden_only_where_there_is_no_nvidia_driver():
    assert min_log_level(has_nvidia_driver=True) == "2" and min_log_level(has_nvidia_driver=False) == "3"


@pytest.mark.slow
def test_train_py_prints_none_of_tensorflows_start_up_lines_unless_asked(tmp_path):
    """On this machine (no GPU): without --tf_logs, no start-up line and no cuInit error; with it, they are there."""
    environment = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    flags = [sys.executable, "train.py", "--mode=schedule", "--steps_per_epoch=10"]

    def stderr(*more):
        done = subprocess.run(
            [*flags, *more], capture_output=True, text=True, cwd=REPO, env=environment, timeout=300, check=True
        )
        return done.stderr

    quiet = stderr(f"--workdir={tmp_path / 'quiet'}")
    assert not [noise for noise in START_UP_NOISE if noise in quiet] and "cuInit" not in quiet, quiet
    loud = stderr("--tf_logs", f"--workdir={tmp_path / 'loud'}")
    assert START_UP_NOISE[0] in loud and START_UP_NOISE[1] in loud
