"""Reading from disk: does the disk path deliver more images per second than a ResNet-50 step consumes?

    python -m benchmarks.records                   # 224 px, about 4 minutes on 2 CPU cores
    python -m benchmarks.records --windows=1 --steps=1 --examples=64   # a smoke run (CI)

The data: `benchmarks.jpegs`, generated JPEGs of 160-400 pixels a side (ImageNet's are about 400x350) in 4
ArrayRecord shards, prepared by tfds in a temporary data_dir. Rows, alternated window by window in one process:
- the disk path alone: read by index, JPEG decode inside the random-resized crop, flip, normalise (no training);
- the limit: our compiled ResNet-50 step (keras.applications, float32) fed one batch already in memory;
- ours reading from disk: the same step fed by the disk path, as train.py runs it;
- the design not taken, against the disk path: tfds's sequential stream of the same JPEGs stored as TFRecord
  (shuffled files, a shuffle buffer), decoded and cropped the same way.
On a CPU the pipeline and the step share the same cores, so the first ratio is what the pipeline can deliver
per core-second of the machine, and the last one what feeding the step from disk costs it here.

Host memory: the resident set of the process after one epoch of the disk path and after three more; the pipeline
holds a bounded number of batches (input_pipeline/pipeline.py), so it should not grow with the epochs.
"""

import argparse
import dataclasses
import os
import platform
import tempfile

import keras
import tensorflow as tf
import tensorflow_datasets as tfds

import input_pipeline
from benchmarks import jpegs
from benchmarks.harness import alternate, fetching, table
from benchmarks.step import pipeline_variant, training_variant
from configs.base import Config
from input_pipeline import crops

PIPELINE_BATCHES_PER_STEP = 20  # the pipelines alone are timed over windows of 20x the training windows' batches
CONFIG = Config(
    model="resnet50",
    batch_size=16,
    lr_reference_batch=16,
    jit_compile=False,
    augmentation=input_pipeline.Augmentation(crop_padding=0, flip=True, cutout=0),
)


def resident_mib():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS")) / 1024


def stream_variant(data_dir, data, config):
    """The other design, for comparison: tfds's sequential stream of the same JPEGs stored as TFRecord (shuffled
    files, interleaved, a shuffle buffer of up to 1,024 examples), decoded, cropped and flipped the same way."""
    builder = tfds.builder(jpegs.NAME, data_dir=data_dir)
    examples = builder.as_dataset(split="train", shuffle_files=True, decoders={"image": tfds.decode.SkipDecoding()})
    examples = examples.repeat().shuffle(min(1024, data.num_train)).enumerate()

    def crop(number, example):
        seed = tf.stack([tf.constant(0, tf.int64), number])
        return crops.random_resized_crop(example["image"], config.image_size, seed), example["label"]

    def finish(images, labels):
        batch_seed = tf.constant([0, 0], tf.int64)
        return input_pipeline.augment(input_pipeline.normalise(images, data), batch_seed, config.augmentation), labels

    batches = examples.map(crop, num_parallel_calls=tf.data.AUTOTUNE).batch(config.batch_size, drop_remainder=True)
    batches = batches.map(finish, num_parallel_calls=tf.data.AUTOTUNE).prefetch(2)
    return fetching("tfds stream of the same JPEGs as TFRecord", batches, config.batch_size)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=224, help="the crops' side in pixels")
    parser.add_argument("--examples", type=int, default=512, help="generated training images")
    parser.add_argument("--windows", type=int, default=5, help="alternated timing windows per variant")
    parser.add_argument("--steps", type=int, default=3, help="training steps per window")
    args = parser.parse_args()
    tf.get_logger().setLevel("ERROR")
    size = (args.size, args.size)
    config = dataclasses.replace(CONFIG, image_size=size)
    with tempfile.TemporaryDirectory() as data_dir, tempfile.TemporaryDirectory() as tfrecord_dir:
        for directory, file_format in ((data_dir, "array_record"), (tfrecord_dir, "tfrecord")):
            jpegs.prepare(
                directory, num_train=args.examples, num_eval=16, sides=(160, 400), num_shards=4, file_format=file_format
            )
        data = input_pipeline.load(Config(dataset=jpegs.NAME, data_dir=data_dir, image_size=size, input_path="disk"))
        in_memory = input_pipeline.load(Config(dataset="synthetic", image_size=size, batch_size=config.batch_size // 8))
        in_memory = dataclasses.replace(in_memory, num_classes=data.num_classes)  # the same model
        pipeline = pipeline_variant(config, data, "disk path alone: read, decode, crop, flip")
        limit = training_variant("limit: ResNet-50 step, batch in memory", config, in_memory, "memory")
        ours = training_variant("ours: ResNet-50 step reading from disk", config, data)
        stream = stream_variant(tfrecord_dir, data, config)
        alternate([limit, ours], args.windows, args.steps)
        alternate([pipeline, stream], args.windows, args.steps * PIPELINE_BATCHES_PER_STEP)
        steps_per_epoch = input_pipeline.steps_per_epoch(data.num_train, config.batch_size)
        pipeline.run(steps_per_epoch)  # the same pipeline, on from where its timing left it
        after_one = resident_mib()
        pipeline.run(3 * steps_per_epoch)
        after_four = resident_mib()
    print(
        f"TensorFlow {tf.__version__}, Keras {keras.__version__}, {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs, float32; {args.examples} JPEGs of 160-400 px -> {args.size} px crops; batch "
        f"{config.batch_size}; {args.windows} alternated windows of {args.steps} steps; median images/s"
    )
    print(
        table(
            [
                ("disk", limit, limit, None),
                ("disk", pipeline, limit, 1.0),
                ("disk", ours, limit, None),
                ("disk", stream, pipeline, None),
            ]
        )
    )
    print(
        f"resident host memory after 1 epoch of the disk path: {after_one:,.0f} MiB; after 3 more: "
        f"{after_four:,.0f} MiB"
    )


if __name__ == "__main__":
    main()
