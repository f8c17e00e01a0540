"""The held-out split: carved from the training set, disjoint from what an epoch trains on, the same examples on
any replica count and after a resume, counted once in evaluation; the test split is not read."""

import numpy as np
import pytest
import tensorflow as tf
from test_pipeline import per_replica, take_steps
from test_records import labels_by_index
from tiny import pipeline_config

import input_pipeline
from benchmarks import jpegs
from configs.base import Config
from input_pipeline import holdout, records, sources

SIZE = (32, 32)


def load(data_dir, input_path, fraction=0.25):
    """benchmarks.jpegs (each label is its example's number) with a quarter of its 240 training images held out."""
    return input_pipeline.load(
        Config(dataset=jpegs.NAME, data_dir=str(data_dir), image_size=SIZE, input_path=input_path, holdout=fraction)
    )


def trained_labels(strategy, data, global_batch, seed, start_step, steps):
    dataset = input_pipeline.train_dataset(strategy, data, pipeline_config(global_batch, seed=seed), start_step)
    return [np.concatenate([batch[1] for batch in step]) for step in take_steps(strategy, dataset, steps)]


def evaluated_labels(strategy, data, global_batch):
    dataset, _ = input_pipeline.eval_dataset(strategy, data, pipeline_config(global_batch))
    counted = []
    for _, labels, weights in dataset:
        for label, weight in zip(*(per_replica(strategy, t) for t in (labels, weights))):
            counted += [int(x) for x in label[weight == 1]]
    return counted


def test_the_count_is_a_fraction_or_a_number_and_leaves_both_sides_some():
    assert holdout.holdout_count(1000, 0.1) == 100
    assert holdout.holdout_count(1000, 250) == 250
    for bad in (0.0001, 1000, 5000):
        with pytest.raises(sources.DatasetError, match="--config.holdout="):
            holdout.holdout_count(1000, bad)


def test_the_held_out_examples_depend_on_the_set_size_alone():
    held, kept = holdout.held_out_indices(10_000, 0.1)
    assert len(held) == 1000 and len(kept) == 9000
    assert sorted(np.concatenate([held, kept])) == list(range(10_000))
    np.testing.assert_array_equal(held, holdout.held_out_indices(10_000, 1000)[0])  # a count, or its fraction
    assert held.min() < 500 and held.max() > 9500  # spread over the set, not its head: tfds files are sorted


@pytest.mark.parametrize("input_path", ["memory", "disk"])
def test_an_epoch_trains_on_the_rest_and_evaluation_counts_the_held_out_once(two_replicas, jpegs_data_dir, input_path):
    data = load(jpegs_data_dir, input_path)
    assert (data.num_train, data.num_eval, data.eval_split) == (180, 60, "holdout")
    truth = labels_by_index(jpegs_data_dir, "train")  # what each record index holds
    held, kept = (sorted(truth[indices]) for indices in holdout.held_out_indices(240, 0.25))
    for strategy in (tf.distribute.get_strategy(), two_replicas):
        epoch = np.concatenate(trained_labels(strategy, data, 36, seed=3, start_step=0, steps=5))  # 5 steps of 36
        assert sorted(epoch) == kept
        assert sorted(evaluated_labels(strategy, data, 16)) == held  # 4 steps, the last one padded


def test_the_same_batches_after_a_resume(jpegs_data_dir):
    data = load(jpegs_data_dir, "disk")
    strategy = tf.distribute.get_strategy()
    uninterrupted = trained_labels(strategy, data, 36, seed=5, start_step=0, steps=8)
    for resumed, original in zip(trained_labels(strategy, data, 36, seed=5, start_step=3, steps=5), uninterrupted[3:]):
        np.testing.assert_array_equal(resumed, original)
    held = set(labels_by_index(jpegs_data_dir, "train")[holdout.held_out_indices(240, 0.25)[0]])
    assert not held & {int(label) for step in uninterrupted for label in step}


@pytest.mark.parametrize("input_path", ["memory", "disk"])
def test_the_evaluation_split_is_not_read(jpegs_data_dir, input_path, monkeypatch):
    opened = []
    read = records.tfds_split
    monkeypatch.setattr(records, "tfds_split", lambda builder, split: opened.append(split) or read(builder, split))
    load(jpegs_data_dir, input_path)
    assert opened == ["train"]


def test_an_image_folder_needs_no_test_folder_with_a_holdout(tmp_path):
    for name in ("cats", "dogs"):
        (tmp_path / "train" / name).mkdir(parents=True)
        for i in range(5):
            pixels = np.full((8, 8, 3), 40 * i, np.uint8)
            tf.io.write_file(str(tmp_path / "train" / name / f"{i}.png"), tf.io.encode_png(pixels))
    data = input_pipeline.load(Config(dataset="image_folder", data_dir=str(tmp_path), image_size=(8, 8), holdout=4))
    assert (data.num_train, data.num_eval, data.eval_split) == (6, 4, "holdout")


def test_the_quickstart_test_set_is_not_generated(monkeypatch):
    seeds = []
    generate = sources.generated.generate
    monkeypatch.setattr(
        sources.generated, "generate", lambda n, seed, **kw: seeds.append(seed) or generate(n, seed, **kw)
    )
    data = input_pipeline.load(Config(dataset="quickstart", holdout=0.1))
    assert seeds == [0] and (data.num_train, data.num_eval) == (9000, 1000)
