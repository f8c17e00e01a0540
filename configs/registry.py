"""The names a config may choose for each extension point, and the user's own code by `module:attribute`.

One table per point: `models.MODELS` (`ModelSpec`s), and here `DATASETS`, `OPTIMIZERS`, `SCHEDULES` and
`AUGMENTATIONS`, each mapping a name to where its builder lives. Validation, `--helpconfig` and the builders all
read these tables, so a name listed is a name that builds. A field may instead name a `module:attribute` the user
owns (`--config.model=my_nets:small_cnn`, or `my_nets.py:small_cnn` for a file): it is imported only once the
rest of the config is valid, when the run starts, never for `--help`. Nothing here imports TensorFlow.

Builders are called with the arguments they name (`call_with`): the run's own values (a model's `input_shape`, a
schedule's `max_lr` and `total_steps`, an optimizer's `learning_rate`...) and, by its name, any config field (a
parameter `weight_decay` gets `config.weight_decay`), so a user's plain function needs no import of ours.
"""

import dataclasses
import importlib
import importlib.util
import inspect
import os
import sys

import models
from configs.base import ConfigError

DATASETS = {  # name: a function returning arrays (input_pipeline/sources.py's forms), or a kind of its own
    "quickstart": "input_pipeline.sources:quickstart",
    "quickstart_hard": "input_pipeline.sources:quickstart_hard",
    "synthetic": "input_pipeline.sources:synthetic",
    "image_folder": "input_pipeline.folders:in_memory",  # read by the loader itself: it can be read from disk
}
# any other name without a ':' is a tfds dataset (tfds names its close matches when it has none of that name)

OPTIMIZERS = {
    "sgd": "training.optimization:sgd",
    "nesterov": "training.optimization:nesterov",
    "adam": "training.optimization:adam",
    "adamw": "training.optimization:adamw",
    "rmsprop": "training.optimization:rmsprop",
    "muon": "training.optimization:muon",
}
SCHEDULES = {
    "onecycle": "onecycle.schedule:OneCycle",
    "constant": "training.optimization:constant",
    "step": "training.optimization:step",
    "warmup_cosine": "onecycle.baselines:WarmupCosine",
    "linear_decay": "onecycle.baselines:LinearDecay",
}
AUGMENTATIONS = {  # batch-wise, after the built-in crop, flip and cutout: fn(images, seed) -> images
    "jitter": "input_pipeline.augmentations:jitter",
}
TABLES = {
    "model": models.MODELS,
    "dataset": DATASETS,
    "optimizer": OPTIMIZERS,
    "schedule": SCHEDULES,
    "augmentation.extra": AUGMENTATIONS,
}


def is_path(value):
    """Whether `value` names the user's code (`module:attribute` or `file.py:attribute`) rather than an entry."""
    return ":" in value


def check_name(field, value, tfds_fallback=False):
    """Raises `ConfigError` unless `value` is a name of `field`'s table or a well-formed `module:attribute`
    (imported later). `tfds_fallback`: any other plain name is left to tfds (datasets)."""
    if is_path(value):
        module, _, attribute = value.rpartition(":")
        if module and attribute.isidentifier():
            return
        raise ConfigError(
            f"--config.{field}={value!r} is not module:attribute (e.g. my_nets:small_cnn, or my_nets.py:small_cnn)"
        )
    if value not in TABLES[field] and not tfds_fallback:
        raise ConfigError(
            f"--config.{field}={value!r} is not one of {tuple(TABLES[field])}: name one, or your own code as "
            "module:attribute (README, 'Add your own')"
        )


def resolve(field, value):
    """The object `value` names for `field`: the table's entry (imported if it is a path), or the user's
    `module:attribute`. Raises `ConfigError` naming the value if it cannot be imported."""
    entry = TABLES[field].get(value, value) if not is_path(value) else value
    return imported(entry, field) if isinstance(entry, str) else entry


def imported(path, field):
    """The attribute `module:attribute` (or `path/to/file.py:attribute`) names; the working directory is searched
    first, as `python -m` does, so a user's module beside their command is found."""
    module_name, _, attribute = path.rpartition(":")
    try:
        if module_name.endswith(".py"):
            spec = importlib.util.spec_from_file_location(os.path.basename(module_name)[:-3], module_name)
            if spec is None or not os.path.isfile(module_name):
                raise FileNotFoundError(f"no such file {module_name}")
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
        else:
            if os.getcwd() not in sys.path:
                sys.path.insert(0, os.getcwd())
            module = importlib.import_module(module_name)
    except Exception as error:  # the user's module: any error in it is reported as its own, in one line
        raise ConfigError(
            f"--config.{field}={path}: cannot import {module_name} ({type(error).__name__}: {error})"
        ) from None
    if not hasattr(module, attribute):
        public = sorted(name for name in vars(module) if not name.startswith("_"))
        raise ConfigError(f"--config.{field}={path}: {module_name} has no {attribute!r} (it has {public})")
    return getattr(module, attribute)


def parameters(function):
    """The names `function` (or a class's constructor) takes explicitly, and whether it takes **kwargs."""
    signature = inspect.signature(function)
    kinds = {p.kind for p in signature.parameters.values()}
    named = [
        name
        for name, p in signature.parameters.items()
        if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    ]
    return named, inspect.Parameter.VAR_KEYWORD in kinds


def call_with(function, field, run_values, config=None):
    """`function(**arguments)` with the arguments it names: from `run_values`, else the config field of that name.

    A parameter without a default that neither provides is a `ConfigError` naming it: the function asks for
    something this run does not have.
    """
    named, _ = parameters(function)
    fields = {f.name for f in dataclasses.fields(config)} if config is not None else set()
    arguments = {}
    for name in named:
        if name in run_values:
            arguments[name] = run_values[name]
        elif name in fields:
            arguments[name] = getattr(config, name)
        elif inspect.signature(function).parameters[name].default is inspect.Parameter.empty:
            raise ConfigError(
                f"--config.{field}: {getattr(function, '__name__', function)} takes {name!r}, which is neither a "
                f"value of the run ({', '.join(run_values)}) nor a config field: give it a default"
            )
    return function(**arguments)


def listing():
    """Each extension point's names, for `--helpconfig`."""
    lines = ["Extension points: a registered name, or your own code as module:attribute (README, 'Add your own')"]
    for field, table in TABLES.items():
        extra = ", or a tfds dataset name" if field == "dataset" else ""
        lines.append(f"  --config.{field}: {', '.join(table)}{extra}")
    return "\n".join(lines)
