"""The exported model: what a user loads to predict, with everything the trainer did to an image inside it, and
the names of its classes beside it."""

import os
import zipfile

import keras
import numpy as np

from training.report import write_json
from training.workdir import read_json

CLASS_NAMES_FILE = "classes.json"  # beside model.keras: a JSON list, logit i is its item i


def serving_model(model, data):
    """`model` behind its input normalisation: raw uint8 images [N, H, W, 3] of the training size in, logits out.

    The per-channel mean and standard deviation are the dataset's (the ones the trainer normalised with), held
    in a Keras `Normalization` layer, so `model.keras` needs nothing else. Evaluation's test-time augmentation
    is not part of it: for `eval_flip`, average the logits of an image and its mirror; for `eval_translate` as
    well, `training.loops.predict_logits(model, images, flip=True, translate=True)` computes it.
    """
    images = keras.Input(shape=data.image_shape, dtype="uint8", name="images")
    normalised = keras.layers.Normalization(mean=data.mean, variance=np.square(data.std), name="normalise")(
        keras.ops.cast(images, "float32")
    )
    logits = keras.ops.cast(model(normalised), "float32")
    return keras.Model(images, logits, name=f"{model.name}_on_raw_images")


def export(model, data, path):
    """Saves the serving model of `model` as `path` (model.keras) and the dataset's class names as `classes.json`
    in the same folder (written whole, or not at all, like every JSON of a run)."""
    serving_model(model, data).save(path)
    write_json(os.path.join(os.path.dirname(path), CLASS_NAMES_FILE), list(data.class_names))


def damage(model_path):
    """What is wrong with the exported model at `model_path` ("missing", or damaged and how), or None. A
    `.keras` file is a zip archive: a truncated or overwritten one fails its checksums."""
    if not os.path.exists(model_path):
        return "missing"
    try:
        with zipfile.ZipFile(model_path) as archive:
            bad = archive.testzip()
    except (zipfile.BadZipFile, OSError) as error:
        return f"damaged ({error})"
    return f"damaged (its {bad} fails its checksum)" if bad else None


def class_names(model_path):
    """The class names saved beside an exported model: `class_names(path)[logits.argmax()]` names a prediction."""
    return read_json(os.path.join(os.path.dirname(model_path), CLASS_NAMES_FILE))
