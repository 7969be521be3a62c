"""Exit codes, operator errors and vault selection, shared by every certrenew command."""

from __future__ import annotations

import argparse
import sys

from shared.errors import CertRenewError, SettingsError
from shared.names import is_object_name
from shared.runtime import Runtime, get_runtime
from shared.settings import VaultConfig, parse_vault

# Exit codes, for scripts and monitoring. `certrenew --help` and docs/cli.md list them.
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_REJECTED = 3
EXIT_WARNING = 4
EXIT_CRITICAL = 5

EXIT_CODES_HELP = """\
exit codes:
  0  done; for status: nothing needs attention
  1  failed: Key Vault, the journal or a local check rejected the request (the message says why)
  2  usage: invalid arguments, an unknown vault or an unreadable file
  3  replay: some events were rejected
  4  status: a certificate is due, waits for a signed certificate, or its operation was cancelled;
     renew: nothing was started (the message says why)
  5  status: a certificate has expired or its last operation failed
"""


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Wraps one-paragraph descriptions to the terminal, and keeps epilogs with examples as written."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if "\n" in text:
            return super()._fill_text(text, width, indent)
        return argparse.HelpFormatter._fill_text(self, text, width, indent)


class CommandError(CertRenewError):
    """An error the operator can fix, with the exit code it ends the command with."""

    def __init__(self, message: str, exit_code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def load_runtime() -> Runtime:
    """Return the runtime built from the environment's settings (or the one a test or the demo set)."""
    return get_runtime()


def resolve_vaults(runtime: Runtime, selector: str | None) -> list[VaultConfig]:
    """Return the vault a --vault value names (a name or URL), or every configured vault without one."""
    if selector is None:
        return list(runtime.settings.vaults)
    return [resolve_vault(runtime, selector)]


def resolve_vault(runtime: Runtime, selector: str | None) -> VaultConfig:
    """Return the one vault a command acts on: the one named, or the only one configured.

    A URL that is not configured is accepted, because an operator may manage a vault the app does not. A bare
    name must be configured, because its URL depends on the cloud.
    """
    vaults = runtime.settings.vaults
    if selector is None:
        if len(vaults) == 1:
            return vaults[0]
        names = ", ".join(vault.name for vault in vaults)
        raise CommandError(f"Several vaults are configured ({names}). Name one with --vault NAME.", EXIT_USAGE)

    if "://" not in selector:
        vault = runtime.settings.vault_by_name(selector)
        if vault is None:
            names = ", ".join(vault.name for vault in vaults)
            raise CommandError(
                f"Vault {selector!r} is not configured (CERTRENEW_VAULTS lists {names}). Give its URL instead, "
                f"for example --vault https://{selector}.vault.azure.net",
                EXIT_USAGE,
            )
        return vault

    wanted = selector.rstrip("/").lower()
    for vault in vaults:
        if vault.url.lower() == wanted:
            return vault
    try:
        return parse_vault(selector)
    except SettingsError as exc:
        raise CommandError(f"--vault {selector}: {exc.problem}.", EXIT_USAGE) from exc


def check_certificate_name(name: str) -> str:
    """Return name if Key Vault accepts it as a certificate name; raise CommandError otherwise."""
    if not is_object_name(name):
        raise CommandError(
            f"{name!r} is not a certificate name: Key Vault names have 1 to 127 letters, digits and hyphens.",
            EXIT_USAGE,
        )
    return name


def confirm(question: str, assume_yes: bool) -> bool:
    """Ask a yes/no question on the terminal. Without a terminal, only --yes confirms."""
    if assume_yes:
        return True
    if not sys.stdin.isatty():
        raise CommandError(f"{question} There is no terminal to ask on: add --yes to confirm.", EXIT_USAGE)
    answer = input(f"{question} [y/N] ").strip().lower()
    return answer in ("y", "yes")


def vault_option(parser: argparse.ArgumentParser, all_by_default: bool) -> None:
    """Add --vault NAME|URL to a command."""
    default = "every configured vault" if all_by_default else "the only configured vault"
    parser.add_argument(
        "--vault", metavar="NAME|URL", help=f"Vault to act on, by name or URL (default: {default})."
    )
