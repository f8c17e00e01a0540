"""training.loops: test-time augmentation's views and weights (the compiled loops run in every trainer test)."""

import keras
import numpy as np
import tensorflow as tf

from training.loops import predict_logits


def test_flip_test_time_augmentation():

    images = tf.random.stateless_normal([4, 8, 8, 3], seed=[1, 2])
    symmetric = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(5)])
    np.testing.assert_allclose(predict_logits(symmetric, images, flip=True), symmetric(images), rtol=1e-5, atol=1e-6)
    asymmetric = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Flatten(), keras.layers.Dense(5)])
    plain, flipped = asymmetric(images).numpy(), asymmetric(images[:, :, ::-1]).numpy()
    tta = predict_logits(asymmetric, images, flip=True).numpy()
    assert np.abs(tta - plain).max() > 1e-3
    np.testing.assert_allclose(tta, (plain + flipped) / 2, rtol=1e-5, atol=1e-6)


def test_multi_crop_test_time_augmentation_weighs_airbenchs_six_views():

    images = tf.random.stateless_normal([4, 8, 8, 3], seed=[3, 4])
    model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Flatten(), keras.layers.Dense(5)])
    padded = np.pad(images.numpy(), [(0, 0), (1, 1), (1, 1), (0, 0)], mode="reflect")

    def mirror_pair(views):
        return (model(views).numpy() + model(views[:, :, ::-1]).numpy()) / 2

    expected = (
        0.5 * mirror_pair(images.numpy())
        + 0.25 * mirror_pair(padded[:, :8, :8])
        + 0.25 * mirror_pair(padded[:, 2:, 2:])
    )
    tta = predict_logits(model, images, flip=True, translate=True).numpy()
    np.testing.assert_allclose(tta, expected, rtol=1e-5, atol=1e-6)
    assert np.abs(tta - predict_logits(model, images, flip=True).numpy()).max() > 1e-3
