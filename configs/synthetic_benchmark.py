"""Throughput trial on synthetic data: ResNet-9 on random 32x32 images, the training set made on the device.

    python train.py --config=configs/synthetic_benchmark.py --workdir=/tmp/synthetic
    python train.py --config=configs/synthetic_benchmark.py --config.precision=mixed_bfloat16 --workdir=/tmp/bf16

With `data_on_device` the random training set is generated on each accelerator from the seed (no host copy at
all) and every batch is cut and augmented inside the step: the step's own speed, with nothing else in the way.

Accuracy is meaningless here; every log line and summary.json say "synthetic". images_per_second in summary.json
excludes the first call into the compiled loop (tracing and XLA compilation), which compile_seconds reports.
"""

from configs.base import Config


def get_config():
    return Config(
        dataset="synthetic",
        image_size=(32, 32),
        model="resnet9",
        batch_size=512,
        epochs=2,
        steps_per_loop=8,
        log_every_steps=8,
        checkpoint_every_steps=10_000,
        data_on_device=True,
        augment_on_device=True,
    )
