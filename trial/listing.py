"""Every run, trial, comparison and LR search under a folder, a row each: `python train.py --mode=report`.

It reads only the files the modes write (summary.json and config.json of a run; trial.json, comparison.json,
lr_find.json, lr_tune.json), so it works as well on a folder copied from another machine.
A trial's or a comparison's own runs are in its row, not listed apart; a run that has no summary yet is running
or was killed (rerun its command to resume it).
"""

import os

from training.workdir import WorkdirError, read_json

RECORDS = ("comparison", "lr_tune", "trial", "lr_find", "summary")  # the first one a folder holds names its kind
HEADERS = ("folder", "kind", "status", "config", "epochs", "accuracy", "train s", "command")


def main(config, workdir, invocation):
    """`--mode=report`: the table of every record under `workdir`."""
    if not os.path.isdir(workdir):
        raise WorkdirError(f"--workdir={workdir}: no such folder to report on (--mode=report lists the runs under it)")
    print(listing(workdir))


def listing(root):
    """The table of every record under `root`, as aligned text (a line saying so if there is none)."""
    rows = [_row(os.path.relpath(folder, root), kind, record, config) for folder, kind, record, config in find(root)]
    if not rows:
        return f"no runs under {root}: a run's folder holds config.json (and summary.json once it ends)"
    return _aligned([HEADERS, *rows])


def find(root):
    """[(folder, kind, record or None, config.json's record or None)] under `root`, in path order."""
    found = []
    for folder, subfolders, files in os.walk(root):
        subfolders.sort()
        kind = next((name for name in RECORDS if f"{name}.json" in files), None)
        if kind is None and "config.json" in files:
            kind = "unfinished"
        if kind is None:
            continue
        record = _read(os.path.join(folder, f"{kind}.json")) if kind != "unfinished" else None
        config = _read(os.path.join(folder, "config.json")) if "config.json" in files else None
        found.append((folder, kind, record, config))
        subfolders[:] = []  # its runs, checkpoints and sweeps are its own
    return found


def _row(folder, kind, record, recorded):
    """One row: the record's status, config, epochs, accuracy, training seconds and command."""
    if kind in ("summary", "unfinished"):
        return _run_row(folder, record, recorded, unreadable=kind == "summary" and record is None)
    if record is None:
        return (folder, kind, f"{kind}.json unreadable", "", "", "", "", "")
    config = record["config"]
    name = _name(config)
    command = record.get("command", "")
    if kind == "trial":
        runs, numbers = record["runs"], record["aggregate"]
        spread = f" ± {100 * numbers['final_accuracy_std']:.2f}" if numbers["runs"] > 1 else ""
        accuracy = f"{100 * numbers['final_accuracy_mean']:.2f}{spread}% (mean of {numbers['runs']})"
        status = f"{numbers['runs']} runs" + (f", {numbers['diverged']} diverged" if numbers["diverged"] else "")
        train = sum(run["train_seconds"] for run in runs) / len(runs)
        epochs = f"{config['epochs']:g}"
        return (folder, "trial", status, name, epochs, accuracy, f"{train:.1f}", command)
    if kind == "comparison":
        best = max(record["arms"], key=lambda arm: arm["final_accuracy_mean"])
        accuracy = f"{100 * best['final_accuracy_mean']:.2f}% best arm: {best['arm']}"
        status = f"{len(record['arms'])} arms"
        return (folder, "comparison", status, name, f"{config['epochs']:g}", accuracy, "", command)
    if kind == "lr_tune":
        pick = record["pick"]
        accuracy = f"{100 * pick['holdout_accuracy_mean']:.2f}% (holdout) at --config.lr={pick['config_lr']:.4g}"
        epochs = f"{record['budget']['epochs']:g} of {config['epochs']:g}"
        return (folder, "lr_tune", f"{len(record['candidates'])} candidates", name, epochs, accuracy, "", command)
    suggestion = record["suggestion"]
    lr = suggestion.get("config_lr")
    found = f"suggests --config.lr={lr:.4g} ({suggestion['rule']})" if lr else "no suggestion"
    return (folder, "lr_find", "swept", name, "", found, "", command)


def _run_row(folder, summary, recorded, unreadable=False):
    config = (recorded or {}).get("config", {})
    command = (recorded or {}).get("command", "")
    name = _name(config) if config else ""
    if unreadable:
        return (folder, "run", "summary.json unreadable", name, "", "", "", command)
    if summary is None:
        return (folder, "run", "no summary: running or killed", name, "", "", "", command)
    epochs = f"{summary['epochs']:.2f}" + (f"/{config['epochs']:g}" if "epochs" in config else "")
    accuracy = ""
    if summary["eval_accuracy"] is not None:
        accuracy = (
            f"{100 * summary['eval_accuracy']:.2f}% ({summary['eval_split']}; best "
            f"{100 * summary['best_eval_accuracy']:.2f}%)"
        )
    return (folder, "run", summary["status"], name, epochs, accuracy, f"{summary['train_seconds']:.1f}", command)


def _name(config):
    return f"{config['dataset']} {config['model']} x{config['width']:g} {config['schedule']}"


def _read(path):
    """The record at `path`, or None if it cannot be read (torn, half-copied): the listing goes on."""
    try:
        return read_json(path)
    except (OSError, WorkdirError):
        return None


def _aligned(rows):
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(f"{cell!s:<{width}}" for cell, width in zip(row, widths)).rstrip() for row in rows)
