"""certrenew --help: every command shows an example, and the exit codes are documented."""

import argparse

import pytest

from shared.cli import build_parser


def commands(parser, prefix=()):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, subparser in action.choices.items():
                yield prefix + (name,), subparser
                yield from commands(subparser, prefix + (name,))


@pytest.mark.parametrize("path, parser", list(commands(build_parser())), ids=lambda value: " ".join(value) if isinstance(value, tuple) else "")
def test_help_shows_example(path, parser):
    epilog = parser.epilog or ""

    assert "example" in epilog
    assert f"certrenew {' '.join(path)}" in epilog


def test_help_lists_exit_codes():
    text = build_parser().format_help()

    assert "5  status: a certificate has expired or its last operation failed" in text
