"""The disk path: a tfds dataset in ArrayRecord read by index, under 2 replicas and as two workers; its crops."""

import io
import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
from array_record.python import array_record_data_source
from launch import REPO, worker_environments
from PIL import Image
from test_pipeline import per_replica, take_steps
from tiny import pipeline_config

import input_pipeline
from benchmarks import jpegs
from configs.base import Config
from input_pipeline import Augmentation, convert, crops, sources

SIZE = (32, 32)
FLIP = Augmentation(crop_padding=0, flip=True, cutout=0)


def disk_data(data_dir):
    return input_pipeline.load(Config(dataset=jpegs.NAME, data_dir=str(data_dir), image_size=SIZE, input_path="disk"))


def labels_by_index(data_dir, split):
    """What tfds itself decodes at each record index of `split`: the example numbers, in the files' order."""
    source = tfds.builder(jpegs.NAME, data_dir=str(data_dir)).as_data_source(split)
    return np.array([source[i]["label"] for i in range(len(source))])


def encoded(array, format_name):
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format=format_name, quality=95)
    return tf.constant(buffer.getvalue())


def resized(array, size):
    return tf.cast(tf.clip_by_value(tf.round(tf.image.resize(array, size, antialias=True)), 0, 255), tf.uint8).numpy()


def assert_nearly_equal(window_decoded, whole_decoded):
    """Equal but for libjpeg's chroma upsampling at the window's edge (a wrong window differs by tens)."""
    difference = np.abs(window_decoded.astype(int) - whole_decoded)
    assert np.mean(difference <= 1) > 0.95 and difference.mean() < 0.5, difference.mean()


def test_reads_by_index_what_tfds_wrote(jpegs_data_dir):
    data = disk_data(jpegs_data_dir)
    assert (data.num_train, data.num_eval, data.image_shape) == (240, 60, (32, 32, 3))
    assert data.train.where.startswith("3 ArrayRecord shards")
    source = tfds.builder(jpegs.NAME, data_dir=str(jpegs_data_dir)).as_data_source("train")
    indices = tf.constant([7, 0, 239, 120, 7], tf.int64)
    images, labels = data.train.read(indices)
    for image, label, index in zip(images.numpy(), labels.numpy(), indices.numpy()):
        example = source[int(index)]
        assert label == example["label"]
        decoded = crops.decode(image).numpy()  # tfds decodes with PIL, as the accurate DCT does: bit for bit
        np.testing.assert_array_equal(decoded, example["image"])


def test_jpegs_decode_as_pil_decodes_them():
    # TensorFlow's default (fast) DCT is off by a few levels and biases the channel means; the accurate one is
    # libjpeg's default, what PIL, tfds and torchvision decode with
    array = jpegs.image(np.random.default_rng(2), 48, 40)
    jpeg = encoded(array, "JPEG")
    pil = np.asarray(Image.open(io.BytesIO(jpeg.numpy())).convert("RGB"))
    np.testing.assert_array_equal(crops.decode(jpeg).numpy(), pil)
    assert not np.array_equal(tf.io.decode_jpeg(jpeg).numpy(), pil)  # what the fast DCT would have given


def test_centre_crop_is_the_central_square_resized():
    rng = np.random.default_rng(0)
    array = jpegs.image(rng, 64, 96)
    side = round(64 * crops.CENTRE_FRACTION)  # 56 of the shorter side, centred
    top, left = (64 - side) // 2, (96 - side) // 2
    expected = resized(array[top : top + side, left : left + side], SIZE)
    np.testing.assert_array_equal(crops.centre_crop(encoded(array, "PNG"), SIZE).numpy(), expected)  # lossless
    jpeg = encoded(array, "JPEG")  # decoded only inside the window: the same as slicing the whole decoded image
    pixels = crops.decode(jpeg).numpy()[top : top + side, left : left + side]
    assert_nearly_equal(crops.centre_crop(jpeg, SIZE).numpy(), resized(pixels, SIZE))


def test_random_resized_crops_are_seeded_varied_and_the_same_window_for_any_format():
    jpeg = encoded(jpegs.image(np.random.default_rng(1), 80, 60), "JPEG")
    png = encoded(crops.decode(jpeg).numpy(), "PNG")  # the same pixels, decoded whole and sliced
    seeds = [tf.constant([3, k], tf.int64) for k in range(6)]
    crops_png = [crops.random_resized_crop(png, SIZE, seed).numpy() for seed in seeds]
    assert all(c.shape == (32, 32, 3) and c.dtype == np.uint8 for c in crops_png)
    np.testing.assert_array_equal(crops.random_resized_crop(png, SIZE, seeds[0]).numpy(), crops_png[0])
    assert len({c.tobytes() for c in crops_png}) == len(seeds)
    for seed, from_png in zip(seeds, crops_png):  # the JPEG path decodes only the window, the PNG path slices it
        assert_nearly_equal(crops.random_resized_crop(jpeg, SIZE, seed).numpy(), from_png)


def test_each_example_once_per_epoch_across_replicas_in_the_seeded_order(two_replicas, jpegs_data_dir):
    data, truth = disk_data(jpegs_data_dir), labels_by_index(jpegs_data_dir, "train")
    steps = take_steps(two_replicas, input_pipeline.train_dataset(two_replicas, data, pipeline_config(48, seed=4)), 10)
    epochs = []
    for epoch in range(2):  # 5 steps an epoch; a step is [replica 0's 24 examples, replica 1's 24]
        seen = np.concatenate([batch[1] for step in steps[5 * epoch : 5 * epoch + 5] for batch in step])
        np.testing.assert_array_equal(seen, truth[input_pipeline.epoch_order(240, 4, epoch).numpy()])
        assert sorted(seen) == list(range(240))
        epochs.append(seen)
    assert not np.array_equal(*epochs)
    images = steps[0][0][0]
    assert images.shape == (24, 32, 32, 3) and images.dtype == np.float32


def test_resume_at_any_step_gives_the_same_batches(two_replicas, jpegs_data_dir):
    data = disk_data(jpegs_data_dir)

    def steps(start_step, count):
        dataset = input_pipeline.train_dataset(
            two_replicas, data, pipeline_config(48, seed=9, augmentation=FLIP), start_step
        )
        return take_steps(two_replicas, dataset, count)

    uninterrupted = steps(0, 8)
    for k in (2, 5, 6):  # mid-epoch, at the epoch boundary, in the second epoch
        for resumed, original in zip(steps(k, 8 - k), uninterrupted[k:]):
            for a, b in zip(resumed, original):
                np.testing.assert_array_equal(a[0], b[0])  # same crops, same flips
                np.testing.assert_array_equal(a[1], b[1])


def test_the_alternating_flip_on_disk_mirrors_the_same_crops_by_example_and_epoch(two_replicas, jpegs_data_dir):
    """Read from disk, the alternating flip mirrors each random-resized crop (the same crop as without it):
    exactly half the examples in epoch 0, and in epoch 1 exactly the others (labels name the examples)."""
    data = disk_data(jpegs_data_dir)
    plain = take_steps(two_replicas, input_pipeline.train_dataset(two_replicas, data, pipeline_config(48, seed=4)), 10)
    flipped = take_steps(
        two_replicas,
        input_pipeline.train_dataset(two_replicas, data, pipeline_config(48, seed=4, alternate_flip=True)),
        10,
    )
    mirrored_in_epoch = [set(), set()]
    for step, (plain_step, flipped_step) in enumerate(zip(plain, flipped)):  # 5 steps an epoch
        for (plain_images, labels), (flipped_images, same_labels) in zip(plain_step, flipped_step):
            np.testing.assert_array_equal(labels, same_labels)
            for image, candidate, label in zip(plain_images, flipped_images, labels):
                if np.array_equal(candidate, image[:, ::-1]) and not np.array_equal(image, image[:, ::-1]):
                    mirrored_in_epoch[step // 5].add(int(label))
                else:
                    np.testing.assert_array_equal(candidate, image)
    assert len(mirrored_in_epoch[0]) == 120 and len(mirrored_in_epoch[1]) == 120
    assert not mirrored_in_epoch[0] & mirrored_in_epoch[1]


def test_evaluation_counts_every_example_once(two_replicas, jpegs_data_dir):
    data = disk_data(jpegs_data_dir)
    dataset, num_steps = input_pipeline.eval_dataset(two_replicas, data, pipeline_config(16))
    assert num_steps == 4  # 60 examples: the last step holds 12 and 4 padding examples of weight 0
    counted = []
    for _, labels, weights in dataset:
        for label, weight in zip(*(per_replica(two_replicas, t) for t in (labels, weights))):
            counted += list(label[weight == 1])
    assert sorted(counted) == list(range(60))


@pytest.mark.slow
def test_two_workers_read_each_example_once_per_epoch(tmp_path, jpegs_data_dir):
    """Two processes under MultiWorkerMirroredStrategy, one replica each: their batches of a step together are
    the step's global batch, in the order recomputed from the seed."""
    script = os.path.join(REPO, "tests", "read_as_worker.py")
    workers = [
        subprocess.Popen(
            [sys.executable, script, str(jpegs_data_dir), str(tmp_path / f"worker{i}.json")],
            cwd=REPO,
            env=os.environ | {"CUDA_VISIBLE_DEVICES": ""} | environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for i, environment in enumerate(worker_environments(2))
    ]
    outputs = [worker.communicate(timeout=300)[0].decode()[-3000:] for worker in workers]
    assert [worker.returncode for worker in workers] == [0, 0], outputs
    read = [json.loads((tmp_path / f"worker{i}.json").read_text()) for i in range(2)]
    truth = labels_by_index(jpegs_data_dir, "train")
    for epoch in range(2):
        steps = range(5 * epoch, 5 * epoch + 5)
        seen = np.concatenate([read[0]["train"][s] + read[1]["train"][s] for s in steps])
        np.testing.assert_array_equal(seen, truth[input_pipeline.epoch_order(240, 4, epoch).numpy()])
    counted = sorted(read[0]["eval"] + read[1]["eval"])
    assert counted == list(range(60))


def test_the_size_decides_the_path_and_the_log_says_which(jpegs_data_dir, caplog):
    caplog.set_level("INFO")
    in_memory = input_pipeline.load(Config(dataset=jpegs.NAME, data_dir=str(jpegs_data_dir), image_size=SIZE))
    assert isinstance(in_memory, input_pipeline.Data)
    assert "input: in memory, 300 generated_jpegs images take 0.9 MiB as uint8, within" in caplog.text
    caplog.clear()
    on_disk = input_pipeline.load(
        Config(dataset=jpegs.NAME, data_dir=str(jpegs_data_dir), image_size=SIZE, max_in_memory_gib=0.0001)
    )
    assert isinstance(on_disk, input_pipeline.DiskData)
    assert "input: read from disk by index, 300 generated_jpegs images take 0.9 MiB as uint8, over" in caplog.text
    np.testing.assert_array_equal(np.sort(in_memory.train_labels), np.arange(240))


def test_the_disk_path_refuses_what_it_cannot_read(tmp_path, jpegs_data_dir, cifar10_data_dir):
    with pytest.raises(
        input_pipeline.DatasetError,
        match="stored as tfrecord, which cannot be read by index: copy "
        r"it as ArrayRecord once, python -c .*convert.to_array_record\('cifar10', ",
    ):
        input_pipeline.check_source(
            Config(dataset="cifar10", data_dir=cifar10_data_dir[0], input_path="disk", image_size=(32, 32))
        )
    with pytest.raises(input_pipeline.DatasetError, match="varying size .*: set --config.image_size=height,width"):
        input_pipeline.check_source(Config(dataset=jpegs.NAME, data_dir=str(jpegs_data_dir), input_path="disk"))
    with pytest.raises(
        input_pipeline.DatasetError,
        match=r"eval_split='test' is not a split of generated_jpegs: it "
        r"has \['train', 'validation'\]",
    ):
        input_pipeline.check_source(
            Config(dataset=jpegs.NAME, data_dir=str(jpegs_data_dir), image_size=SIZE, eval_split="test")
        )
    with pytest.raises(
        input_pipeline.DatasetError,
        match=r"not prepared in .*tfds.builder\('cifar10', "
        r"data_dir='/data/tfds', file_format='array_record'\).download_and_prepare\(\)",
    ):
        input_pipeline.check_source(
            Config(dataset="cifar10", data_dir=str(tmp_path), input_path="disk", image_size=(32, 32))
        )
    with pytest.raises(input_pipeline.DatasetError, match="made in memory by a function: there is no file to read"):
        input_pipeline.check_source(Config(dataset="quickstart", input_path="disk"))
    with pytest.raises(input_pipeline.DatasetError, match="input_path='tape' is not one of"):
        input_pipeline.check_source(Config(dataset="quickstart", input_path="tape"))


def test_an_image_folder_on_disk(tmp_path):
    rng = np.random.default_rng(2)
    for split, count in (("train", 6), ("test", 2)):
        for name in ("cat", "dog"):
            (tmp_path / split / name).mkdir(parents=True)
            for i in range(count):
                Image.fromarray(jpegs.image(rng, 50, 70)).save(tmp_path / split / name / f"{i}.jpg")
    (tmp_path / "train" / "dog" / "empty.jpg").touch()
    with pytest.raises(input_pipeline.DatasetError, match=r"cannot decode .*empty.jpg \(empty file\)"):
        input_pipeline.load(Config(dataset="image_folder", data_dir=str(tmp_path), image_size=SIZE, input_path="disk"))
    data = input_pipeline.load(
        Config(dataset="image_folder", data_dir=str(tmp_path), image_size=SIZE, input_path="disk", skip_bad_images=True)
    )
    assert isinstance(data, input_pipeline.DiskData) and (data.num_train, data.num_eval) == (12, 4)
    strategy = tf.distribute.get_strategy()
    images, labels = next(iter(input_pipeline.train_dataset(strategy, data, pipeline_config(12, seed=0))))
    assert sorted(labels.numpy()) == [0] * 6 + [1] * 6 and images.shape == (12, 32, 32, 3)


def test_a_tfrecord_dataset_converted_to_array_record_reads_the_same(tmp_path, cifar10_data_dir):
    data_dir, _ = cifar10_data_dir
    target = convert.to_array_record("cifar10", data_dir, tmp_path)
    assert target == tmp_path / "cifar10" / "3.0.2"
    original = sorted((pathlib.Path(data_dir) / "cifar10" / "3.0.2").glob("*.tfrecord-*"))
    for tfrecord in original:  # record for record, in order
        records = list(tf.data.TFRecordDataset(str(tfrecord)).as_numpy_iterator())
        array_record = target / tfrecord.name.replace(".tfrecord-", ".array_record-")
        source = array_record_data_source.ArrayRecordDataSource([str(array_record)])
        assert [source[i] for i in range(len(source))] == records
    in_memory, converted = (
        input_pipeline.load(Config(dataset="cifar10", data_dir=data_dir)),
        input_pipeline.load(Config(dataset="cifar10", data_dir=str(tmp_path))),
    )
    np.testing.assert_array_equal(in_memory.train_images, converted.train_images)
    np.testing.assert_array_equal(in_memory.eval_labels, converted.eval_labels)
    on_disk = input_pipeline.load(
        Config(dataset="cifar10", data_dir=str(tmp_path), image_size=(32, 32), input_path="disk")
    )
    assert (on_disk.num_train, on_disk.num_eval) == (20, 7)
    with pytest.raises(input_pipeline.DatasetError, match="exists: remove it, or use the dataset there"):
        convert.to_array_record("cifar10", data_dir, tmp_path)


def test_a_placement_already_checked_is_not_checked_again(jpegs_data_dir, monkeypatch):
    """The trainer checks the source before claiming the workdir and hands the answer to `load`: an image folder's
    files are not listed once more, nor a tfds builder opened once more, to decide the same thing."""
    placement = input_pipeline.check_source(
        Config(dataset=jpegs.NAME, data_dir=str(jpegs_data_dir), image_size=SIZE, input_path="disk")
    )

    def checked_again(*args, **kwargs):
        raise AssertionError("check_source was called again")

    monkeypatch.setattr(sources, "check_source", checked_again)
    data = input_pipeline.load(
        Config(dataset=jpegs.NAME, data_dir=str(jpegs_data_dir), image_size=SIZE, input_path="disk"), placement
    )
    assert isinstance(data, input_pipeline.DiskData)
    with pytest.raises(AssertionError, match="check_source was called again"):
        input_pipeline.load(
            Config(dataset=jpegs.NAME, data_dir=str(jpegs_data_dir), image_size=SIZE, input_path="disk")
        )
