"""An image folder of CIFAR-10's layout against the same images in a tfds data_dir: each loaded into memory as a
run loads it (`input_pipeline.load`), alternated A B A B in one process, the times' medians and their ratio.

    python -m benchmarks.folder_load --folder=/tmp/cifar10 --windows=3      # CIFAR-10's 60,000 JPEGs

The tfds data_dir is made from the folder's own pixels (decoded by PIL, as tfds decodes) by tfds's real cifar10
builder, its download redirected to CIFAR-10 binary records written here: the two hold the same images, so the
ratio is the loaders' alone. The folder's class folders must be CIFAR-10's ten label names.
"""

import argparse
import pathlib
import statistics
import tempfile
import time
from unittest import mock

import numpy as np
import tensorflow_datasets as tfds
from PIL import Image

import input_pipeline
from configs.base import Config

CIFAR10_LABELS = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def write_cifar10_records(folder, destination):
    """CIFAR-10's binary records (1 label byte + 3072 channel-major pixel bytes) of the 32x32 images of `folder`
    (train/<label>/, test/<label>/) under destination/cifar-10-batches-bin/, the training set in 5 batches."""
    extracted = pathlib.Path(destination) / "cifar-10-batches-bin"
    extracted.mkdir(parents=True)

    def records(split):
        rows = []
        for label, name in enumerate(CIFAR10_LABELS):
            for path in sorted((pathlib.Path(folder) / split / name).iterdir()):
                pixels = np.asarray(Image.open(path).convert("RGB"), np.uint8)
                rows.append(np.concatenate([[label], pixels.transpose(2, 0, 1).reshape(-1)]).astype(np.uint8))
        return np.stack(rows)

    train = records("train")
    for index, part in enumerate(np.array_split(train, 5), start=1):
        (extracted / f"data_batch_{index}.bin").write_bytes(part.tobytes())
    (extracted / "test_batch.bin").write_bytes(records("test").tobytes())
    (extracted / "batches.meta.txt").write_text("\n".join(CIFAR10_LABELS) + "\n")


def prepare_tfds(folder, workspace):
    """A tfds data_dir holding `folder`'s images as tfds's cifar10, prepared by its own builder offline."""
    workspace = pathlib.Path(workspace)
    write_cifar10_records(folder, workspace / "extracted")
    data_dir = workspace / "tfds"
    redirect = mock.patch.object(
        tfds.download.DownloadManager, "download_and_extract", return_value=str(workspace / "extracted")
    )
    with redirect:
        tfds.builder("cifar10", data_dir=str(data_dir)).download_and_prepare(
            download_config=tfds.download.DownloadConfig(try_download_gcs=False)
        )
    return str(data_dir)


def timed_loads(folder, data_dir, windows):
    """{"image folder": [seconds], "tfds data_dir": [seconds]} of `windows` alternated loads of each."""
    configs = {
        "image folder": Config(dataset="image_folder", data_dir=str(folder), image_size=(32, 32)),
        "tfds data_dir": Config(dataset="cifar10", data_dir=data_dir),
    }
    seconds = {name: [] for name in configs}
    for _ in range(windows):
        for name, config in configs.items():
            start = time.perf_counter()
            data = input_pipeline.load(config)
            seconds[name].append(time.perf_counter() - start)
            assert data.num_train > 0
    return seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", required=True, help="an image folder of CIFAR-10's layout (train/, test/)")
    parser.add_argument("--windows", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workspace:
        start = time.perf_counter()
        data_dir = prepare_tfds(args.folder, workspace)
        print(f"tfds data_dir of the folder's images prepared in {time.perf_counter() - start:.0f} s")
        seconds = timed_loads(args.folder, data_dir, args.windows)
    for name, times in seconds.items():
        print(f"{name:14}  median {statistics.median(times):6.1f} s  ({', '.join(f'{t:.1f}' for t in times)})")
    ratio = statistics.median(seconds["image folder"]) / statistics.median(seconds["tfds data_dir"])
    print(f"image folder / tfds data_dir: {ratio:.2f}")


if __name__ == "__main__":
    main()
