"""Config fields that train in seconds on the quick-start set, for the tests that run the trainer."""

RESNET9 = dict(model="resnet9", width=0.125, batch_size=64, lr_reference_batch=64, epochs=1, lr=0.4, jit_compile=False)
AIRBENCH = RESNET9 | dict(model="airbench", width=0.25, batch_size=256, lr_reference_batch=256)
