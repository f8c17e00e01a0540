"""A model that records the side of the images each training step fed it (tests of progressive resizing)."""

import keras
import tensorflow as tf

import models


class SideRecorder(keras.layers.Layer):
    """Passes its input on; in training, writes the input's side into `sides` at the position `count`."""

    def build(self, input_shape):
        options = dict(dtype="int32", trainable=False, aggregation="only_first_replica", initializer="zeros")
        self.sides = self.add_weight(shape=(256,), name="sides", **options)
        self.count = self.add_weight(shape=(), name="count", **options)

    def call(self, x, training=False):
        if training:
            position = tf.reshape(self.count.value, [1, 1])
            self.sides.assign(tf.tensor_scatter_nd_update(self.sides.value, position, tf.shape(x)[1:2]))
            self.count.assign_add(1)
        return x


def side_recorder_net(input_shape, num_classes, width=1.0):
    inputs = keras.Input((None, None, input_shape[-1]))
    x = SideRecorder(name="recorder")(inputs)
    x = keras.layers.Conv2D(round(16 * width), 3, padding="same", activation="relu")(x)
    x = keras.layers.GlobalMaxPooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(num_classes, dtype="float32")(x))


side_recorder = models.ModelSpec(side_recorder_net, sync_batch_norm=False, any_input_size=True)  # any size
