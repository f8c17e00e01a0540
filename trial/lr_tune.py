"""`--mode=lr_tune`: a max_lr chosen by training, not read off a curve.

The LR range test's rules disagree by 10-100x on the same curve, and none of them is reliable alone. So: sweep
once (training.lr_find), take `lr_tune.candidates` max_lrs on a log grid from the lowest rule's lr up to the
smoothed minimum's, train each with the configured recipe for a short budget (`lr_tune.epochs`) as one arm of a
comparison (trial.runner, so an interrupted tune resumes without redoing a finished candidate), and judge them
by their final accuracy on a part of the training set held out of training (`config.holdout`, else
`lr_tune.holdout`). The test split is never read. The pick is the candidate of the highest mean held-out
accuracy; an exact tie goes to the lower rate (the safer one: nothing measured says the higher is better).

    <workdir>/lr_tune.json, lr_tune.md, lr_tune.png      the candidates, their held-out accuracy, the pick
    <workdir>/sweep/lr_find.json, lr_find.png             the LR range test (reused when its config is the same)
    <workdir>/candidates/<lr=...>/seed<N>/                each candidate's runs
"""

import dataclasses
import json
import os

import numpy as np
from absl import logging

from configs.base import Trial
from configs.validation import arm_folder, validate
from onecycle.lr_range import RULES
from training import report
from training.lr_find import find_lr
from training.plan import config_lr
from training.strategy import from_config, is_chief
from training.workdir import read_json
from trial import plots, tables
from trial.runner import run_comparison


def main(config, workdir, invocation):
    """`--mode=lr_tune`: the tune, then the command that trains with its pick."""
    pick = tune_lr(config, workdir)["pick"]
    command = invocation.training_command(pick["config_lr"])
    print(f"train with the pick (table in {os.path.join(workdir, 'lr_tune.md')}):\n  {command}")


def tune_lr(config, workdir, strategy=None):
    """Sweeps, trains the candidates and picks one; writes `lr_tune.json`, `.md` and `.png`; returns the record."""
    settings = config.lr_tune
    tuned = dataclasses.replace(config, holdout=config.holdout or settings.holdout)
    validate(tuned)
    strategy = strategy or from_config(tuned)
    sweep = _sweep(tuned, os.path.join(workdir, "sweep"), strategy)
    suggestion = sweep["suggestion"]
    if not suggestion.get("suggested_max_lr"):
        raise RuntimeError(f"lr_tune: the LR range test found no max_lr to start from: {suggestion['warning']}")
    max_lrs = candidate_lrs(suggestion, settings.candidates)
    arms = {f"lr={config_lr(config, max_lr):.4g}": max_lr for max_lr in max_lrs}
    epochs = settings.epochs or max(1, int(config.epochs // 4))
    comparison = run_comparison(
        dataclasses.replace(
            tuned,
            epochs=epochs,
            eval_every_epochs=0.0,
            target_accuracy=None,
            stop_at_target=False,
            stop_at_step=None,
            trial=Trial(runs=settings.runs, arms=tuple(arms)),
        ),
        os.path.join(workdir, "candidates"),
        strategy,
    )
    candidates = [
        {
            "max_lr": arms[row["arm"]],
            "config_lr": float(row["arm"].removeprefix("lr=")),
            "holdout_accuracy_mean": row["final_accuracy_mean"],
            "holdout_accuracy_std": row["final_accuracy_std"],
            "runs": row["runs"],
            "wall_seconds": row["wall_seconds_total"],
            "folder": os.path.join("candidates", arm_folder(row["arm"])),
        }
        for row in comparison["arms"]
    ]
    pick = best(candidates)
    record = {
        "pick": pick,
        "candidates": candidates,
        "rules": {rule: suggestion.get(f"{rule}_lr") for rule in (*RULES, "minimum")},
        "sweep_rule": suggestion["rule"],
        "budget": {"epochs": epochs, "of_config_epochs": config.epochs, "runs_per_candidate": settings.runs},
        "holdout": tuned.holdout,
        "evaluated_on": "holdout",
        "seconds": {
            "sweep": sweep.get("wall_seconds"),
            "candidates": sum(candidate["wall_seconds"] for candidate in candidates),
        },
        "lr_rule": sweep["lr_rule"],
        "config": dataclasses.asdict(config),
    }
    if is_chief(strategy):
        title = (
            f"{config.dataset} {config.model} x{config.width:g}, batch {config.batch_size}: "
            f"{epochs:g} of {config.epochs:g} epochs"
        )
        report.write_json(os.path.join(workdir, "lr_tune.json"), record)
        with open(os.path.join(workdir, "lr_tune.md"), "w") as f:
            f.write(tables.lr_tune_markdown(title, record))
        plots.plot_lr_tune(record, sweep["curve"], os.path.join(workdir, "lr_tune.png"), title)
    logging.info(
        "lr_tune picks max_lr %.4g (--config.lr=%.4g): held-out accuracy %.2f%% after %d epochs; table in %s",
        pick["max_lr"],
        pick["config_lr"],
        100 * pick["holdout_accuracy_mean"],
        epochs,
        os.path.join(workdir, "lr_tune.md"),
    )
    return record


def candidate_lrs(suggestion, count):
    """`count` max_lrs on a log grid from the lowest of the rules' lrs to the smoothed minimum's, both included,
    each rounded to 2 significant digits (the grid is coarse; the arms' names stay readable)."""
    lowest = min(suggestion[f"{rule}_lr"] for rule in RULES)
    highest = suggestion["minimum_lr"]
    if highest <= lowest * 1.5:  # a curve whose rules all sit at its minimum: a decade around it
        lowest, highest = highest / 10, highest
    return [float(f"{lr:.2g}") for lr in np.geomspace(lowest, highest, count)]


def best(candidates):
    """The candidate of the highest mean held-out accuracy; an exact tie goes to the lower max_lr."""
    return max(candidates, key=lambda candidate: (candidate["holdout_accuracy_mean"], -candidate["max_lr"]))


def _sweeping(recorded):
    """A recorded config without the fields the sweep does not read (the tune's own and the trial's)."""
    return {field: value for field, value in recorded.items() if field not in ("lr_tune", "trial")}


def _sweep(config, workdir, strategy):
    """The LR range test of `config` in `workdir`: read back if it already ran there with this config."""
    path = os.path.join(workdir, "lr_find.json")
    if os.path.exists(path):
        record = read_json(path)
        asked = json.loads(json.dumps(dataclasses.asdict(config)))
        if _sweeping(record["config"]) == _sweeping(asked):
            logging.info("lr_tune: the LR range test already ran in %s; reading it back", workdir)
            return record
        logging.info("lr_tune: the LR range test in %s ran another config; sweeping again", workdir)
    return find_lr(config, workdir, strategy)
