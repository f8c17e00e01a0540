"""The Markdown a person reads: a trial's runs and aggregate, a comparison's row per arm, and the conventions."""

RECORD_RUNS = 200  # the runs the CIFAR-10 speed records certify with (fulcrum's harness; a one-sided t-test)


def trial_markdown(title, record):
    config, summary, runs = record["config"], record["aggregate"], record["runs"]
    target = config["target_accuracy"]
    lines = [f"# Trial: {title}", "", _environment(record), _evaluated_on(runs), ""]
    header = [
        "seed",
        "status",
        "final acc",
        "best acc",
        "epochs",
        "train s",
        "record s",
        "compile s",
        "eval s",
        "wall s",
        "img/s",
    ]
    if target is not None:
        header[4:4] = [f"epoch to {_pct(target)}", f"train s to {_pct(target)}", f"dawnbench s to {_pct(target)}"]
    lines += [_row(header), _row(["---"] * len(header))]
    for run in runs:
        cells = [
            run["seed"],
            run["status"],
            _pct(run["eval_accuracy"]),
            _pct(run["best_eval_accuracy"]),
            _num(run["epochs"]),
            _num(run["train_seconds"]),
            _num(run.get("record_seconds")),
            _num(run["compile_seconds"]),
            _num(run["eval_seconds"]),
            _num(run["wall_seconds"]),
            _num(run["images_per_second"], 0),
        ]
        if target is not None:
            crossing = run["target"] or {}
            cells[4:4] = [_num(crossing.get(key)) for key in ("epoch", "train_seconds", "dawnbench_seconds")]
        lines.append(_row(cells))
    lines += ["", "Over the runs:", "", _row(["quantity", "value"]), _row(["---", "---"])]
    spread = f"{_pct(summary['final_accuracy_mean'])} ± {_pct(summary['final_accuracy_std'])}"
    lines.append(_row(["final accuracy", f"{spread} (mean ± std of {summary['runs']})"]))
    lines += _race_rows(summary["race"])
    if "final_accuracy_plain_mean" in summary:
        plain = f"{_pct(summary['final_accuracy_plain_mean'])} ± {_pct(summary['final_accuracy_plain_std'])}"
        lines.append(_row(["final accuracy without test-time augmentation", plain]))
    lines.append(_row(["best accuracy (mean)", _pct(summary["best_accuracy_mean"])]))
    if target is not None:
        lines.append(_row([f"reached {_pct(target)}", f"{summary['reached']} of {summary['runs']}"]))
        lines += _to_threshold_rows(summary)
        if "cost_to_threshold_mean" in summary:
            lines.append(_row(["cost to target (mean)", _num(summary["cost_to_threshold_mean"], 3)]))
    if summary.get("record_seconds_mean") is not None:
        lines.append(_row(["record seconds (mean: prepare + train)", _num(summary["record_seconds_mean"])]))
    lines.append(_row(["images/second (mean)", _num(summary["images_per_second_mean"], 0)]))
    lines.append(_row(["wall seconds, all runs", _num(summary["wall_seconds_total"])]))
    if "cost_total" in summary:
        lines.append(_row(["cost, all runs", _num(summary["cost_total"], 3)]))
    return "\n".join(lines + ["", _conventions(record)]) + "\n"


def _race_rows(race):
    """The record's evidence lines: the final accuracy's 95% confidence interval and the one-sided t-test."""
    if race["ci95_low"] is None:
        return [_row(["95% confidence interval", f"none: {race['n']} run (a trial of 2 or more has one)"])]
    rows = [_row(["95% confidence interval", f"{_interval(race)} (t, n={race['n']})"])]
    if race.get("target") is not None:
        verdict = "above it with 95% confidence" if race["p_value"] < 0.05 else "not shown to be above it"
        if race["n"] < RECORD_RUNS:
            verdict += f"; a record's claim takes n = {RECORD_RUNS}, as the CIFAR-10 records give"
        rows.append(
            _row(
                [
                    f"mean >= {_pct(race['target'])}?",
                    f"one-sided t-test: t = {race['t']:.2f}, n = {race['n']}, p = {race['p_value']:.3g} ({verdict})",
                ]
            )
        )
    return rows


def _interval(race):
    return "-" if race["ci95_low"] is None else f"[{_pct(race['ci95_low'])}, {_pct(race['ci95_high'])}]"


def _p_value(race):
    """The one-sided t-test's p-value and its target, in a comparison's cell ("-" without a target or a spread)."""
    return "-" if race.get("p_value") is None else f"{race['p_value']:.3g} ({_pct(race['target'])})"


def comparison_markdown(title, record):
    threshold, arms = record["threshold"], record["arms"]
    lines = [
        f"# Comparison: {title.replace(chr(10), ': ')}",
        "",
        _environment(record),
        "",
        f"Common threshold: **{_pct(threshold)}** ({record['threshold_rule']}).",
        "",
    ]
    header = [
        "arm",
        "runs",
        "final acc (mean ± std)",
        "its 95% interval",
        "p: mean >= target",
        "best acc (mean)",
        f"reached {_pct(threshold)}",
        "epochs to it (mean)",
        "train s to it (mean)",
        "epoch ratio",
        "seconds ratio",
    ]
    with_plain = any("final_accuracy_plain_mean" in row for row in arms)
    if with_plain:
        header[3:3] = ["without TTA (mean)"]
    lines += [_row(header), _row(["---"] * len(header))]
    for row in arms:
        plain = [_pct(row.get("final_accuracy_plain_mean", row["final_accuracy_mean"]))] if with_plain else []
        lines.append(
            _row(
                [
                    f"`{row['arm']}`",
                    f"{row['runs']} ({row['diverged']} diverged)" if row.get("diverged") else row["runs"],
                    f"{_pct(row['final_accuracy_mean'])} ± {_pct(row['final_accuracy_std'])}",
                    *plain,
                    _interval(row["race"]),
                    _p_value(row["race"]),
                    _pct(row["best_accuracy_mean"]),
                    f"{row['reached']} of {row['runs']}",
                    _num(row["epoch_to_threshold_mean"]),
                    _num(row["train_seconds_to_threshold_mean"]),
                    _num(row["epoch_ratio_to_first_arm"]),
                    _num(row["train_seconds_ratio_to_first_arm"]),
                ]
            )
        )
    lines += [
        "",
        "Ratios are to the first arm (above 1: that arm needed more). Epochs and seconds are means over the "
        "runs that reached the threshold; a run's crossing is its first evaluation at or above it. The p-value is "
        'the one-sided t-test of "the arm\'s mean final accuracy >= its target_accuracy" (below 0.05: above it '
        "with 95% confidence); each arm's trial.md has its t.",
    ]
    return "\n".join(lines + ["", _conventions(record)]) + "\n"


def lr_tune_markdown(title, record):
    pick, budget = record["pick"], record["budget"]
    lines = [
        f"# LR tune: {title}",
        "",
        f"Each candidate trained {budget['epochs']:g} of the config's {budget['of_config_epochs']:g} epochs with "
        f"its schedule ({record['config']['schedule']}), "
        f"{budget['runs_per_candidate']} seed(s) each, and was judged by its final accuracy on "
        f"{_holdout(record['holdout'])} held out of the training set. The test split was not read.",
        "",
        _row(["max_lr", "--config.lr", "held-out acc (mean ± std)", "runs", "wall s", ""]),
        _row(["---"] * 6),
    ]
    for candidate in record["candidates"]:
        lines.append(
            _row(
                [
                    f"{candidate['max_lr']:.3g}",
                    f"{candidate['config_lr']:.4g}",
                    f"{_pct(candidate['holdout_accuracy_mean'])} ± {_pct(candidate['holdout_accuracy_std'])}",
                    candidate["runs"],
                    _num(candidate["wall_seconds"], 0),
                    "**pick**" if candidate == pick else "",
                ]
            )
        )
    rules = ", ".join(f"{rule} {lr:.3g}" for rule, lr in record["rules"].items() if lr is not None)
    seconds = record["seconds"]
    lines += [
        "",
        f"The LR range test's rules (max_lr): {rules}. Time: the sweep {_num(seconds['sweep'], 0)} s, the "
        f"candidates {_num(seconds['candidates'], 0)} s. {record['lr_rule']}.",
    ]
    return "\n".join(lines) + "\n"


def _holdout(holdout):
    return f"{100 * holdout:g}%" if holdout < 1 else f"{int(holdout)} examples"


def _to_threshold_rows(summary):
    rows = []
    for key, label in (("epoch", "epochs"), ("train_seconds", "train seconds"), ("dawnbench_seconds", "dawnbench s")):
        mean, median = summary[f"{key}_to_threshold_mean"], summary[f"{key}_to_threshold_median"]
        rows.append(_row([f"{label} to target (mean / median)", f"{_num(mean)} / {_num(median)}"]))
    return rows


def _evaluated_on(runs):
    """Which split the accuracies are on: the test split, or examples held out of the training set."""
    first = runs[0] if runs else {}
    split, count = first.get("eval_split", "test"), first.get("eval_examples")
    held = " held out of the training set (config.holdout)" if split == "holdout" else ""
    return f"Accuracies are on the {split} split{f' ({count} examples{held})' if count else ''}."


def _environment(record):
    env = record["environment"]
    return (
        f"TensorFlow {env['tensorflow']}, Keras {env['keras']}, {env['replicas']} replica(s), "
        f"{env['precision']}, host `{env['hostname']}`, devices: {', '.join(env['devices'])}."
    )


def _conventions(record):
    return "Clocks:\n" + "\n".join(f"- `{name}`: {text}." for name, text in record["conventions"].items())


def _row(cells):
    return "| " + " | ".join(str(cell) for cell in cells) + " |"


def _pct(value):
    return "-" if value is None else f"{100 * value:.2f}%"


def _num(value, digits=2):
    return "-" if value is None else f"{value:.{digits}f}"
