"""training.export: the exported model takes raw uint8 images and gives the trained model's logits."""

import numpy as np

import input_pipeline
import models
from training import export


def test_the_serving_model_normalises_raw_images_as_training_did(tmp_path):
    import keras

    data = input_pipeline.load("quickstart")
    model = models.create_model("resnet9", data.image_shape, data.num_classes, width=0.125)
    served = export.serving_model(model, data)
    raw = data.eval_images[:8]
    expected = model(input_pipeline.normalise(raw, data), training=False).numpy()
    np.testing.assert_allclose(served(raw).numpy(), expected, rtol=1e-4, atol=1e-5)
    path = str(tmp_path / "model.keras")
    served.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_allclose(loaded.predict(raw, verbose=0), expected, rtol=1e-4, atol=1e-5)
    assert loaded.input.dtype == "uint8" and tuple(loaded.input.shape[1:]) == data.image_shape
