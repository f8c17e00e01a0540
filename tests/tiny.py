"""Config fields that train in seconds on the quick-start set, for the tests that run the trainer."""

RESNET9 = dict(model="resnet9", width=0.125, batch_size=64, lr_reference_batch=64, epochs=1, lr=0.4, jit_compile=False)
AIRBENCH = RESNET9 | dict(model="airbench", width=0.25, batch_size=256, lr_reference_batch=256)


def pipeline_config(batch_size, seed=0, augmentation=None, alternate_flip=False):
    """The config of an input pipeline's batches: `batch_size` global, shuffled and augmented from `seed`;
    `augmentation` (a `configs.base.Augmentation`) or none; the alternating flip, or none."""
    from configs.base import Augmentation, Config

    if augmentation is None:
        augmentation = Augmentation(crop_padding=0, flip=alternate_flip, cutout=0, alternate_flip=alternate_flip)
    return Config(batch_size=batch_size, seed=seed, augmentation=augmentation)
