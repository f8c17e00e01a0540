"""Every default in one dataclass. Experiment files override a few fields; the command line overrides any:

    python train.py --config=configs/cifar10_resnet9.py --config.batch_size=1024 --config.data_dir=/data/tfds

Units: the run's length and the evaluation interval are in epochs; every other duration is in optimizer steps.
Epochs are converted to steps once, from the global batch size, in training/plan.py (see `derived` in the
workdir's config.json). configs/validation.py checks every value before anything runs. Nothing here imports
TensorFlow: `--help`, `--helpconfig` and a config error answer at once.
"""

import copy
import dataclasses

from absl import flags
from ml_collections import config_flags


class ConfigError(ValueError):
    """A config value that cannot work: the message names the flag (`--config.<field>`) and what would."""


@dataclasses.dataclass
class Augmentation:
    """What to apply to training batches; each part off with 0/False. Defaults: the Dawnbench CIFAR-10 recipe."""

    crop_padding: int = 4  # reflect-pad by this many pixels, then crop back at a random offset
    flip: bool = True  # horizontal flip with probability 1/2
    cutout: int = 8  # zero a square of this side at a random centre (after normalisation: the mean pixel)
    # with flip: airbench's alternating flip instead, a seeded half of the images mirrored in epoch 0 and every
    # image mirrored in alternate epochs from its epoch-0 side (a function of seed, example and epoch)
    alternate_flip: bool = False
    # then these, in order: names in configs/registry.py's AUGMENTATIONS ("jitter") or your own module:attribute,
    # each fn(images, seed) -> images on a normalised float batch, drawing from the stateless seed (shape [2])
    extra: tuple[str, ...] = ()


@dataclasses.dataclass
class Trial:
    """`--mode=trial`: `runs` seeds of the config; with `arms`, each arm over the same seeds, side by side."""

    runs: int = 3  # seeds config.seed, config.seed + 1, ...; each a fresh model in its own sub-folder
    arms: tuple[str, ...] = ()  # a comparison: each arm is overrides of this config, e.g. "schedule=constant lr=0.1"
    threshold: float | None = None  # the comparison's accuracy threshold; None: the lower of the arms' mean best
    price_per_hour: float = 0.0  # > 0: report the cost, hours x this (e.g. a cloud machine's price)


@dataclasses.dataclass
class LRFind:
    """`--mode=lr_find`: the LR range test, with the config's strategy, data, model, optimizer and precision."""

    start_lr: float = 1e-4  # the sweep's first learning rate (the actual rate, at the config's batch size)
    end_lr: float = 10.0  # ... and its last: it grows exponentially in between
    num_steps: int = 200  # steps of the sweep, at most; it stops earlier when the loss diverges
    divergence: float = 4.0  # stop once the smoothed loss exceeds this multiple of its minimum
    beta: float = 0.98  # smoothing of the loss (fastai's), with bias correction
    # the rule that reads max_lr off the curve: "onecycle" (where the smoothed loss stops falling; for 1Cycle),
    # or fastai's "valley", "minimum_over_10" or "steepest" (onecycle/lr_range.py's `suggest`)
    rule: str = "onecycle"


@dataclasses.dataclass
class LRTune:
    """`--mode=lr_tune`: the LR range test, then short runs of the config (its schedule) at `candidates` max_lrs
    spanning its suggestions up to its minimum, judged on a held-out part of the training set; the best is the pick."""

    candidates: int = 5  # max_lrs on a log grid from the lowest rule's lr to the smoothed minimum's
    epochs: int = 0  # each candidate's run; 0: a quarter of config.epochs, at least 1
    runs: int = 1  # seeds per candidate (config.seed, config.seed + 1, ...); the pick is by the mean
    holdout: float = 0.1  # the held-out part judged on, when config.holdout is 0 (a fraction, or a count)


@dataclasses.dataclass
class Config:
    # Data
    # a name in configs/registry.py's DATASETS ("quickstart", "quickstart_hard", "synthetic", "image_folder"), a
    # tfds dataset's name, or your own module:attribute (README, "Add your own dataset")
    dataset: str = "quickstart"
    data_dir: str | None = None  # tfds data_dir, or the image folder's root
    download: bool = False  # let tfds download a dataset missing from data_dir
    # skip (and count) undecodable images (an image folder's files, tfds records read from disk) instead of stopping
    # at one; read from disk, every image is then decoded once when the run starts
    skip_bad_images: bool = False
    image_size: tuple[int, int] | None = None  # (height, width) to resize to; None keeps the native size
    # "auto": hold the dataset in memory if its uint8 images at image_size take at most max_in_memory_gib, else
    # read it from disk by index with ImageNet-style crops (tfds ArrayRecord or image folders); "memory" or "disk"
    input_path: str = "auto"
    max_in_memory_gib: float = 8.0  # "auto"'s threshold, training and evaluation sets together
    eval_split: str = ""  # tfds split to evaluate on; "": "test" if the dataset has one, else "validation"
    # > 0: hold this fraction (< 1) or count (>= 1) of the training set out of training and evaluate on it
    # instead of the test split, which is then not read: for tuning (input_pipeline/holdout.py)
    holdout: float = 0.0
    augmentation: Augmentation = dataclasses.field(default_factory=Augmentation)
    augment_on_device: bool = False  # augment inside the compiled step on the accelerator, not in tf.data
    # Progressive resizing: the training images' side in pixels for each epoch, the last held (fulcrum's record:
    # (24, 24, 24, 28, 28, 28, 32)); each batch is resized (bilinear) after its augmentation, inside the compiled
    # step, each size its own compiled program; evaluation keeps the dataset's size. () : no resizing
    resize_schedule: tuple[int, ...] = ()
    # Keep the whole uint8 training set on each replica's device and gather, normalise and augment every batch
    # inside the compiled step (airbench's trick): no input pipeline, the same batches as the tf.data path
    data_on_device: bool = False

    # Model
    model: str = "resnet9"  # a name in models.MODELS, or your own module:attribute (README, "Add your own model")
    width: float = 1.0  # channel multiplier (resnet9 1.0: 64-128-256-512)
    sync_batch_norm: bool = False  # all-reduce BatchNorm statistics across replicas

    # Optimisation: a schedule over `epochs` (1Cycle by default), peak lr scaled linearly with the global batch
    batch_size: int = 512  # global, over all replicas and workers
    # the schedule's length; steps = floor(epochs * floor(train examples / batch_size)): fractions allowed (9.9)
    epochs: float = 24
    # "sgd", "nesterov", "adam", "adamw", "rmsprop", "muon" (configs/registry.py's OPTIMIZERS), or your own
    # module:attribute
    optimizer: str = "nesterov"
    lr: float = 0.4  # peak learning rate at batch size `lr_reference_batch`
    lr_reference_batch: int = 512  # max_lr = lr * batch_size / lr_reference_batch
    # "onecycle", a baseline ("constant", "step", "warmup_cosine", "linear_decay"), or your own module:attribute
    schedule: str = "onecycle"
    # 1Cycle (schedule="onecycle"): PyTorch OneCycleLR's parameters; momentum cycles max -> base -> max
    pct_start: float = 0.25  # fraction of the run spent warming up (a fraction, not a percentage)
    div_factor: float = 25.0  # the first lr is max_lr / div_factor
    final_div_factor: float = 1e4  # the last lr is max_lr / div_factor / final_div_factor
    anneal_strategy: str = "linear"  # "linear" or "cos"
    three_phase: bool = False  # fastai-style: anneal back to the first lr, then down to the last
    base_momentum: float = 0.85  # momentum at the peak lr
    max_momentum: float = 0.95  # also the baselines' constant momentum (Adam: beta_1)
    # Baselines: "step" multiplies the lr by step_factor at each milestone (fractions of the run);
    # "warmup_cosine" warms up linearly over warmup_pct of the run, then decays to max_lr * final_lr_ratio
    step_milestones: tuple[float, ...] = (0.5, 0.75)  # fractions of the run
    step_factor: float = 0.1  # the lr's factor at each milestone
    warmup_pct: float = 0.05  # fraction of the run warming up linearly
    final_lr_ratio: float = 0.0  # the last lr, as a fraction of max_lr
    weight_decay: float = 5e-4  # decoupled (Keras): w -= lr * weight_decay * w every step; not on biases/BN
    decay_biases_and_norms: bool = False  # also decay biases and normalisation weights (airbench decays all)
    # SGD's update: "keras" (v = m*v - lr*g; w += v) or "pytorch" (b = m*b + g; w -= lr*b, with weight_decay as
    # PyTorch's coupled g += weight_decay * w), the form the recipes we port were tuned in (onecycle.SGD)
    momentum_form: str = "keras"
    # Learning-rate multipliers by variable kind, "kind=factor": kinds are norm_bias, norm_scale (normalisation
    # layers' offsets and scales), bias (other 1-D), kernel (2-D: dense) and filter (convolutions'). airbench:
    # ("norm_bias=64",)
    lr_multipliers: tuple[str, ...] = ()
    whiten_bias_epochs: float = 0.0  # > 0: stop training the whitening stem's bias after this (airbench94: 3)
    # optimizer="muon" (onecycle.Muon): the convolution filters' momentum and decoupled weight decay (per unit of
    # rate); the other variables take momentum and weight_decay, as onecycle.SGD in PyTorch's form
    muon_momentum: float = 0.655
    muon_weight_decay: float = 0.0
    label_smoothing: float = 0.2  # 0: none

    # Distribution and precision
    strategy: str = "auto"  # "auto", "default", "mirrored", "multi_worker" or "tpu"
    devices: str = ""  # for "mirrored": comma-separated, e.g. "/gpu:0,/gpu:1"; "" = all GPUs
    tpu: str = ""  # TPU name or address for "tpu"; "" = the local TPU VM
    slurm_port_base: int = 8888  # under srun: task i of a node listens on this port + i
    cluster_wait_seconds: float = 600.0  # several workers: give up (exit 129) if they have not all started by then
    precision: str = "float32"  # "float32", "mixed_float16" or "mixed_bfloat16"
    # XLA-compile each replica's forward and backward pass. None (auto): on for GPUs and TPUs and for mixed
    # precision (fast on a CPU only under XLA), off for float32 on a CPU, where it is slower (benchmarks/README.md),
    # and off with deterministic=True
    jit_compile: bool | None = None
    steps_per_loop: int = 100  # optimizer steps per call into the compiled loop
    # ...and at most about this many seconds of them: a signal's save starts within it, so keep it well under the
    # scheduler's grace period (Kubernetes: 30 s; the save itself comes after)
    max_call_seconds: float = 10.0

    # Evaluation
    eval_every_epochs: float = 0.0  # 0: evaluate once, at the end; fractions allowed (0.5: twice an epoch)
    eval_flip: bool = False  # test-time augmentation: average the logits of each image and its mirror image
    # ... and, with eval_flip, airbench's multi-crop TTA: the mirror pairs of the image and of it shifted one pixel
    # down-right and up-left (reflect-padded), weighted 0.5, 0.25 and 0.25: 6 forward passes per image
    eval_translate: bool = False
    # which evaluations use that test-time augmentation: "every" one, or only the one at the "end" (those during
    # training are then plain: a race's curve at a sixth of the cost); the last also records its plain accuracy
    eval_tta_at: str = "every"
    ema_momentum: float = 0.0  # > 0 (e.g. 0.99): evaluate and export a moving average of the weights (Keras use_ema)
    # > 0: airbench's Lookahead, every this many steps (airbench: 5) the weights and BatchNorm statistics move to
    # their moving average, which they are also set to at each epoch's end and at the end (onecycle/lookahead.py);
    # exclusive with ema_momentum
    lookahead_every_steps: int = 0
    lookahead_decay: float = 0.95  # per step: a move's decay is lookahead_decay ** every x (step / total steps) ** 3
    lookahead_start_epochs: float = 0.0  # the average begins at the first move after this (airbench: 3)
    target_accuracy: float | None = None  # record the first evaluation at or above it (step, epoch, seconds)
    stop_at_target: bool = False  # Dawnbench: stop there (a schedule comparison must not: its length is the recipe)

    # Bookkeeping (steps)
    seed: int = 0  # initialisation, data order and augmentation; the dataset itself does not depend on it
    # TensorFlow's op determinism (process-wide, from the first run that sets it). None (auto): on for GPUs where
    # XLA is off (XLA refuses MaxPool's gradient under it), off on a CPU (deterministic already; ~8% slower with
    # it) and a TPU; True turns XLA's auto rule off (BUILD.md "Faults")
    deterministic: bool | None = None
    # Keep XLA's compiled programs in <the workdir's parent>/xla_cache/tf<version>, so that a restart, a trial's
    # next seed or a rerun of the config loads them instead of compiling (only with jit_compile on)
    xla_cache: bool = False
    log_every_steps: int = 100  # a progress line and TensorBoard scalars
    checkpoint_every_steps: int = 1000  # also at the end, and on SIGTERM
    stop_at_step: int | None = None  # stop early with a checkpoint (the schedule stays that of the full run)
    # Resume a workdir with a config that changes the run (e.g. fine-tuning with a new schedule); without it such
    # a rerun is refused, naming the fields that differ (training/workdir.py)
    allow_config_change: bool = False

    trial: Trial = dataclasses.field(default_factory=Trial)
    lr_find: LRFind = dataclasses.field(default_factory=LRFind)
    lr_tune: LRTune = dataclasses.field(default_factory=LRTune)


def with_overrides(config, overrides):
    """A copy of `config` with space-separated `field=value` overrides ("schedule=step trial.runs=2"), typed and
    checked as the command line's `--config.field=value` are (ml_collections' parser, on a private flag set)."""
    argv = ["overrides"] + [f"--config.{item}" for item in overrides.split()]
    values = flags.FlagValues()
    config_flags.DEFINE_config_dataclass("config", copy.deepcopy(config), flag_values=values, sys_argv=argv)
    values(argv)
    return values.config


def get_config():
    return Config()
