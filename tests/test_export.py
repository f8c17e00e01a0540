"""training.export: the exported model takes raw uint8 images and gives the trained model's logits."""

import numpy as np
import pytest

import input_pipeline
import models
from configs.base import Config
from training import export, trainer


def test_the_serving_model_normalises_raw_images_as_training_did(tmp_path):
    import keras

    data = input_pipeline.load(Config(dataset="quickstart"))
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


@pytest.mark.slow
def test_an_image_folder_runs_class_names_come_back_with_its_model(tmp_path):
    """Folders named out of order: classes.json and summary.json list them sorted (logit i is class i), and the
    exported model's predictions, read through classes.json, name each test image's own folder."""
    import keras
    from test_sources import write_image_folder

    colours = {"zebra": (200, 30, 30), "apple": (30, 200, 30), "mango": (30, 30, 200)}
    write_image_folder(tmp_path / "data", {"train": 20, "test": 2}, colours)
    config = Config(
        dataset="image_folder",
        data_dir=str(tmp_path / "data"),
        image_size=(16, 16),
        model="airbench",
        width=0.25,
        batch_size=12,
        lr_reference_batch=12,
        epochs=6,
        jit_compile=False,
    )
    summary = trainer.train_and_evaluate(config, str(tmp_path / "run"))
    names = export.class_names(str(tmp_path / "run" / "model.keras"))
    assert names == summary["class_names"] == ["apple", "mango", "zebra"]
    model = keras.models.load_model(tmp_path / "run" / "model.keras")
    for folder in colours:
        image = np.asarray(keras.utils.load_img(tmp_path / "data" / "test" / folder / "0.png", target_size=(16, 16)))
        assert names[int(model.predict(image[None], verbose=0).argmax())] == folder
