"""Trials: the same config over several seeds, and schedule configurations side by side over the same seeds.

Each run is an ordinary trainer run (`training.trainer.train_and_evaluate`) in its own sub-folder, so a trial that
is interrupted resumes where it stopped when its command is rerun: finished runs are read back from their
`summary.json`, the interrupted one resumes from its checkpoint, the rest start fresh.

    <workdir>/trial.json, trial.md, trial.png, schedule.png, seed<N>/...            (a trial)
    <workdir>/comparison.json, comparison.md, comparison.png, schedules.png, <arm>/  (a comparison of arms)
"""

import dataclasses
import os
import socket

import keras
import tensorflow as tf
from absl import logging

from configs.validation import arm_configs, arm_folder, validate
from training import report, trainer
from training.faults import RunInterrupted
from training.optimization import schedule_curves
from training.plan import peak_lr
from training.strategy import from_config, is_chief
from training.workdir import check_same_run, finished_summary, read_json
from trial import aggregate, plots, tables


def main(config, workdir, invocation):
    """`--mode=trial`: the trial (or, with arms, the comparison), then its table."""
    run = run_comparison if config.trial.arms else run_trial
    run(config, workdir, command=invocation.command)
    path = os.path.join(workdir, "comparison.md" if config.trial.arms else "trial.md")
    if os.path.exists(path):  # written by the chief: the tables, without the clocks' definitions that end it
        with open(path) as f:
            text = f.read().partition("\nClocks:")[0].rstrip()
        print(f"{text}\n\n(clocks defined, plots and every run: {workdir})")


def run_trial(config, workdir, strategy=None, command=None):
    """Runs (or resumes) `config.trial.runs` seeds of `config` in `workdir`; writes and returns the trial record.

    `command`: the command line that started it, recorded in the trial's and its runs' files."""
    validate(config)
    strategy = strategy or from_config(config)
    runs = []
    for index in range(config.trial.runs):
        seed = config.seed + index
        run_dir = os.path.join(workdir, f"seed{seed}")
        seeded = dataclasses.replace(config, seed=seed)
        summary = _ended_summary(run_dir, seeded, is_chief(strategy))
        if summary is None:
            logging.info("trial %s: run %d of %d (seed %d) in %s", workdir, index + 1, config.trial.runs, seed, run_dir)
            try:
                summary = trainer.train_and_evaluate(seeded, run_dir, strategy, command)
            except RunInterrupted as interrupted:
                if interrupted.status != "diverged":
                    raise
                summary = interrupted.summary  # a result of the trial (this config diverges at this seed): go on
        else:
            logging.info("trial %s: seed %d already finished in %s", workdir, seed, run_dir)
        runs.append(summary)
    record = {
        "config": dataclasses.asdict(config),
        "environment": environment(strategy, config),
        "conventions": report.CONVENTIONS,
        "aggregate": aggregate.aggregate(runs, config.target_accuracy, config.trial.price_per_hour),
        "runs": runs,
    } | ({"command": command} if command else {})
    if is_chief(strategy):
        title = trial_title(config)
        report.write_json(os.path.join(workdir, "trial.json"), record)
        with open(os.path.join(workdir, "trial.md"), "w") as f:
            f.write(tables.trial_markdown(title, record))
        plots.plot_trial(runs, os.path.join(workdir, "trial.png"), title, config.target_accuracy)
        lrs, momenta = schedule_curves(config, peak_lr(config), runs[0]["total_steps"])
        plots.plot_schedules({config.schedule: (lrs, momenta)}, os.path.join(workdir, "schedule.png"), title)
        logging.info("trial written to %s: trial.md, trial.json, trial.png, schedule.png", workdir)
    return record


def _ended_summary(run_dir, config, chief):
    """The summary of the run that ended in `run_dir` as `config` asks (finished, or diverged: rerunning it would
    diverge again), or None if it has to run. A run of another config is refused, as its resume would be
    (`workdir.check_same_run`): a trial rerun with a changed config never reports the old config's runs as the
    new one's."""
    path = os.path.join(run_dir, "summary.json")
    if not os.path.exists(path):
        return None
    check_same_run(run_dir, config, resuming=True, chief=chief)
    summary = read_json(path)
    return summary if summary["status"] == "diverged" else finished_summary(run_dir, config)


def run_comparison(config, workdir, strategy=None, command=None):
    """Runs each of `config.trial.arms` as a trial over the same seeds, then compares them at a common threshold.

    The threshold is `config.trial.threshold`, or else the lowest of the arms' mean best accuracies (of their runs
    that did not diverge: each arm's diverged runs are counted in its row); for each
    arm: epochs and seconds to first reach it (mean over the runs that did) and their ratio to the first arm's.
    """
    arms = arm_configs(config)
    strategy = strategy or from_config(config)
    trials = {
        name: run_trial(arm, os.path.join(workdir, arm_folder(name)), strategy, command) for name, arm in arms.items()
    }
    runs = {name: record["runs"] for name, record in trials.items()}
    threshold = config.trial.threshold or aggregate.common_threshold(runs) or 1.0  # 1.0: every run diverged
    # Each arm's aggregate, with the figures at the common threshold in place of those at its own target.
    rows = [
        {"arm": name} | trials[name]["aggregate"] | aggregate.to_threshold(runs[name], threshold) for name in trials
    ]
    reference = rows[0]
    for row in rows:
        for key in ("epoch", "train_seconds"):
            mine, theirs = row[f"{key}_to_threshold_mean"], reference[f"{key}_to_threshold_mean"]
            row[f"{key}_ratio_to_first_arm"] = mine / theirs if mine is not None and theirs else None
    record = {
        "threshold": threshold,
        "threshold_rule": "config.trial.threshold"
        if config.trial.threshold
        else "lowest mean best accuracy, of the runs that did not diverge",
        "arms": rows,  # in the config's order: the first is the reference of the ratios
        "config": dataclasses.asdict(config),
        "environment": environment(strategy, config),
        "conventions": report.CONVENTIONS,
    } | ({"command": command} if command else {})
    if is_chief(strategy):
        title = comparison_title(config, arms)
        report.write_json(os.path.join(workdir, "comparison.json"), record)
        with open(os.path.join(workdir, "comparison.md"), "w") as f:
            f.write(tables.comparison_markdown(title, record))
        plots.plot_comparison(runs, os.path.join(workdir, "comparison.png"), title, threshold)
        curves = {name: schedule_curves(arm, peak_lr(arm), runs[name][0]["total_steps"]) for name, arm in arms.items()}
        plots.plot_schedules(curves, os.path.join(workdir, "schedules.png"), title)
        logging.info("comparison written to %s: comparison.md, comparison.json, comparison.png", workdir)
    return record | {"trials": trials}


def environment(strategy, config):
    return {
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "devices": [device.name for device in tf.config.list_logical_devices()],
        "replicas": strategy.num_replicas_in_sync,
        "precision": config.precision,
        "hostname": socket.gethostname(),
    }


def comparison_title(config, arms):
    """What the arms share (dataset, model and width, epochs: each unless an arm overrides it), then the arms."""
    differ = {
        name
        for arm in arms.values()
        for name in ("dataset", "model", "width", "epochs")
        if getattr(arm, name) != getattr(config, name)
    }
    shared = [
        config.dataset if "dataset" not in differ else None,
        config.model if "model" not in differ else None,
        f"x{config.width:g}" if "width" not in differ else None,
    ]
    title = " ".join(part for part in shared if part)
    if "epochs" not in differ:
        title += f", {config.epochs:g} epochs"
    return f"{title}\n" + " vs ".join(arms)


def trial_title(config):
    return f"{config.dataset} {config.model} x{config.width:g}, {config.epochs:g} epochs, {config.schedule}"
