"""certrenew renew, csr, merge and cancel: a certificate's pending operation, by hand."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from shared import decision as decisions
from shared.cli.common import (
    EXIT_CODES_HELP,
    EXIT_OK,
    EXIT_USAGE,
    EXIT_WARNING,
    CommandError,
    HelpFormatter,
    check_certificate_name,
    confirm,
    load_runtime,
    resolve_vault,
    vault_option,
)
from shared.keyvault import OperationView, call_keyvault
from shared.merge import MergeCheckError, OrderedChain, check_leaf, describe, load_certificates, order_chain
from shared.runtime import Runtime
from shared.settings import VaultConfig


def register(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Add the renew, csr, merge and cancel commands."""
    renew = _add(
        commands, common, "renew", "Start a renewal now, as the app would (or before the window with --force).",
        "Decide and act on one certificate as the Event Grid function does. Without --force nothing starts "
        "before the renewal window; with it a new version starts now, for a key that may be compromised.",
        "certrenew renew --vault contoso-certs web-frontend --force",
    )
    renew.add_argument("--force", action="store_true", help="Start a new version even before the renewal window.")
    renew.set_defaults(run=run_renew)

    csr = _add(
        commands, common, "csr", "Write the pending CSR as PEM.",
        "Write the CSR of the certificate's pending operation as PEM, for your CA to sign.",
        "certrenew csr --vault contoso-certs partner-api -o partner-api.csr",
    )
    csr.add_argument("-o", "--output", type=Path, metavar="FILE", help="Write to FILE instead of standard output.")
    csr.set_defaults(run=run_csr)

    merge = _add(
        commands, common, "merge", "Merge the signed certificate into the pending operation.",
        "Merge the certificate your CA signed into the pending operation. FILE may be a PEM leaf or chain in "
        "any order, DER, PKCS#7 (.p7b, PEM or DER) or base64 without headers; several files are joined. The "
        "leaf's key, validity and names are checked before anything is sent to Key Vault.",
        "certrenew merge --vault contoso-certs partner-api signed.pem intermediate.pem",
    )
    merge.add_argument("files", nargs="+", type=Path, metavar="FILE", help="Files with the signed certificate and chain.")
    merge.set_defaults(run=run_merge)

    cancel = _add(
        commands, common, "cancel", "Cancel and delete the pending operation.",
        "Cancel the certificate's pending operation and delete it, with its CSR and the new key. The version "
        "in use stays as it is.",
        "certrenew cancel --vault contoso-certs partner-api --yes",
    )
    cancel.add_argument("--yes", "-y", action="store_true", help="Do not ask for confirmation.")
    cancel.set_defaults(run=run_cancel)


def run_renew(args: argparse.Namespace) -> int:
    runtime = load_runtime()
    vault = resolve_vault(runtime, args.vault)
    name = check_certificate_name(args.name)

    if runtime.vaults.get_certificate(vault, name) is None:
        raise CommandError(f"Certificate {name} was not found in vault {vault.name}. Check the name with "
                           f"certrenew status --vault {vault.name}.")
    outcome = runtime.service().process_certificate(vault, name, force=args.force)

    for _, _, decision in outcome.decisions:
        print(f"{decision.action}: {decision.reason}")
    for notice in outcome.notices:
        print(f"{notice.summary} {notice.next_step}")

    # A renewal already under way counts as started. The service reports it with this reason when it follows
    # the pending operation.
    started = any(
        decision.action == decisions.START or decision.reason == "the operation is in progress"
        for _, _, decision in outcome.decisions
    )
    if started:
        return EXIT_OK
    hint = "" if args.force else f" Add --force to start a new version now: certrenew renew --vault {vault.name} {name} --force"
    print(f"Nothing was started for {name} in vault {vault.name}.{hint}")
    return EXIT_WARNING


def run_csr(args: argparse.Namespace) -> int:
    runtime = load_runtime()
    vault = resolve_vault(runtime, args.vault)
    name = check_certificate_name(args.name)
    operation = _pending_operation(runtime, vault, name, in_progress=True)
    if operation.csr_pem is None:
        raise CommandError(f"The operation of {name} in vault {vault.name} has no CSR, because Key Vault "
                           f"returned none. Cancel it with certrenew cancel --vault {vault.name} {name} and start again.")

    if args.output is None:
        sys.stdout.write(operation.csr_pem)
        return EXIT_OK
    try:
        args.output.write_text(operation.csr_pem, encoding="ascii")
    except OSError as exc:
        raise CommandError(f"Cannot write {args.output}: {exc.strerror}.", EXIT_USAGE) from exc
    request = x509.load_der_x509_csr(operation.csr)
    print(f"Wrote the CSR for {request.subject.rfc4514_string()} to {args.output}. Send it to your CA, then run: "
          f"certrenew merge --vault {vault.name} {name} SIGNED-FILE", file=sys.stderr)
    return EXIT_OK


def run_merge(args: argparse.Namespace) -> int:
    runtime = load_runtime()
    vault = resolve_vault(runtime, args.vault)
    name = check_certificate_name(args.name)
    certificates = []
    for path in args.files:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise CommandError(f"Cannot read {path}: {exc.strerror}.", EXIT_USAGE) from exc
        certificates.extend(load_certificates(data, str(path)))

    operation = _pending_operation(runtime, vault, name, in_progress=True)
    now = runtime.clock()
    chain = order_chain(certificates, x509.load_der_x509_csr(operation.csr), now)
    policy = runtime.vaults.get_policy(vault, name)
    problems = check_leaf(chain.leaf, dict(policy.raw) if policy else {}, now, name)
    if problems:
        raise MergeCheckError(problems)

    client = runtime.vaults.client(vault)
    merged = call_keyvault(lambda: client.merge_certificate(name, chain.der_chain()),
                           f"merge into certificate {name} in vault {vault.name}")

    version = merged.properties.version
    runtime.journal.append_history(
        vault.name, name, "merged", f"signed certificate from {chain.leaf.issuer.rfc4514_string()} merged; "
        f"new version {version}", runtime.clock(),
    )
    _print_merged(name, vault, version, chain)
    return EXIT_OK


def run_cancel(args: argparse.Namespace) -> int:
    runtime = load_runtime()
    vault = resolve_vault(runtime, args.vault)
    name = check_certificate_name(args.name)
    operation = _pending_operation(runtime, vault, name)

    question = (f"Cancel and delete the {operation.status} operation of {name} in vault {vault.name}? Its CSR and "
                "new key are discarded.")
    if not confirm(question, args.yes):
        print("Nothing was changed.")
        return EXIT_OK

    client = runtime.vaults.client(vault)
    description = f"operation of certificate {name} in vault {vault.name}"
    if operation.in_progress:
        call_keyvault(lambda: client.cancel_certificate_operation(name), description)
    call_keyvault(lambda: client.delete_certificate_operation(name), description)
    runtime.service().record_cancelled(vault, name, f"an operator cancelled and deleted the {operation.status} operation")

    print(f"Cancelled and deleted the operation of {name} in vault {vault.name}. The version in use is unchanged. "
          "If the certificate is due, the next sweep starts a new renewal; set its tag certrenew-mode to notify "
          "or off to stop that.")
    return EXIT_OK


def _add(commands, common, name: str, summary: str, description: str, example: str) -> argparse.ArgumentParser:
    parser = commands.add_parser(
        name, parents=[common], help=summary, description=description,
        epilog=f"example:\n  {example}\n\n{EXIT_CODES_HELP}", formatter_class=HelpFormatter,
    )
    parser.add_argument("name", metavar="NAME", help="Certificate name.")
    vault_option(parser, all_by_default=False)
    return parser


def _pending_operation(runtime: Runtime, vault: VaultConfig, name: str, in_progress: bool = False) -> OperationView:
    """Return the certificate's operation; with in_progress, only one that still waits for a signed certificate."""
    operation = runtime.vaults.get_operation(vault, name)
    start = f"Start one with certrenew renew --vault {vault.name} {name} --force."
    if operation is None:
        if runtime.vaults.get_certificate(vault, name) is None:
            raise CommandError(
                f"Certificate {name} was not found in vault {vault.name}. Check the name with "
                f"certrenew status --vault {vault.name}."
            )
        raise CommandError(f"Certificate {name} in vault {vault.name} has no pending operation. {start}")
    if in_progress and not operation.in_progress:
        raise CommandError(
            f"The last operation of {name} in vault {vault.name} is {operation.status}, so no CSR waits for a "
            f"signature. {start}"
        )
    return operation


def _print_merged(name: str, vault: VaultConfig, version: str, chain: OrderedChain) -> None:
    leaf = chain.leaf
    days = (leaf.not_valid_after_utc - leaf.not_valid_before_utc).days
    print(f"Merged into {name} in vault {vault.name}: version {version}, valid until "
          f"{leaf.not_valid_after_utc:%Y-%m-%d} ({days} days), thumbprint "
          f"{leaf.fingerprint(hashes.SHA1()).hex().upper()}.")
    for position, certificate in enumerate(chain.certificates):
        role = "other CA"
        if position == 0:
            role = "leaf"
        elif certificate in chain.issuers:
            role = "issuer"
        print(f"  {position}: {role:<8} {describe(certificate)}")
    if not chain.issuers and leaf.issuer != leaf.subject:
        print(f"  Only the leaf was merged: the files contain no certificate of its issuer, "
              f"{leaf.issuer.rfc4514_string()}. Services that take the chain from Key Vault send the leaf alone, "
              "so clients must already have that issuer.")
    for certificate, reason in chain.dropped:
        print(f"  Left out {describe(certificate)}: {reason}.")

