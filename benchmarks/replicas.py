"""What MirroredStrategy costs: 2 replicas against 1 at the same global batch, our loop and input pipeline.

    python -m benchmarks.replicas                   # both regimes, about 3 minutes on 2 CPU cores
    python -m benchmarks.replicas --windows=1 --steps=1 --regimes=overhead   # a smoke run (CI)

Here the two replicas are logical devices on the same 2 CPU cores, so the ratio prices the overhead of
splitting the batch and all-reducing the gradients, not a speed-up. On a GPU machine the same loop over real
devices is `python train.py --config.strategy=mirrored`.
"""

import tensorflow as tf

import input_pipeline
from benchmarks.harness import alternate, table
from benchmarks.step import REGIMES, parse_arguments, training_variant
from configs.base import Config


def main():
    args = parse_arguments(__doc__.splitlines()[0])
    cpu = tf.config.list_physical_devices("CPU")[0]  # before TensorFlow initialises its devices
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    tf.get_logger().setLevel("ERROR")

    data = input_pipeline.load(Config(dataset="quickstart"))
    mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    rows = []
    for regime in args.regimes:
        config, steps = REGIMES[regime]
        one = training_variant("ours, 1 replica", config, data)
        two = training_variant("ours, 2 replicas (MirroredStrategy)", config, data, strategy=mirrored)
        alternate([one, two], args.windows, args.steps or steps)
        rows += [(regime, one, one, None), (regime, two, one, None)]
    print(
        f"2 logical CPU devices on {len(tf.config.list_physical_devices('CPU'))} physical CPU; global batch as "
        "in benchmarks/step.py; median images/s over alternated windows"
    )
    print(table(rows))


if __name__ == "__main__":
    main()
