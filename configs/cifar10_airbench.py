"""A fast CIFAR-10 variant with the airbench-style net: batch 1024, 10 epochs, bfloat16-friendly.

    python train.py --config=configs/cifar10_airbench.py --config.data_dir=/data/tfds --workdir=runs/airbench

Keller Jordan's airbench94 reaches 94% in about 3.5 s on one A100 with tricks this template does not reproduce
(whitened stem, Lookahead, test-time augmentation; see models/airbench.py). Expect fewer than 94% from this
architecture alone in 10 epochs; it has not been timed on a GPU here. `summary.json` has what your run reached.
On a GPU, add `--config.data_on_device=True` to keep the training set on the device and cut each batch inside
the step, as airbench does (the same batches as the tf.data path; tested on CPU, not yet timed on a GPU).
"""

from configs.base import Config


def get_config():
    return Config(
        dataset="cifar10",
        model="airbench",
        batch_size=1024,
        epochs=10,
        lr=0.8,
        lr_reference_batch=1024,
        pct_start=0.25,
        weight_decay=5e-3,
        label_smoothing=0.2,
        augment_on_device=True,
        log_every_steps=48,
        eval_every_epochs=5,
    )
