"""Every command's --help is plain text that explains every option."""

from __future__ import annotations

import argparse
import importlib
import re

import pytest

from edgeship.cli.main import COMMANDS, EXAMPLES, build_parser, plain_text

MARKUP = re.compile(r":(func|class|mod|meth|attr|data):|``")


def _commands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for module in sorted({m for m, _ in COMMANDS.values()}):
        importlib.import_module(f"edgeship.cli.{module}").register(sub)
    return dict(sub._name_parser_map)


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_option_is_explained_in_plain_text(name: str) -> None:
    command = _commands()[name]
    assert not MARKUP.search(command.description or ""), command.description
    unexplained = [
        "/".join(a.option_strings) or a.dest
        for a in command._actions
        if not isinstance(a, argparse._HelpAction) and not a.help
    ]
    assert not unexplained, f"edgeship {name}: {unexplained} have no help"
    assert not [a.help for a in command._actions if a.help and MARKUP.search(a.help)]


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_ends_its_help_with_an_example_that_parses(name: str) -> None:
    command = _commands()[name]
    example = EXAMPLES[name]
    assert command.format_help().rstrip().endswith(f"example: {example}".split()[-1])
    assert f"example: {example}" in " ".join(command.format_help().split())
    program, given, *args = example.split()
    assert (program, given) == ("edgeship", name)
    command.parse_args(args)  # a UsageError (not SystemExit) if the example went stale


def test_markup_reads_as_plain_text() -> None:
    doc = "Runs :func:`~edgeship.compress.compress` on ``--data``\nand :class:`Target`."
    assert plain_text(doc) == "Runs compress on --data\nand Target."
