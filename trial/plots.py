"""PNG plots of trials, comparisons and schedules (matplotlib, headless).

Drawn on `matplotlib.figure.Figure`s, which need no display and leave pyplot's backend and figures alone (so a
notebook that imports this keeps its own).
"""

import textwrap

from matplotlib.figure import Figure

from trial.aggregate import mean_curve

LEGEND_CHARACTERS = 70  # an arm's name per legend line: longer ones squeezed the panels to make room

_PANELS = (  # (record kind, y key, y label, x key, x label)
    ("evaluations", "accuracy", "eval accuracy", "epoch", "epochs"),
    ("evaluations", "accuracy", "eval accuracy", "train_seconds", "training seconds (airbench)"),
    ("history", "loss", "train loss", "epoch", "epochs"),
    ("history", "loss", "train loss", "train_seconds", "training seconds (airbench)"),
)


def plot_trial(runs, path, title, target=None):
    """Eval accuracy and train loss against epochs and seconds: a thin line per run and the mean in bold."""
    figure = Figure(figsize=(11, 8))
    axes = figure.subplots(2, 2)
    for axis, (kind, key, ylabel, xkey, xlabel) in zip(axes.flat, _PANELS):
        for run in runs:
            axis.plot(
                [r[xkey] for r in run[kind]],
                [r[key] for r in run[kind]],
                lw=0.8,
                alpha=0.5,
                marker=".",
                label=f"seed {run['seed']}",
            )
        _, mean = mean_curve(runs, kind, key)
        _, x = mean_curve(runs, kind, xkey)
        axis.plot(x, mean, color="black", lw=2, marker=".", label=f"mean of {len(runs)}")
        _decorate(axis, xlabel, ylabel, target if key == "accuracy" else None)
    axes[0, 0].legend(fontsize=8)
    return _save(figure, title, path)


def plot_comparison(trials, path, title, threshold):
    """Each arm's mean eval accuracy and train loss against epochs and seconds, with the common threshold."""
    figure = Figure(figsize=(11, 8))
    axes = figure.subplots(2, 2)
    for axis, (kind, key, ylabel, xkey, xlabel) in zip(axes.flat, _PANELS):
        for name, runs in trials.items():
            _, mean = mean_curve(runs, kind, key)
            _, x = mean_curve(runs, kind, xkey)
            axis.plot(x, mean, lw=1.5, marker=".", label=textwrap.fill(f"{name} ({len(runs)})", LEGEND_CHARACTERS))
        _decorate(axis, xlabel, ylabel, threshold if key == "accuracy" else None)
    axes[0, 0].legend(fontsize=8)
    return _save(figure, title, path)


def plot_schedules(curves, path, title):
    """Learning rate and momentum against the step; `curves` maps a name to (lrs, momenta)."""
    figure = Figure(figsize=(11, 4))
    lr_axis, momentum_axis = figure.subplots(1, 2)
    for name, (lrs, momenta) in curves.items():
        lr_axis.plot(lrs, label=name)
        momentum_axis.plot(momenta, label=name)
    _decorate(lr_axis, "optimizer step", "learning rate")
    _decorate(momentum_axis, "optimizer step", "momentum (Adam: beta_1)")
    lr_axis.legend(fontsize=8)
    return _save(figure, title, path)


def plot_lr_tune(record, curve, path, title):
    """Held-out accuracy against max_lr (log axis), each candidate's mean with its spread, the pick circled; the
    LR range test's smoothed loss on a second axis, with its rules marked."""
    figure = Figure(figsize=(9, 5))
    axis = figure.subplots()
    candidates = record["candidates"]
    lrs = [c["max_lr"] for c in candidates]
    axis.errorbar(
        lrs,
        [c["holdout_accuracy_mean"] for c in candidates],
        yerr=[c["holdout_accuracy_std"] for c in candidates],
        color="black",
        marker="o",
        capsize=3,
        label="held-out accuracy",
    )
    pick = record["pick"]
    axis.plot([pick["max_lr"]], [pick["holdout_accuracy_mean"]], "o", ms=14, mfc="none", mec="tab:red", label="pick")
    axis.set_xscale("log")
    _decorate(axis, "max_lr", "held-out accuracy")
    loss_axis = axis.twinx()
    points = [p for p in curve if p["smoothed"] is not None]
    loss_axis.plot([p["lr"] for p in points], [p["smoothed"] for p in points], color="tab:blue", alpha=0.5)
    loss_axis.set_ylabel("LR range test: smoothed training loss", color="tab:blue")
    for (rule, lr), style in zip(record["rules"].items(), ("-", "-.", "--", ":", (0, (1, 3)))):
        if lr:
            axis.axvline(lr, color="grey", ls=style, lw=1, label=f"{rule}: {lr:.3g}")
    axis.legend(fontsize=8, loc="lower left")
    return _save(figure, title, path)


def _decorate(axis, xlabel, ylabel, line=None):
    if line is not None:
        axis.axhline(line, color="grey", ls="--", lw=1)
    axis.set_xlabel(xlabel)
    axis.set_ylabel(ylabel)
    axis.grid(alpha=0.3)


def _save(figure, title, path):
    """Writes the figure under its title, each line of which is wrapped to the figure's width (a comparison's
    title names every arm, and eight of them ran off both edges); returns the figure."""
    characters = int(figure.get_figwidth() * 11)  # of a 10-point font, about 11 to the inch
    figure.suptitle("\n".join(textwrap.fill(line, characters) for line in title.split("\n")), fontsize=10)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    return figure
