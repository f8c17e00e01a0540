"""Building blocks shared by the CIFAR models."""

import keras


def batch_norm(synchronized):
    """BatchNorm whose statistics are per replica (default) or all-reduced across replicas (`synchronized`)."""
    return keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5, synchronized=synchronized)


def conv_bn(x, filters, synchronized, activation="relu"):
    """3x3 convolution without bias (BatchNorm's offset replaces it), BatchNorm, activation."""
    x = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
    x = batch_norm(synchronized)(x)
    return keras.layers.Activation(activation)(x)


def scaled_logits(x, num_classes, scale, initializer="glorot_uniform"):
    """A bias-free linear head multiplied by `scale`, computed in float32 whatever the precision policy."""
    x = keras.layers.Dense(num_classes, use_bias=False, dtype="float32", kernel_initializer=initializer)(x)
    return keras.layers.Rescaling(scale, dtype="float32")(x)
