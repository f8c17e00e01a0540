"""A tfds dataset prepared as TFRecord (tfds's default) copied as ArrayRecord, the format the disk path reads by
index, without preparing it again (ImageNet's preparation takes hours and its tar files):

    python -c "from input_pipeline import convert
    convert.to_array_record('imagenet2012', '/data/tfds', '/data/tfds_ar')"

then train with --config.data_dir=/data/tfds_ar. Each shard is copied record for record, in order, into an
ArrayRecord file of one record per chunk (`group_size:1`, what tfds writes and its reader checks); the metadata
files are copied, with the file format changed in dataset_info.json. The new dataset appears only when complete.
"""

import json
import pathlib
import shutil

import tensorflow as tf
import tensorflow_datasets as tfds
from absl import logging
from array_record.python import array_record_module

from input_pipeline.errors import DatasetError


def to_array_record(name, data_dir, out_data_dir):
    """Writes tfds dataset `name` of `data_dir` as ArrayRecord under `out_data_dir`; returns its folder."""
    builder = tfds.builder(name, data_dir=data_dir)
    if not builder.is_prepared():
        raise DatasetError(f"tfds dataset {name!r} is not prepared in {data_dir}: nothing to convert")
    source = pathlib.Path(builder.data_dir)
    target = pathlib.Path(out_data_dir) / source.relative_to(builder.data_dir_root)
    if target.exists():
        raise DatasetError(f"{target} exists: remove it, or use the dataset there")
    partial = target.with_name(target.name + ".incomplete")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    for path in sorted(source.iterdir()):
        if ".tfrecord-" in path.name:
            _copy_records(path, partial / path.name.replace(".tfrecord-", ".array_record-"))
        elif path.name == "dataset_info.json":
            info = json.loads(path.read_text())
            (partial / path.name).write_text(json.dumps(info | {"fileFormat": "array_record"}, indent=2))
        elif path.is_file():
            shutil.copy2(path, partial / path.name)
    partial.rename(target)
    return target


def _copy_records(tfrecord_path, array_record_path):
    writer = array_record_module.ArrayRecordWriter(str(array_record_path), "group_size:1")
    count = 0
    for record in tf.data.TFRecordDataset(str(tfrecord_path)).as_numpy_iterator():
        writer.write(record)
        count += 1
    writer.close()
    logging.info("%s: %d records -> %s", tfrecord_path.name, count, array_record_path.name)
