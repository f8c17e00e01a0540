"""The README's main job: the offline quick-start set (10 classes of shapes and textures, generated in memory),
a quarter-width airbench-style net, 3 epochs of 1Cycle. Runs anywhere, no download.

    python train.py                                    # this config is train.py's default
    python train.py --config=configs/quickstart.py --workdir=runs/quickstart

What it reaches and how fast: README, "Measured results" (one command per row). XLA is off here by the
`jit_compile` auto rule (float32 on a CPU, where it is slower: the table has both).
"""

from configs.base import Config


def get_config():
    return Config(
        dataset="quickstart",
        model="airbench",
        width=0.25,
        batch_size=256,
        epochs=3,
        lr=0.4,
        lr_reference_batch=256,
        log_every_steps=39,
        checkpoint_every_steps=78,
    )
