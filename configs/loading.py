"""A config file, loaded once: found from the working directory or the project, executed, checked to give a
config; and the command line's `--config.<field>` names checked against it. Nothing here imports TensorFlow."""

import dataclasses
import os
import traceback

from configs import fields
from configs.base import Config, ConfigError


def config_file_argument(argv, project, default):
    """(the config file `argv` names with `--config=<file>` or `--config <file>`, else `default`; `argv` without
    it). A file not found where the user is is looked for in the project, so `--config=configs/x.py` works from
    any directory (and from an installed wheel)."""
    path, rest, arguments = None, [], iter(argv)
    for argument in arguments:
        if argument == "--config":
            path = next(arguments, "")
        elif argument.startswith("--config="):
            path = argument.partition("=")[2]
        else:
            rest.append(argument)
    path = path if path is not None else os.path.join(project, default)
    if not os.path.exists(path) and os.path.exists(os.path.join(project, path)):
        path = os.path.join(project, path)
    return path, rest


def load(path):
    """The config of the file at `path` (its `get_config()`), executed once. Raises `ConfigError` naming the file,
    the line and the error if it does not exist, does not load or does not give a config."""
    if not os.path.isfile(path):
        project_configs = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs")
        raise ConfigError(f"--config={path}: no such config file (they are in {project_configs})")
    try:
        with open(path) as f:
            code = compile(f.read(), path, "exec")
        namespace = {"__name__": "config_file", "__file__": path}
        exec(code, namespace)  # noqa: S102 (a config file is Python by design, as ml_collections loads it)
        config = namespace["get_config"]()
    except Exception as error:  # the user's file: any error in it is reported as its own, in one line
        frames = [frame for frame in traceback.extract_tb(error.__traceback__) if frame.filename == path]
        line = getattr(error, "lineno", None) or (frames[-1].lineno if frames else "?")
        raise ConfigError(f"--config={path}, line {line}: {type(error).__name__}: {error}") from None
    if not dataclasses.is_dataclass(config) or _field_names(config) != _field_names(Config):  # base.py: its own class
        raise ConfigError(f"--config={path}: get_config() returned {type(config).__name__}, not a configs.base.Config")
    return config


def _field_names(config):
    return [field.name for field in dataclasses.fields(config)]


def check_field_names(argv, config):
    """Raises `ConfigError` with the closest names for a `--config.<field>` of `argv` that `config` lacks."""
    for argument in argv:
        name = argument.partition("=")[0]
        if name.startswith("--config."):
            message = fields.unknown_field_message(name.removeprefix("--config."), config)
            if message:
                raise ConfigError(message)
