"""ImageNet-style decoding of one encoded image to a fixed size, inside the graph.

Training: a random-resized crop (Inception's: 8-100% of the area, aspect ratio 3/4 to 4/3, up to 10 attempts, the
whole image if none fits) resized to the output size. Evaluation: the central square of 87.5% of the shorter side,
resized to the output size (the usual "resize to 256, centre-crop 224"). JPEGs are decoded only inside the crop
(`decode_and_crop_jpeg`); other formats (PNG, BMP, GIF) are decoded whole, then cropped.

JPEGs are decoded with the accurate integer DCT (libjpeg's default, PIL's and so torchvision's), not TensorFlow's
default fast one: on CIFAR-10's JPEGs the fast DCT is off by up to 5 levels a pixel and shifts the red and blue
channel means down by 1.1-1.3 levels (1,000 images against PIL; the accurate one equals PIL's pixels exactly).
"""

import tensorflow as tf

AREA_RANGE = (0.08, 1.0)
ASPECT_RATIO_RANGE = (3 / 4, 4 / 3)
CENTRE_FRACTION = 0.875
ACCURATE_DCT = "INTEGER_ACCURATE"


def random_resized_crop(encoded, size, seed):
    """uint8 [*size, 3]: a random-resized crop of the encoded image, drawn from `seed` (shape [2], stateless)."""
    shape = _shape(encoded)
    begin, crop_size, _ = tf.image.stateless_sample_distorted_bounding_box(
        shape,
        tf.constant([[[0.0, 0.0, 1.0, 1.0]]]),
        seed,
        min_object_covered=AREA_RANGE[0],
        aspect_ratio_range=ASPECT_RATIO_RANGE,
        area_range=AREA_RANGE,
        max_attempts=10,
        use_image_if_no_bounding_boxes=True,
    )
    return resized(_decode_window(encoded, begin[:2], crop_size[:2]), size)


def centre_crop(encoded, size):
    """uint8 [*size, 3]: the central square of CENTRE_FRACTION of the shorter side, resized to `size`."""
    shape = _shape(encoded)
    side = tf.cast(tf.round(tf.cast(tf.reduce_min(shape[:2]), tf.float32) * CENTRE_FRACTION), tf.int32)
    side = tf.maximum(side, 1)
    begin = (shape[:2] - side) // 2
    return resized(_decode_window(encoded, begin, tf.stack([side, side])), size)


def _shape(encoded):
    """[height, width, 3] of an encoded image, read from the JPEG header without decoding when it is a JPEG."""
    return tf.cond(
        tf.io.is_jpeg(encoded),
        lambda: tf.concat([tf.image.extract_jpeg_shape(encoded)[:2], [3]], 0),
        lambda: tf.shape(decode(encoded)),
    )


def _decode_window(encoded, begin, window):
    """The uint8 [h, w, 3] window of the image at `begin` ([top, left]) of size `window` ([height, width])."""
    return tf.cond(
        tf.io.is_jpeg(encoded),
        lambda: tf.image.decode_and_crop_jpeg(
            encoded, tf.concat([begin, window], 0), channels=3, dct_method=ACCURATE_DCT
        ),
        lambda: tf.slice(decode(encoded), tf.concat([begin, [0]], 0), tf.concat([window, [3]], 0)),
    )


def decode(encoded):
    """The whole image, uint8 [height, width, 3], of any format decode_image reads (a JPEG with the accurate DCT)."""
    image = tf.cond(
        tf.io.is_jpeg(encoded),
        lambda: tf.io.decode_jpeg(encoded, channels=3, dct_method=ACCURATE_DCT),
        lambda: tf.io.decode_image(encoded, channels=3, expand_animations=False),
    )
    image.set_shape([None, None, 3])
    return image


def resized(image, size):
    """uint8 `image` resized to `size` (height, width): bilinear with antialiasing, rounded back to uint8."""
    scaled = tf.image.resize(image, size, method="bilinear", antialias=True)
    return tf.cast(tf.clip_by_value(tf.round(scaled), 0, 255), tf.uint8)
