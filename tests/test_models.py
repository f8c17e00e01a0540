"""The models' own parts, against independent references: the whitening stem against NumPy's eigendecomposition
of the patch covariance, dirac initialisation against the identity, a whole airbench94 run."""

import dataclasses

import keras
import numpy as np
import pytest
import tensorflow as tf

import input_pipeline
import models
from configs.base import Config
from models.airbench import WHITENING_EPSILON, whiten_from_data
from training import trainer


@pytest.fixture(scope="module")
def images():
    data = input_pipeline.load(Config(dataset="quickstart"))
    return input_pipeline.normalise(data.train_images[:700], data).numpy()


def test_the_whitening_stem_decorrelates_its_training_patches(images):
    model = models.create_model("airbench94", (32, 32, 3), 10, width=0.25)
    assert whiten_from_data(model, images)
    stem = keras.Model(model.input, model.get_layer("whiten").output)
    outputs = stem.predict(images, verbose=0).astype(np.float64).reshape(-1, 24)
    # Reference: the 2x2x3 patches, flattened as a kernel is (row, column, channel), and their second moment.
    patches = np.stack([images[:, i : i + 31, j : j + 31, :] for i in (0, 1) for j in (0, 1)], axis=3)
    eigenvalues = np.linalg.eigvalsh(
        np.einsum("nhwpc,nhwqd->pcqd", patches, patches).reshape(12, 12) / (len(images) * 31 * 31)
    )[::-1]
    moment = outputs.T @ outputs / len(outputs)
    np.testing.assert_allclose(np.diag(moment)[:12], eigenvalues / (eigenvalues + WHITENING_EPSILON), rtol=2e-3)
    np.testing.assert_allclose(moment[:12, :12] - np.diag(np.diag(moment[:12, :12])), 0, atol=2e-3)
    np.testing.assert_allclose(outputs[:, 12:], -outputs[:, :12], atol=1e-5)  # each filter and its negative
    assert not model.get_layer("whiten").trainable and model.get_layer("whiten_bias").trainable


def test_a_model_without_a_stem_is_left_alone(images):
    assert not whiten_from_data(models.create_model("airbench", (32, 32, 3), 10, width=0.25), images)


def test_dirac_convolutions_start_as_identities_on_their_first_channels():
    model = models.create_model("airbench94", (32, 32, 3), 10, width=0.25)
    convolutions = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)][1:]
    assert len(convolutions) == 6
    for layer in convolutions:
        kernel = layer.kernel.numpy()
        inputs, outputs = kernel.shape[2:]
        identity = np.zeros((3, 3, inputs, min(inputs, outputs)), np.float32)
        identity[1, 1, range(min(inputs, outputs)), range(min(inputs, outputs))] = 1
        np.testing.assert_array_equal(kernel[..., : min(inputs, outputs)], identity)
        if outputs > inputs:
            assert np.abs(kernel[..., inputs:]).sum() > 0  # the other filters keep their random start
    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert norms and all(layer.gamma is None and layer.momentum == 0.6 for layer in norms)


@pytest.mark.slow
def test_airbench94_trains_exports_and_reloads(tmp_path):
    config = dataclasses.replace(
        Config(),
        model="airbench94",
        width=0.25,
        batch_size=256,
        lr_reference_batch=256,
        epochs=1,
        stop_at_step=None,
        log_every_steps=13,
        jit_compile=False,
    )
    summary = trainer.train_and_evaluate(config, str(tmp_path))
    assert summary["status"] == "completed" and summary["eval_accuracy"] > 0.3
    exported = keras.models.load_model(tmp_path / "model.keras")  # `models` is imported: Bias is registered
    data = input_pipeline.load(Config(dataset="quickstart"))
    logits = exported.predict(data.eval_images, batch_size=500, verbose=0)
    assert np.mean(np.argmax(logits, -1) == data.eval_labels) == pytest.approx(summary["eval_accuracy"], abs=1e-4)
    checkpointed = tf.train.load_checkpoint(str(tmp_path / "checkpoints"))
    kernels = [
        n
        for n in checkpointed.get_variable_to_shape_map()
        if checkpointed.get_variable_to_shape_map()[n] == [2, 2, 3, 24]
    ]
    assert kernels  # the whitening kernel is saved with the run, so a resume keeps it


def test_airbench94_without_dirac_is_the_same_net_with_random_convolutions():
    plain = models.create_model("airbench94_without_dirac", (32, 32, 3), 10, width=0.25)
    dirac = models.create_model("airbench94", (32, 32, 3), 10, width=0.25)
    assert [w.shape for w in plain.weights] == [w.shape for w in dirac.weights]
    first = [layer for layer in plain.layers if isinstance(layer, keras.layers.Conv2D)][1].kernel.numpy()
    assert np.abs(first[1, 1, 0, 0] - 1.0) > 1e-3 and np.abs(first[0, 0, 0, 0]) > 0  # not an identity
    assert models.MODELS["airbench94_without_dirac"].whitening_bias == "whiten_bias"
