"""Every `python train.py ...` command the documentation shows parses with train.py's own flags into a config
that passes the trainer's checks (the commands that need a GPU, a dataset or a cluster are not run)."""

import ast
import json
import pathlib
import re
import shlex

import pytest

import train

REPO = pathlib.Path(__file__).resolve().parent.parent
DOCUMENTS = [
    "README.md",
    "BUILD.md",
    "benchmarks/README.md",
    "results/cifar10.md",
    "train.py",
    *sorted(str(p.relative_to(REPO)) for p in (REPO / "configs").glob("*.py") if p.name != "fields.py"),
]


def documented_commands():
    """(document, argv) for every `python train.py` command in the documents, continuation lines joined."""
    found = []
    for name in DOCUMENTS:
        text = (REPO / name).read_text()
        if name.endswith(".py"):  # a module's docstring
            text = ast.get_docstring(ast.parse(text)) or ""
        text = text.replace("\\\n", " ")
        for line in text.splitlines():
            for match in re.finditer(r"python train\.py[^`\n]*", line):  # to a closing backtick or the line's end
                command = re.split(r"\s+#", match.group(0))[0].strip().replace("<name>", "name")
                found.append((name, shlex.split(command)[1:]))
    return found


COMMANDS = documented_commands()


def test_the_documents_show_commands():
    assert len(COMMANDS) >= 25 and {name for name, _ in COMMANDS} >= {"README.md", "BUILD.md", "train.py"}


@pytest.mark.parametrize("document, argv", COMMANDS, ids=[f"{d}:{' '.join(a)[:70]}" for d, a in COMMANDS])
def test_a_documented_command_parses_into_a_valid_config(document, argv):
    values, _, _ = train.parse(argv)  # a misspelt field or a bad value ends the program here
    config = values.config
    cluster = {"cluster": {"worker": ["host1:12345", "host2:12345"]}, "task": {"type": "worker", "index": 0}}
    environ = {"TF_CONFIG": json.dumps(cluster)} if config.strategy == "multi_worker" else {}  # run on a cluster
    train.check(config, values.mode, environ)


def test_the_exit_code_table_is_the_codes_the_program_uses():
    from training.faults import EXIT_CODES, INTERRUPTED

    text = (REPO / "BUILD.md").read_text()
    table = text[text.index("### Exit codes") :].split("\n\n")[1]
    codes = {int(row.split("|")[1]): row.split("|")[2] for row in table.splitlines() if re.match(r"\| \d+ \|", row)}
    assert set(codes) == {0, 1, 2, 3, 28, 129, 130, 143}
    assert train.USER_ERROR == 2 and "user error" in codes[2]
    assert EXIT_CODES == {"preempted": 143, "peer_lost": 129, "diverged": 3, "disk_full": 28}
    assert (
        "disk is full" in codes[28]
        and "pre-empted" in codes[143]
        and "diverged" in codes[3]
        and "peer worker was lost" in codes[129]
        and INTERRUPTED == 130
        and "Ctrl-C without saving" in codes[130]
    )
