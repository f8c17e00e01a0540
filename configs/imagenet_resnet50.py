"""ImageNet (ILSVRC-2012) with ResNet-50 and 1Cycle: 35 epochs at batch 1024 on 8 GPUs, read from disk.

The recipe (NOT measured here: this machine has no GPU and no ImageNet):
- ResNet-50 from keras.applications, from scratch; 224x224 random-resized crops and flips for training, centre
  crops (87.5%) for evaluation on the 50,000 validation images.
- 35 epochs: the 8-GPU schedule of fast.ai and DIU's "ImageNet in 18 minutes" (github.com/cybertronai/imagenet18,
  train.py: one p3.16xlarge, 8 V100, 35 epochs to 93% top-5 in 109 min, with progressive resizing
  128->224->288 px that this config does not do).
- Peak lr 0.5 per 1024 images (their single-machine peak, 2.0 at 4096 images), reached after 15% of the run (their
  5-epoch warm-up of 35) from 1/25 of it; Nesterov momentum cycling 0.95 -> 0.85 -> 0.95; weight decay 5e-5 (theirs,
  not on BatchNorm or biases); label smoothing 0.1; bfloat16 (use mixed_float16 on V100s, which lack bfloat16).
- Target: 75.9% top-1, MLPerf's ResNet-50 target (DAWNBench's 93% top-5 is about 76% top-1). Our evaluation
  reports top-1.

Prepare ImageNet for tfds once, offline, as ArrayRecord (the disk path reads examples by index):
    1. Download ILSVRC2012_img_train.tar and ILSVRC2012_img_val.tar (image-net.org, after registering) into
       /data/imagenet_tars.
    2. python -c "import tensorflow_datasets as tfds; tfds.builder('imagenet2012', data_dir='/data/tfds',
       file_format='array_record').download_and_prepare(download_config=tfds.download.DownloadConfig(
       manual_dir='/data/imagenet_tars'))"
       (hours on one machine, about 150 GB; the data_dir can then be copied to every training host).

Train on 8 GPUs of one machine (MirroredStrategy):
    python train.py --config=configs/imagenet_resnet50.py --config.data_dir=/data/tfds --workdir=runs/imagenet

On 2 hosts of 8 GPUs (MultiWorkerMirroredStrategy; the global batch stays 1024, 64 per GPU, unless you raise it,
which scales the lr with it): on host i of 2, with the same data_dir on both,
    TF_CONFIG='{"cluster": {"worker": ["host0:12345", "host1:12345"]}, "task": {"type": "worker", "index": i}}' \\
        python train.py --config=configs/imagenet_resnet50.py --config.data_dir=/data/tfds \\
        --config.strategy=multi_worker --workdir=/shared/runs/imagenet
(under SLURM: srun with one task per host and --config.strategy=auto; BUILD.md has the sbatch script).

What time to expect, from published figures, not measured here: the imagenet18 run above took 109 min on 8 V100
with smaller images for 14 of its 35 epochs; at 224 px throughout, 35 epochs are 44.8M images, so 8 GPUs
sustaining 8,000 images/s (V100s, mixed precision) would take about 93 min and 20,000 images/s (A100s) about 37
min (44.8M images / rate). The input side decodes every JPEG on the host's CPU cores: here the disk path made
about 320 224-px crops per second per core from generated JPEGs of 160-400 px, so 8,000 images/s would need about
25 such cores; measure yours with `python -m benchmarks.records` (benchmarks/README.md, "Reading from disk").
"""

from configs.base import Augmentation, Config


def get_config():
    return Config(
        dataset="imagenet2012",
        eval_split="validation",  # imagenet2012's "test" split has no labels
        input_path="disk",
        image_size=(224, 224),
        augmentation=Augmentation(crop_padding=0, flip=True, cutout=0),  # the crop is the random-resized one
        model="resnet50",
        batch_size=1024,
        epochs=35,
        optimizer="nesterov",
        lr=0.5,
        lr_reference_batch=1024,
        pct_start=0.15,
        weight_decay=5e-5,
        label_smoothing=0.1,
        precision="mixed_bfloat16",
        eval_every_epochs=5,
        target_accuracy=0.759,
        steps_per_loop=200,
        log_every_steps=200,
        checkpoint_every_steps=2500,
    )
