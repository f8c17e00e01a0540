"""One worker of a two-worker MultiWorkerMirroredStrategy (TF_CONFIG) reading the generated JPEG dataset from disk:
writes the example numbers of its training batches (10 steps) and of its counted evaluation examples as JSON.

    python tests/read_as_worker.py <data_dir> <output.json>
"""

import json
import os
import sys

from tiny import pipeline_config

from configs.base import Config

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import tensorflow as tf  # noqa: E402

import input_pipeline  # noqa: E402
from benchmarks import jpegs  # noqa: E402


def main(data_dir, output):
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    data = input_pipeline.load(Config(dataset=jpegs.NAME, data_dir=data_dir, image_size=(32, 32), input_path="disk"))
    train = iter(input_pipeline.train_dataset(strategy, data, pipeline_config(48, seed=4)))
    read = {"train": [strategy.experimental_local_results(next(train)[1])[0].numpy().tolist() for _ in range(10)]}
    evaluation, _ = input_pipeline.eval_dataset(strategy, data, pipeline_config(16))
    read["eval"] = []
    for _, labels, weights in evaluation:
        labels, weights = (strategy.experimental_local_results(t)[0].numpy() for t in (labels, weights))
        read["eval"] += labels[weights == 1].tolist()
    with open(output, "w") as f:
        json.dump(read, f)


if __name__ == "__main__":
    main(*sys.argv[1:])
