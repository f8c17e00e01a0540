"""A Dawnbench-style race you can run on a laptop: time to 94% on the hard quick-start set (more noise, less
contrast; the easy set reaches 100% under almost any schedule), 2 seeds, 1Cycle against conventional schedules.

    python train.py --mode=trial --config=configs/quickstart_race.py --workdir=runs/race        # the comparison
    python train.py --mode=trial --config=configs/quickstart_race.py --config.trial.arms="()" \\
        --config.trial.runs=5 --workdir=runs/race_onecycle                                    # 1Cycle alone, 5 seeds

Every arm trains the same net on the same data with the same seeds and the same 8-epoch budget, evaluating
twice an epoch; crossings are recorded and the runs go on (the schedule's length is part of the recipe). The
baselines hold momentum at 0.9. `comparison.md` in the workdir has the table; BUILD.md ("Trials") shows one.

XLA is left to `jit_compile`'s auto rule: off for float32 on a CPU, where it is slower (benchmarks/README.md),
on for a GPU.
"""

from configs.base import Config, Trial


def get_config():
    return Config(
        dataset="quickstart_hard",
        model="airbench",
        width=0.25,
        batch_size=256,
        epochs=8,
        lr=0.4,
        lr_reference_batch=256,
        eval_every_epochs=0.5,
        target_accuracy=0.94,
        log_every_steps=13,  # three points an epoch
        checkpoint_every_steps=78,
        trial=Trial(
            runs=2,
            arms=(
                "schedule=onecycle",
                "schedule=warmup_cosine max_momentum=0.9",
                "schedule=constant lr=0.1 max_momentum=0.9",
            ),
        ),
    )
