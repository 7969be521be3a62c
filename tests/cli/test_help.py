"""certrenew help, progress line and sign-in errors."""

import argparse
import io

import pytest
from azure.core.exceptions import ClientAuthenticationError

from shared.cli import build_parser, describe_error
from shared.cli.output import Progress


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


class FakeTerminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_only_on_terminal():
    terminal, pipe = FakeTerminal(), io.StringIO()

    Progress(terminal).update("Reading vault contoso-certs", 25, 0)
    Progress(pipe).update("Reading vault contoso-certs", 25, 0)

    assert "Reading vault contoso-certs: 25 certificates" in terminal.getvalue()
    assert pipe.getvalue() == ""


def test_sign_in_failure_names_az_login():
    message = describe_error(ClientAuthenticationError("DefaultAzureCredential failed to retrieve a token."))

    assert message.startswith("Signing in to Azure failed: DefaultAzureCredential failed")
    assert "Run 'az login'" in message
