"""Muon's training step against Nesterov SGD's: the speedrun net, the same loop and data, alternated in one process.

    python -m benchmarks.optimizers                       # airbench_speedrun x0.25, batch 512, float32, this CPU
    python -m benchmarks.optimizers --width=1 --batch=1536 --precision=mixed_bfloat16 --jit=True   # on a GPU

Muon adds, per step and per convolution filter, a Newton-Schulz orthogonalisation of its (D, K) update: 3
iterations of X X^T and B X (D^2 K multiply-adds each) and A^2 (D^3), whatever the batch: for the six filters of
the full-width net (64x216, 64x576, 256x576 and 3 x 256x2304) about 3.2 billion multiply-adds a step, a cost that a
larger batch spreads thinner. On a GPU the records batch the six filters into one stack; here each is its own.
"""

import argparse
import os
import platform

import keras
import tensorflow as tf

import input_pipeline
import onecycle
from benchmarks.harness import alternate, table
from benchmarks.step import training_variant
from configs.base import Config
from training.plan import peak_lr


def variants(config, data):
    """Nesterov SGD (PyTorch's form, airbench's) and Muon on the same net, schedule and data."""
    schedule = onecycle.LinearDecay(peak_lr(config), 10**6, final_lr_ratio=0.05)

    def sgd():
        return onecycle.SGD(schedule, 0.825, nesterov=True, momentum_form="pytorch", weight_decay=0.007)

    def muon():
        return onecycle.Muon(schedule, 0.825, muon_momentum=0.655, total_steps=10**6, weight_decay=0.007)

    return [training_variant(name, config, data, "device", make) for name, make in (("SGD", sgd), ("Muon", muon))]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=float, default=0.25)
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--precision", default="float32")
    parser.add_argument("--jit", type=lambda text: text == "True", default=False)
    parser.add_argument("--windows", type=int, default=5)
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args()
    tf.get_logger().setLevel("ERROR")
    keras.mixed_precision.set_global_policy(args.precision)
    config = Config(
        dataset="quickstart",
        model="airbench_speedrun",
        width=args.width,
        batch_size=args.batch,
        lr=0.2,
        lr_reference_batch=args.batch,
        precision=args.precision,
        jit_compile=args.jit,
    )
    data = input_pipeline.load(config)
    sgd, muon = alternate(variants(config, data), args.windows, args.steps)
    print(
        f"TensorFlow {tf.__version__}, {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"airbench_speedrun x{args.width:g}, batch {args.batch}, {args.precision}, XLA {args.jit}; "
        f"{args.windows} alternated windows of {args.steps} steps; ratio: Muon's images/s over SGD's, paired"
    )
    print(table([("step", muon, sgd, None)]))


if __name__ == "__main__":
    main()
