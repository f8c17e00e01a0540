"""Imagenette (10 easy ImageNet classes, 9,469 training and 3,925 validation images) with ResNet-50 at 128 px:
the ImageNet recipe of configs/imagenet_resnet50.py at a size one GPU trains in minutes, to try first.

The same disk path, crops and schedule shape as the ImageNet config: random-resized 128x128 crops and flips,
centre-crop evaluation, 1Cycle over 20 epochs at batch 256 (the ImageNet config's lr per image), label smoothing
0.1, bfloat16. Not measured here (no GPU). For a published yardstick, fastai's Imagenette leaderboard
(github.com/fastai/imagenette, README) lists 92.0% top-1 at 128 px in 20 epochs, from fastai's
examples/train_imagenette.py (an xresnet50 with fastai's training tricks); a plain ResNet-50 may get less.

Prepare it once as ArrayRecord (a 330 MB download; on a machine with internet, then copy /data/tfds):
    python -c "import tensorflow_datasets as tfds; tfds.builder('imagenette/320px-v2', data_dir='/data/tfds',
    file_format='array_record').download_and_prepare()"

Train:
    python train.py --config=configs/imagenette.py --config.data_dir=/data/tfds --workdir=runs/imagenette

It takes the disk path by choice, not by size (its 128-px images would take 0.6 GiB in memory): the ImageNet
recipe's random-resized crops need the full images. `--config.input_path=auto` holds it in memory instead, squeezed
to 128x128 and only flipped (add e.g. `--config.augmentation.crop_padding=16` for CIFAR-style crops).
"""

import dataclasses

from configs import imagenet_resnet50


def get_config():
    return dataclasses.replace(
        imagenet_resnet50.get_config(),
        dataset="imagenette/320px-v2",
        image_size=(128, 128),
        batch_size=256,
        epochs=20,
        pct_start=0.25,  # fastai's fit_one_cycle default
        eval_every_epochs=2,
        target_accuracy=None,
        steps_per_loop=100,
        log_every_steps=36,  # an epoch: 9,469 // 256
        checkpoint_every_steps=360,
    )
