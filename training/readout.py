"""What a person reads of a run: its plan when it starts and its results when it ends, as short aligned lines.

The machine-readable records are `config.json` and `summary.json`; these lines are for the terminal, and say
where those files are.
"""

import os


def aligned(rows):
    """`(label, value)` rows as lines "  label   value", the values in one column; rows whose value is None are left
    out."""
    rows = [(label, value) for label, value in rows if value is not None]
    width = max(len(label) for label, _ in rows)
    return "\n".join(f"  {label:<{width}}  {value}" for label, value in rows)


def plan_lines(plan, config, data):
    """The run's plan: what it trains on what, its length, batch, peak learning rate and how it runs."""
    stop = f", stopping at step {plan.end_step:,}" if plan.end_step < plan.total_steps else ""
    evaluate = f"every {plan.eval_every_steps:,} steps and at the end" if plan.eval_every_steps else "at the end"
    num_train = data.num_train
    shape = "x".join(str(size) for size in data.image_shape)
    return aligned(
        [
            ("model", f"{config.model}, width {config.width:g}, {config.optimizer} optimizer"),
            ("data", f"{data.name}: {num_train:,} training images of {shape}, {data.num_classes} classes"),
            (
                "steps",
                f"{plan.total_steps:,} = {_count(config.epochs, 'epoch')} x {plan.steps_per_epoch:,} steps{stop}",
            ),
            (
                "batch",
                f"{config.batch_size:,} global = {_count(plan.replicas, 'replica')} x {plan.per_replica_batch:,}, "
                f"over {num_train:,} training examples",
            ),
            ("schedule", f"{config.schedule}, peak lr {plan.max_lr:.4g} ({plan.lr_rule})"),
            ("resizing", _stages(plan)),
            ("evaluation", evaluate),
            ("runs as", f"{config.precision}, XLA {'on' if plan.jit_compile else 'off'}, input from {plan.input}"),
        ]
    )


def _stages(plan):
    """ "24 px from step 0, 28 from 96, 32 from 192 (progressive resizing)", or None without it."""
    if not plan.resize_stages:
        return None
    stages = ", ".join(f"{side} from {first:,}" for first, side in plan.resize_stages)
    return f"training images resized to {stages} (steps); evaluated as loaded"


def result_lines(summary, workdir, model_path=None):
    """A run's results from its summary (`training.report.run_summary`): status, accuracy, target, clocks,
    speed and files."""
    evaluations = summary["evaluations"]
    best = max(evaluations, key=lambda e: e["accuracy"], default=None)
    split = f"{summary['eval_split']} ({summary['eval_examples']:,} examples)"
    return aligned(
        [
            (
                "status",
                f"{summary['status']} at step {summary['steps']:,} of {summary['total_steps']:,} "
                f"({summary['epochs']:.2f} epochs)",
            ),
            (
                "accuracy",
                None
                if best is None
                else f"{_percent(summary['eval_accuracy'])} final{_tta(summary)}, {_percent(best['accuracy'])} "
                f"best (epoch {best['epoch']:.2f}), on {split}",
            ),
            ("target", _target(summary)),
            ("seconds", _clocks(summary)),
            (
                "speed",
                None
                if summary["images_per_second"] is None
                else f"{summary['images_per_second']:,.0f} images/s over train_seconds "
                f"({_count(summary['replicas'], 'replica')}, {summary['precision']}, "
                f"global batch {summary['global_batch']:,})",
            ),
            ("files", f"{workdir}: summary.json, history.jsonl, config.json, checkpoints/"),
            ("model", model_path and f"{model_path} (class names: classes.json beside it)"),
            ("curves", f"tensorboard --logdir {os.path.join(workdir, 'tensorboard')}"),
        ]
    )


def _tta(summary):
    """What follows a final accuracy measured with test-time augmentation: " (6 views; 83.43% plain)"."""
    views, plain = summary.get("eval_views") or 1, summary.get("eval_accuracy_plain")
    if views == 1:
        return ""
    return f" ({views} views{'' if plain is None else f'; {_percent(plain)} plain'})"


def _target(summary):
    if summary["target_accuracy"] is None:
        return None
    reached = summary["target"]
    if reached is None:
        return f"{_percent(summary['target_accuracy'])} not reached"
    return (
        f"{_percent(summary['target_accuracy'])} reached at epoch {reached['epoch']:.2f} "
        f"(train {reached['train_seconds']:.1f} s, dawnbench {reached['dawnbench_seconds']:.1f} s)"
    )


def _clocks(summary):
    names = ("train", "compile", "eval", "data", "dawnbench", "wall")
    return "  ".join(f"{name} {summary[f'{name}_seconds']:.1f}" for name in names)


def _count(number, noun):
    return f"{number:g} {noun}{'' if number == 1 else 's'}"


def _percent(fraction):
    return f"{100 * fraction:.2f}%"
