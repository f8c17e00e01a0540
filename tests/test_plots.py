"""trial/plots.py: what a reader of the PNGs sees."""

import numpy as np

from trial.plots import plot_comparison, plot_schedules


def test_a_title_naming_many_arms_is_wrapped_inside_the_figure(tmp_path):
    arms = [f"schedule=warmup_cosine max_momentum=0.9 epochs=15 lr=0.{i}" for i in range(9)]
    curves = {arm: (np.linspace(0, 1, 10), np.linspace(0.95, 0.85, 10)) for arm in arms}
    figure = plot_schedules(curves, tmp_path / "schedules.png", "cifar10 airbench94 x0.25\n" + " vs ".join(arms))
    drawn = figure.get_tightbbox()  # inches, every artist drawn: the title included
    assert drawn.x0 >= 0 and drawn.x1 <= figure.get_figwidth() and drawn.y1 <= figure.get_figheight()
    assert "lr=0.8" in figure.get_suptitle()  # wrapped, not cut


def test_arms_with_long_names_leave_the_panels_their_width(tmp_path):
    def run(accuracy):
        points = [
            {"step": s, "epoch": s / 10, "train_seconds": s / 5, "accuracy": accuracy, "loss": 1.0} for s in (10, 20)
        ]
        return {"evaluations": points, "history": points}

    last = (
        "model=airbench94 lr_multipliers=norm_bias=64 whiten_bias_epochs=3 lookahead_every_steps=5 eval_translate=True"
    )
    arms = [f"{last} augmentation.alternate_flip=True seed={i}" for i in range(7)]  # as long as the cascade's last
    figure = plot_comparison({arm: [run(0.8)] for arm in arms}, tmp_path / "comparison.png", "a comparison", 0.75)
    for axis in figure.axes:
        assert axis.get_position().width > 0.35  # of the figure: two panels a row
