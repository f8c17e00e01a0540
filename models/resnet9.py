"""ResNet-9, the "DAWNNet" of the Dawnbench CIFAR-10 records (David Page, cifar10-fast, 2018).

prep conv 64 -> [conv 128, max-pool, residual(2 x conv 128)] -> [conv 256, max-pool] ->
[conv 512, max-pool, residual(2 x conv 512)] -> global max-pool -> linear -> x0.125.
6.6M parameters; 94% CIFAR-10 test accuracy in 24 epochs in Page's PyTorch reference.
"""

import keras

from models.layers import conv_bn, scaled_logits


def resnet9(input_shape, num_classes, sync_batch_norm=False, width=1.0):
    """`width` scales every layer's channels (1.0: 64-128-256-512)."""

    def residual(x, filters):
        y = conv_bn(conv_bn(x, filters, sync_batch_norm), filters, sync_batch_norm)
        return keras.layers.Add()([x, y])

    width = round(64 * width)
    inputs = keras.Input((None, None, input_shape[-1]))  # any size: a global pool before the head
    x = conv_bn(inputs, width, sync_batch_norm)
    x = keras.layers.MaxPooling2D()(conv_bn(x, 2 * width, sync_batch_norm))
    x = residual(x, 2 * width)
    x = keras.layers.MaxPooling2D()(conv_bn(x, 4 * width, sync_batch_norm))
    x = keras.layers.MaxPooling2D()(conv_bn(x, 8 * width, sync_batch_norm))
    x = residual(x, 8 * width)
    x = keras.layers.GlobalMaxPooling2D()(x)
    return keras.Model(inputs, scaled_logits(x, num_classes, 0.125), name="resnet9")
