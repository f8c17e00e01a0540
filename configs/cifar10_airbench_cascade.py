"""The airbench94 ablation as one command: arms that add the record's parts in the published order.

    python train.py --mode=trial --config=configs/cifar10_airbench_cascade.py --config.data_dir=/data/tfds \
        --config.trial.runs=5 --workdir=runs/airbench_cascade

Arms, each adding one part to the one before (configs/cifar10_airbench.py says what each is and what the
published ablation credits it with): the net (`models.airbench`) -> + the whitening stem -> + dirac
initialisation -> + BatchNorm biases at 64x the lr and the whitening bias frozen after 3 epochs -> + Lookahead
-> + multi-crop TTA -> + the alternating flip. The last arm is configs/cifar10_airbench.py's recipe. Every arm
trains 18 epochs (where the ablation's third step reaches 94%) and evaluates after each: `comparison.md` has
each arm's final accuracy and epochs to 94% (its first evaluation at or above it), every trial its race
statistics. Measured here on the whole of CIFAR-10 (a JPEG copy) at a quarter of the width, float32, 5 epochs, 2
seeds an arm (results/cifar10.md, section 4): the whitening stem +3.1 points, dirac +0.45, the 64x BatchNorm-bias
rate -0.9, Lookahead +0.8, six-view TTA +0.36, the alternating flip +0.15 without TTA; the whole recipe 81.64%.
On a CPU, the hard quick-start set at a quarter of the width (the table in benchmarks/README.md):

    python train.py --mode=trial --config=configs/cifar10_airbench_cascade.py --config.dataset=quickstart_hard \
        --config.width=0.25 --config.batch_size=256 --config.epochs=6 --config.precision=float32 \
        --config.log_every_steps=39 --config.steps_per_loop=39 --workdir=runs/airbench_cascade_quickstart
"""

import dataclasses

from configs import cifar10_airbench
from configs.base import Augmentation, Trial

PARTS = (  # (what the arm adds, its overrides), in the published order
    ("net", "model=airbench"),
    ("whitening", "model=airbench94_without_dirac"),
    ("dirac", "model=airbench94"),
    ("bias lr", "lr_multipliers=norm_bias=64 whiten_bias_epochs=3"),
    ("lookahead", "lookahead_every_steps=5"),
    ("tta", "eval_translate=True"),
    ("alternating flip", "augmentation.alternate_flip=True"),
)


def cumulative_arms(parts=PARTS):
    """Each arm's overrides: its own part's and every earlier part's (a later model= replaces an earlier one)."""
    arms, overrides = [], []
    for _, part in parts:
        overrides = [o for o in overrides if o.partition("=")[0] not in {p.partition("=")[0] for p in part.split()}]
        overrides += part.split()
        arms.append(" ".join(overrides))
    return tuple(arms)


def get_config():
    recipe = cifar10_airbench.get_config()
    return dataclasses.replace(
        recipe,
        epochs=18,
        lr_multipliers=(),
        whiten_bias_epochs=0,
        lookahead_every_steps=0,
        eval_translate=False,
        augmentation=Augmentation(crop_padding=2, flip=True, alternate_flip=False, cutout=0),
        checkpoint_every_steps=10_000,  # a trial's runs are short: at the end (and on a signal) only
        trial=Trial(runs=3, arms=cumulative_arms(), threshold=0.94),
    )
