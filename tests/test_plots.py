"""trial/plots.py: what a reader of the PNGs sees."""

import numpy as np

from trial.plots import plot_schedules


def test_a_title_naming_many_arms_is_wrapped_inside_the_figure(tmp_path):
    arms = [f"schedule=warmup_cosine max_momentum=0.9 epochs=15 lr=0.{i}" for i in range(9)]
    curves = {arm: (np.linspace(0, 1, 10), np.linspace(0.95, 0.85, 10)) for arm in arms}
    figure = plot_schedules(curves, tmp_path / "schedules.png", "cifar10 airbench94 x0.25\n" + " vs ".join(arms))
    drawn = figure.get_tightbbox()  # inches, every artist drawn: the title included
    assert drawn.x0 >= 0 and drawn.x1 <= figure.get_figwidth() and drawn.y1 <= figure.get_figheight()
    assert "lr=0.8" in figure.get_suptitle()  # wrapped, not cut
