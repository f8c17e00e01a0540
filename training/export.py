"""The exported model: what a user loads to predict, with everything the trainer did to an image inside it."""

import keras
import numpy as np


def serving_model(model, data):
    """`model` behind its input normalisation: raw uint8 images [N, H, W, 3] of the training size in, logits out.

    The per-channel mean and standard deviation are the dataset's (the ones the trainer normalised with), held
    in a Keras `Normalization` layer, so `model.keras` needs nothing else. Evaluation's flip test-time
    augmentation (`eval_flip`) is not part of it: average the logits of an image and its mirror to get it.
    """
    images = keras.Input(shape=data.image_shape, dtype="uint8", name="images")
    normalised = keras.layers.Normalization(mean=data.mean, variance=np.square(data.std), name="normalise")(
        keras.ops.cast(images, "float32")
    )
    logits = keras.ops.cast(model(normalised), "float32")
    return keras.Model(images, logits, name=f"{model.name}_on_raw_images")
