"""A tfds dataset of generated JPEGs, prepared as ArrayRecord by tfds's own builder machinery: the disk path's
test and benchmark data (no download).

Each example's label is its example number, so a batch says which examples it holds. Images have random sizes
(like ImageNet's) and smooth content with some noise, so that JPEG decoding costs about what photographs cost.
"""

import numpy as np
import tensorflow_datasets as tfds

NAME = "generated_jpegs"  # tfds's name for the builder below


def prepare(data_dir, num_train=240, num_eval=60, sides=(40, 90), num_shards=3, seed=0, file_format="array_record"):
    """Writes the dataset under `data_dir` (once: a prepared one is reused) and returns its builder."""

    with tfds.core.registered.skip_registration():  # readers find it from its files, like any prepared dataset

        class GeneratedJpegs(tfds.core.GeneratorBasedBuilder):
            VERSION = tfds.core.Version("1.0.0")

            def _info(self):
                features = tfds.features.FeaturesDict(
                    {
                        "image": tfds.features.Image(shape=(None, None, 3), encoding_format="jpeg"),
                        "label": tfds.features.ClassLabel(num_classes=max(num_train, num_eval)),
                    }
                )
                return tfds.core.DatasetInfo(builder=self, features=features, supervised_keys=("image", "label"))

            def _split_generators(self, dl_manager):
                return {
                    "train": self._generate_examples(num_train, seed),
                    "validation": self._generate_examples(num_eval, seed + 1),
                }

            def _generate_examples(self, count, split_seed):
                rng = np.random.default_rng(split_seed)
                for number in range(count):
                    yield number, {"image": image(rng, *rng.integers(sides[0], sides[1] + 1, size=2)), "label": number}

    builder = GeneratedJpegs(data_dir=str(data_dir), file_format=file_format)
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(num_shards=num_shards))
    return builder


def image(rng, height, width):
    """A uint8 [height, width, 3] image: a smooth random field (8x8-pixel cells, bilinear) plus pixel noise."""
    cells = rng.uniform(0, 255, size=(height // 8 + 2, width // 8 + 2, 3))
    rows, columns = np.arange(height) / 8, np.arange(width) / 8
    r0, c0 = rows.astype(int), columns.astype(int)
    fr, fc = (rows - r0)[:, None, None], (columns - c0)[None, :, None]
    top = cells[r0][:, c0] * (1 - fc) + cells[r0][:, c0 + 1] * fc
    bottom = cells[r0 + 1][:, c0] * (1 - fc) + cells[r0 + 1][:, c0 + 1] * fc
    smooth = top * (1 - fr) + bottom * fr
    return np.clip(smooth + rng.normal(0, 8, size=smooth.shape), 0, 255).astype(np.uint8)
