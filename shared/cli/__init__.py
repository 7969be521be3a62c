"""certrenew: the operator's command line. It runs the same code as the functions, by hand.

It reads the same settings as the function app from the environment (CERTRENEW_VAULTS at least) and signs in
with DefaultAzureCredential, so `az login` is enough against real vaults. Vault URLs on a loopback address
(the local emulator) get a static token instead.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Sequence

from azure.core.exceptions import ClientAuthenticationError

from shared.cli import contacts, functions, pending, report
from shared.cli.common import (
    EXIT_CODES_HELP,
    EXIT_CRITICAL,
    EXIT_FAILED,
    EXIT_OK,
    EXIT_REJECTED,
    EXIT_USAGE,
    EXIT_WARNING,
    CommandError,
    HelpFormatter,
)
from shared.errors import CertRenewError, SettingsError
from shared.keyvault import KeyVaultError

__all__ = [
    "EXIT_CRITICAL", "EXIT_FAILED", "EXIT_OK", "EXIT_REJECTED", "EXIT_USAGE", "EXIT_WARNING", "build_parser", "main",
]

logger = logging.getLogger("certrenew")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return its exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING
    if args.debug:
        level = logging.DEBUG
    elif args.verbose:
        level = logging.INFO
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    if not args.debug:
        # The SDK logs every request at INFO; the operator wants the decisions.
        logging.getLogger("azure").setLevel(logging.WARNING)
    try:
        return args.run(args)
    except (CertRenewError, ClientAuthenticationError) as exc:
        if args.debug:
            raise
        print(f"certrenew: {describe_error(exc)}", file=sys.stderr)
        if isinstance(exc, CommandError):
            return exc.exit_code
        if isinstance(exc, SettingsError):
            return EXIT_USAGE
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("certrenew: interrupted.", file=sys.stderr)
        return 130


def build_parser() -> argparse.ArgumentParser:
    """Return the parser of every command."""
    parser = argparse.ArgumentParser(
        prog="certrenew",
        description="Renew Azure Key Vault certificates by hand, with the same code as the function app.",
        epilog="Settings come from the environment, as in the function app: CERTRENEW_VAULTS names the vaults, "
        "CERTRENEW_JOURNAL the journal.\n"
        "Run 'certrenew COMMAND --help' for a command's options and an example.\n\n" + EXIT_CODES_HELP,
        formatter_class=HelpFormatter,
    )
    _logging_options(parser, False)
    # The same options after the command name; SUPPRESS keeps a subcommand from resetting what came before it.
    common = argparse.ArgumentParser(add_help=False)
    _logging_options(common, argparse.SUPPRESS)

    commands = parser.add_subparsers(title="commands", required=True, metavar="COMMAND")
    report.register(commands, common)
    pending.register(commands, common)
    contacts.register(commands, common)
    functions.register(commands, common)
    return parser


def describe_error(exc: BaseException) -> str:
    """Return the one or two lines an operator reads for an error, with what to do."""
    if isinstance(exc, ClientAuthenticationError):
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return (f"Signing in to Azure failed: {first_line}\nRun 'az login' (or set the AZURE_CLIENT_ID, "
                "AZURE_TENANT_ID and AZURE_CLIENT_SECRET variables), then try again. --debug shows every credential tried.")
    if isinstance(exc, KeyVaultError) and exc.status in (401, 403):
        return (f"Key Vault denied the request ({exc.code or exc.status}). Your sign-in needs the Key Vault "
                "Certificates Officer role on the vault, or the certificate permissions of its access policy.")
    return str(exc)


def _logging_options(parser: argparse.ArgumentParser, default: object) -> None:
    parser.add_argument("--verbose", "-v", action="store_true", default=default, help="Log each decision and action.")
    parser.add_argument("--debug", action="store_true", default=default,
                        help="Log every request and show tracebacks.")


if __name__ == "__main__":
    sys.exit(main())
