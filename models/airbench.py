"""airbench-style CIFAR nets (Keller Jordan's airbench94 layout): small, wide, GELU, max-pool early.

`airbench`: a 2x2 stem conv of 24 channels, then three blocks of widths 64/256/256, each conv -> max-pool ->
BN -> GELU -> conv -> BN -> GELU, a global max-pool and a linear head scaled by 1/9. The architecture only.

`airbench94`: the same layout with the record recipe's initialisation and normalisation:
- the stem is a frozen patch-whitening convolution, set from the training images by `whiten_from_data`
  (the eigenvectors of the 2x2-patch covariance, scaled by 1/sqrt(eigenvalue + 5e-4), and their negatives),
  followed by a trainable bias;
- every other 3x3 convolution starts as an identity on its first input channels (dirac initialisation);
- BatchNorm without scale (airbench freezes it at 1), momentum 0.6 and epsilon 1e-12.
The rest of airbench94's recipe is the trainer's, each a config switch (configs/cifar10_airbench.py uses them
all): `lr_multipliers`, `whiten_bias_epochs`, `lookahead_every_steps`, `eval_translate`, `alternate_flip`.

`airbench_speedrun`: airbench94 as the Muon records change it (hiverge/cifar10-speedrun, fulcrum's E1): SiLU in
the blocks, BatchNorm momentum 0.5566, a head of unit-variance weights with logits divided by 256
(configs/cifar10_speedrun.py). Each of these nets ends in a global max-pool, so one model takes images of any
size: what progressive resizing needs (`config.resize_schedule`).
"""

import keras
import numpy as np

from models.layers import batch_norm, conv_bn, scaled_logits

WHITENING_EPSILON = 5e-4


def airbench(input_shape, num_classes, sync_batch_norm=False, width=1.0):
    """`width` scales every block's channels (1.0: 64-256-256)."""
    inputs = keras.Input((None, None, input_shape[-1]))  # any size: a global pool before the head
    x = keras.layers.Conv2D(24, 2, padding="valid", use_bias=True)(inputs)
    x = keras.layers.Activation("gelu")(x)
    for channels in _widths(width):
        x = keras.layers.Conv2D(channels, 3, padding="same", use_bias=False)(x)
        x = keras.layers.MaxPooling2D()(x)
        x = keras.layers.Activation("gelu")(batch_norm(sync_batch_norm)(x))
        x = conv_bn(x, channels, sync_batch_norm, activation="gelu")
    x = keras.layers.GlobalMaxPooling2D()(x)
    return keras.Model(inputs, scaled_logits(x, num_classes, 1 / 9), name="airbench")


def airbench94(
    input_shape,
    num_classes,
    sync_batch_norm=False,
    width=1.0,
    dirac=True,
    activation="gelu",
    norm_momentum=0.6,
    logit_scale=1 / 9,
    head_initializer="glorot_uniform",
):
    """airbench with a whitening stem (call `whiten_from_data` before training), dirac-initialised convolutions
    (unless `dirac=False`: the ablation's step before them) and scale-free BatchNorm; `width` scales the blocks'
    channels (1.0: 64-256-256). The rest are the later records' changes (`airbench_speedrun`)."""

    def norm(x):
        return keras.layers.BatchNormalization(
            momentum=norm_momentum, epsilon=1e-12, scale=False, synchronized=sync_batch_norm
        )(x)

    def conv(x, channels):
        return keras.layers.Conv2D(channels, 3, padding="same", use_bias=False)(x)

    inputs = keras.Input((None, None, input_shape[-1]))  # any size: a global pool before the head
    stem_channels = 2 * input_shape[-1] * 2 * 2  # each whitening filter and its negative
    x = keras.layers.Conv2D(stem_channels, 2, padding="valid", use_bias=False, trainable=False, name="whiten")(inputs)
    x = keras.layers.Activation("gelu")(Bias(name="whiten_bias")(x))  # GELU here in every record
    for channels in _widths(width):
        x = keras.layers.MaxPooling2D()(conv(x, channels))
        x = keras.layers.Activation(activation)(norm(x))
        x = keras.layers.Activation(activation)(norm(conv(x, channels)))
    x = keras.layers.GlobalMaxPooling2D()(x)
    logits = scaled_logits(x, num_classes, logit_scale, head_initializer)
    model = keras.Model(inputs, logits, name="airbench94" if activation == "gelu" else "airbench_speedrun")
    for layer in model.layers:
        if dirac and isinstance(layer, keras.layers.Conv2D) and layer.kernel_size == (3, 3):
            _dirac(layer.kernel)
    return model


def airbench_speedrun(input_shape, num_classes, sync_batch_norm=False, width=1.0):
    """The net of the Muon records (hiverge/cifar10-speedrun, fulcrum's E1): airbench94's, with SiLU in the
    blocks, BatchNorm momentum 0.5566, and a head of unit-variance weights whose logits are divided by 256."""
    unit_uniform = keras.initializers.RandomUniform(-np.sqrt(3.0), np.sqrt(3.0))  # U(-a, a) has std a / sqrt(3)
    return airbench94(
        input_shape,
        num_classes,
        sync_batch_norm,
        width,
        activation="silu",
        norm_momentum=0.5566,
        logit_scale=1 / 256,
        head_initializer=unit_uniform,
    )


def airbench94_without_dirac(input_shape, num_classes, sync_batch_norm=False, width=1.0):
    """airbench94 with Keras's default initialisation of its 3x3 convolutions (the ablation cascade's step)."""
    return airbench94(input_shape, num_classes, sync_batch_norm, width, dirac=False)


def whiten_from_data(model, images, num_images=5000):
    """Sets the model's `whiten` layer (if it has one) from the 2x2 patches of the first `num_images` normalised
    training images: its outputs are then decorrelated, with unit variance, on that data. Returns whether it did."""
    try:
        layer = model.get_layer("whiten")
    except ValueError:
        return False
    height, width, channels, _ = layer.kernel.shape
    covariance, count = np.zeros((height * width * channels,) * 2), 0
    for start in range(0, min(num_images, len(images)), 500):  # 500 images' patches at a time: bounded memory
        chunk = np.asarray(images[start : min(start + 500, num_images)], np.float64)
        patches = np.lib.stride_tricks.sliding_window_view(chunk, (height, width), axis=(1, 2))  # N,H',W',C,h,w
        patches = patches.transpose(0, 1, 2, 4, 5, 3).reshape(-1, height * width * channels)  # the kernel's h,w,c
        covariance, count = covariance + patches.T @ patches, count + len(patches)
    eigenvalues, eigenvectors = np.linalg.eigh(covariance / count)
    filters = eigenvectors[:, ::-1] / np.sqrt(eigenvalues[::-1] + WHITENING_EPSILON)  # strongest first
    kernel = np.concatenate([filters, -filters], axis=1).reshape(height, width, channels, -1)
    layer.kernel.assign(kernel.astype(np.float32))
    return True


@keras.saving.register_keras_serializable(package="onecycle")
class Bias(keras.layers.Layer):
    """A trainable per-channel bias (the whitening stem's, which is trained while its kernel stays frozen).

    A saved model holding it loads once `models` is imported (which registers it with Keras)."""

    def build(self, input_shape):
        self.bias = self.add_weight(shape=(input_shape[-1],), initializer="zeros", name="bias")

    def call(self, x):
        return x + keras.ops.cast(self.bias, x.dtype)


def _dirac(kernel):
    """Makes the first min(in, out) filters of a 3x3 kernel identities (airbench's implicit residual: each starts
    by passing its own input channel through); the others keep their initial values."""
    values = keras.ops.convert_to_numpy(kernel)
    height, width, inputs, outputs = values.shape
    values[:, :, :, : min(inputs, outputs)] = 0.0
    for channel in range(min(inputs, outputs)):
        values[height // 2, width // 2, channel, channel] = 1.0
    kernel.assign(values)


def _widths(width):
    return round(64 * width), round(256 * width), round(256 * width)
