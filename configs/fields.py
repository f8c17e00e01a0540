"""Every config field as a user types it: `--config.<name>=<default>`, its type and its one-line meaning.

Read from the dataclasses' own source (each field's trailing comment, or the comment block just above it), so
the listing can never drift from `configs/base.py`. `train.py --helpconfig` prints it; a misspelt field is
answered with the closest valid names.
"""

import dataclasses
import difflib
import inspect
import io
import tokenize


def listing(config):
    """The fields of `config` (nested groups as `group.field`), grouped under the headings of their source."""
    lines = []
    for prefix, cls, value in _dataclasses(config):
        comments = _comments(cls)
        if prefix:
            lines.append(f"\n{prefix.rstrip('.')}: {inspect.getdoc(cls).splitlines()[0]}")
        for field in dataclasses.fields(cls):
            heading, meaning = comments.get(field.name, (None, ""))
            if heading:
                lines.append(f"\n{heading}")
            if dataclasses.is_dataclass(getattr(value, field.name)):
                continue  # listed as its own group
            default = getattr(value, field.name)
            lines.append(f"  --config.{prefix}{field.name}={default!r}  ({_type_name(field.type)})  {meaning}".rstrip())
    return "\n".join(lines).lstrip("\n") + "\n"


def names(config):
    """Every settable name (`batch_size`, `trial.runs`, ...)."""
    return [
        prefix + field.name
        for prefix, cls, value in _dataclasses(config)
        for field in dataclasses.fields(cls)
        if not dataclasses.is_dataclass(getattr(value, field.name))
    ]


def unknown_field_message(name, config):
    """None if `name` is a field of `config`; else a one-line error naming the closest valid fields."""
    valid = names(config)
    if name in valid:
        return None
    close = difflib.get_close_matches(name, valid, n=3, cutoff=0.6)
    hint = f"did you mean {' or '.join(f'--config.{c}' for c in close)}? " if close else ""
    return f"--config.{name} is not a config field: {hint}python train.py --helpconfig lists them all"


def _dataclasses(config, prefix=""):
    """(prefix, class, instance) for `config` and every dataclass nested in it, depth first."""
    found = [(prefix, type(config), config)]
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        if dataclasses.is_dataclass(value):
            found += _dataclasses(value, f"{prefix}{field.name}.")
    return found


def _comments(cls):
    """{field: (heading or None, meaning)} from the class body. A field's meaning is its trailing comment; the
    comment block above a field is a heading if a blank line precedes it or the field has a trailing comment
    (a heading after a blank line is the block's first line; its other lines are the field's meaning), else
    it is the field's meaning."""
    source = inspect.getsource(cls)
    found, block, after_blank, previous_row = {}, [], True, 0
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT and token.line.strip().startswith("#"):
            if token.start[0] > previous_row + 1:
                after_blank = True  # a blank line before this comment
            block.append(token.string.lstrip("# "))
            previous_row = token.start[0]
        elif token.type == tokenize.NAME and token.start[1] == 4 and token.line.strip().split(":")[0] == token.string:
            name, trailing = token.string, token.line.partition("  # ")[2].strip()
            if block and trailing and not after_blank:
                heading, description = " ".join(block), []
            elif block and after_blank:
                heading, description = block[0], block[1:]
            else:
                heading, description = None, block
            found[name] = (heading, trailing or " ".join(description))
            block, after_blank, previous_row = [], False, token.start[0]
        elif token.type == tokenize.NL and token.line.strip() == "":
            after_blank = True
    return found


def _type_name(annotation):
    if isinstance(annotation, str):
        return annotation
    return annotation.__name__ if isinstance(annotation, type) else str(annotation)
