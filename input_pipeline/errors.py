"""The input pipeline's one error type, in a module of its own so that every part of the pipeline can raise it."""


class DatasetError(ValueError):
    """A dataset that cannot be loaded as configured: the message names it and the flag that fixes it."""
