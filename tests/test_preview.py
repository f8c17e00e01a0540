"""trial.preview in process: the table is the optimizer's schedule at every tenth of the run, and the plot exists."""

import numpy as np
import pytest

from configs.base import Config, ConfigError
from trial.preview import preview_schedule


def test_the_preview_prints_the_schedule_the_optimizer_follows(tmp_path, capsys):
    config = Config(epochs=2, lr=0.4, batch_size=512, lr_reference_batch=512, anneal_strategy="linear")
    lrs, momenta = preview_schedule(config, str(tmp_path), steps_per_epoch=50)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("onecycle: 2 epochs x 50 steps = 100 steps, peak lr 0.4")
    table = np.array([[float(x) for x in line.split()] for line in lines[2:13]])
    assert table[0, 2] == pytest.approx(0.4 / 25) and table[0, 3] == pytest.approx(0.95)
    assert lrs.argmax() == 24 and lrs.max() == pytest.approx(0.4)  # the peak at pct_start * T - 1 (0.25 * 100 - 1)
    assert momenta[24] == pytest.approx(0.85) and lrs[-1] == pytest.approx(0.4 / 25 / 1e4, rel=1e-3)
    assert (tmp_path / "schedule.png").stat().st_size > 10_000


def test_the_preview_counts_the_dataset_and_refuses_a_run_too_short(tmp_path):
    lrs, _ = preview_schedule(Config(epochs=1, batch_size=500, lr_reference_batch=500), str(tmp_path))
    assert len(lrs) == 20  # the quick-start set's 10,000 training images, 20 batches of 500
    with pytest.raises(ConfigError, match="config schedule fields"):
        preview_schedule(Config(epochs=1, schedule="warmup_cosine", warmup_pct=0.9), str(tmp_path), 1)
