"""An airbench-style CIFAR net (Keller Jordan's airbench94 layout): small, wide, GELU, max-pool early.

A 2x2 stem conv of 24 channels, then three blocks of widths 64/256/256, each conv -> max-pool -> BN -> GELU ->
conv -> BN -> GELU, a global max-pool and a linear head scaled by 1/9. What this keeps from airbench is the
architecture; its other tricks (whitening-initialised stem, Lookahead, test-time augmentation, label smoothing
values tuned for it) are not reproduced here.
"""

import keras

from models.layers import batch_norm, conv_bn, scaled_logits


def airbench(input_shape, num_classes, sync_batch_norm=False, width=1.0):
    """`width` scales every block's channels (1.0: 64-256-256)."""
    inputs = keras.Input(input_shape)
    x = keras.layers.Conv2D(24, 2, padding="valid", use_bias=True)(inputs)
    x = keras.layers.Activation("gelu")(x)
    for channels in (round(64 * width), round(256 * width), round(256 * width)):
        x = keras.layers.Conv2D(channels, 3, padding="same", use_bias=False)(x)
        x = keras.layers.MaxPooling2D()(x)
        x = keras.layers.Activation("gelu")(batch_norm(sync_batch_norm)(x))
        x = conv_bn(x, channels, sync_batch_norm, activation="gelu")
    x = keras.layers.GlobalMaxPooling2D()(x)
    return keras.Model(inputs, scaled_logits(x, num_classes, 1 / 9), name="airbench")
