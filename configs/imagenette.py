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
recipe's random-resized crops need the full images. `--config.input_path=auto` holds it in memory instead, resized
to 128x128 and augmented like CIFAR.
"""

from configs.base import Augmentation, Config


def get_config():
    return Config(
        dataset="imagenette/320px-v2",
        eval_split="validation",
        input_path="disk",
        image_size=(128, 128),
        augmentation=Augmentation(crop_padding=0, flip=True, cutout=0),
        model="resnet50",
        batch_size=256,
        epochs=20,
        optimizer="nesterov",
        lr=0.5,
        lr_reference_batch=1024,
        pct_start=0.25,
        weight_decay=5e-5,
        label_smoothing=0.1,
        precision="mixed_bfloat16",
        eval_every_epochs=2,
        log_every_steps=37,
        checkpoint_every_steps=370,
    )
