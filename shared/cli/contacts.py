"""certrenew contacts: the vault's certificate contacts, which Key Vault emails and ARM templates cannot set."""

from __future__ import annotations

import argparse
import re

from azure.keyvault.certificates import CertificateContact

from shared.cli.common import (
    EXIT_CODES_HELP,
    EXIT_OK,
    EXIT_USAGE,
    CommandError,
    HelpFormatter,
    load_runtime,
    resolve_vault,
    resolve_vaults,
)
from shared.keyvault import KeyVaultError, call_keyvault
from shared.runtime import Runtime
from shared.settings import VaultConfig

# Enough to catch a typo or a missing argument; the mail system has the last word.
EMAIL_PATTERN = re.compile(r"[^@\s,;]+@[^@\s,;]+\.[^@\s,;]+")


def register(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Add the contacts command and its list, set, add and remove subcommands."""
    contacts = commands.add_parser(
        "contacts",
        parents=[common],
        help="List or change the vault's certificate contacts.",
        description="List or change the certificate contacts of a vault: the addresses Key Vault emails about "
        "expiring certificates. They live in the vault's data plane, where ARM templates cannot set them.",
        epilog="examples:\n  certrenew contacts list\n  certrenew contacts set contoso-certs ops@contoso.com "
        f"pki@contoso.com\n  certrenew contacts remove contoso-certs old@contoso.com\n\n{EXIT_CODES_HELP}",
        formatter_class=HelpFormatter,
    )
    actions = contacts.add_subparsers(title="actions", required=True, metavar="ACTION")

    listing = actions.add_parser("list", parents=[common], help="Show the contacts of one vault or of every vault.",
                                 epilog="example: certrenew contacts list contoso-certs")
    listing.add_argument("vault", nargs="?", metavar="VAULT", help="Vault name or URL (default: every configured vault).")
    listing.set_defaults(run=run_list)

    for action, summary, run in (
        ("set", "Replace the contacts with these addresses.", run_set),
        ("add", "Add these addresses to the contacts.", run_add),
        ("remove", "Remove these addresses from the contacts.", run_remove),
    ):
        parser = actions.add_parser(action, parents=[common], help=summary, description=summary,
                                    epilog=f"example: certrenew contacts {action} contoso-certs ops@contoso.com")
        parser.add_argument("vault", metavar="VAULT", help="Vault name or URL.")
        parser.add_argument("emails", nargs="+", metavar="EMAIL", help="Email addresses.")
        parser.set_defaults(run=run)


def run_list(args: argparse.Namespace) -> int:
    runtime = load_runtime()
    for vault in resolve_vaults(runtime, args.vault):
        emails = _get(runtime, vault)
        print(f"{vault.name}: {', '.join(emails) if emails else 'no certificate contacts'}")
    return EXIT_OK


def run_set(args: argparse.Namespace) -> int:
    runtime = load_runtime()
    vault = resolve_vault(runtime, args.vault)
    emails = _unique(_checked(args.emails))
    _put(runtime, vault, emails)
    print(f"{vault.name}: {', '.join(emails)}")
    return EXIT_OK


def run_add(args: argparse.Namespace) -> int:
    runtime = load_runtime()
    vault = resolve_vault(runtime, args.vault)
    emails = _unique(_get(runtime, vault) + _checked(args.emails))
    _put(runtime, vault, emails)
    print(f"{vault.name}: {', '.join(emails)}")
    return EXIT_OK


def run_remove(args: argparse.Namespace) -> int:
    runtime = load_runtime()
    vault = resolve_vault(runtime, args.vault)
    current = _get(runtime, vault)
    removed = {email.lower() for email in _checked(args.emails)}
    absent = sorted(removed - {email.lower() for email in current})
    if absent:
        print(f"Not a contact of {vault.name}, so nothing to remove: {', '.join(absent)}")

    remaining = [email for email in current if email.lower() not in removed]
    if remaining == current:
        return EXIT_OK
    _put(runtime, vault, remaining)
    print(f"{vault.name}: {', '.join(remaining) if remaining else 'no certificate contacts'}")
    return EXIT_OK


def _get(runtime: Runtime, vault: VaultConfig) -> list[str]:
    client = runtime.vaults.client(vault)
    try:
        contacts = call_keyvault(client.get_contacts, f"certificate contacts of vault {vault.name}")
    except KeyVaultError as exc:
        # Key Vault returns 404 when no contact was ever set.
        if exc.status == 404:
            return []
        raise
    return [contact.email for contact in contacts if contact.email]


def _put(runtime: Runtime, vault: VaultConfig, emails: list[str]) -> None:
    client = runtime.vaults.client(vault)
    description = f"certificate contacts of vault {vault.name}"
    if emails:
        call_keyvault(lambda: client.set_contacts([CertificateContact(email=email) for email in emails]), description)
    else:
        # NOTE: Key Vault's reference does not say whether it takes an empty contact list, so no contacts is a
        # delete.
        call_keyvault(client.delete_contacts, description)


def _checked(emails: list[str]) -> list[str]:
    invalid = [email for email in emails if not EMAIL_PATTERN.fullmatch(email)]
    if invalid:
        raise CommandError(
            f"Not an email address: {', '.join(repr(email) for email in invalid)}. Give one address per argument, "
            "for example ops@contoso.com pki@contoso.com",
            EXIT_USAGE,
        )
    return emails


def _unique(emails: list[str]) -> list[str]:
    seen: set[str] = set()
    unique = []
    for email in emails:
        if email.lower() not in seen:
            seen.add(email.lower())
            unique.append(email)
    return unique
