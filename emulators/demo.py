"""An offline demo: certificates of every kind renew from Key Vault events, through the real function entry points.

It starts the Key Vault emulator and seeds one certificate of each kind, plus an expired and a disabled one.
Then it moves the emulator's clock so that Key Vault emits its events, and delivers them to the functions in
function_app.py. It runs the timer, signs and merges a CSR as a person would, and prints each certificate's
story. The notices are written to the outbox folder, one JSON file each. The email function then sends each
notice through the ACS Email emulator, which writes every email next to the notices as an `.eml` file and an
`.html` preview.

Run it with `make demo`, or `python -m emulators.demo [--outbox DIR]`.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from azure.keyvault.certificates import (
    CertificateClient,
    CertificateContact,
    CertificatePolicy,
)
from cryptography.hazmat.primitives.serialization import Encoding

from emulators.acs_email import AcsEmailEmulator
from emulators.functions_host import EventRecorder, deliver_events, deliver_queue_message, run_timer
from emulators.keyvault import EmulatorCredential, KeyVaultEmulator
from shared.email.handler import set_email_sender
from shared.email.sending import EmailSender
from shared.journal import SqliteJournal
from shared.keyvault import VaultClients
from shared.notices import Notice
from shared.runtime import Runtime, set_runtime
from shared.settings import Settings, VaultConfig

VAULT = "contoso-certs"
EMAIL_SENDER = "DoNotReply@certrenew.test"
# The emulator's clock starts on this day; the app runs on the same clock.
START = datetime(2030, 1, 1, tzinfo=timezone.utc)

# Each certificate of the demo: name, what it shows, policy, tags and whether it is enabled.
CERTIFICATES = (
    ("web-frontend", "self-signed", dict(issuer_name="Self", validity_in_months=12), {"team": "web"}, True),
    ("shop", "integrated CA (DigiCert)", dict(issuer_name="contoso-digicert", validity_in_months=12), {}, True),
    ("partner-api", "other CA (CSR)", dict(issuer_name="Unknown", validity_in_months=12),
     {"certrenew-owners": "partner-team@contoso.test"}, True),
    ("legacy-sftp", "self-signed, notify only", dict(issuer_name="Self", validity_in_months=1),
     {"certrenew-mode": "notify"}, True),
    ("old-intranet", "self-signed, disabled", dict(issuer_name="Self", validity_in_months=12), {}, False),
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m emulators.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--outbox", type=Path, default=Path("outbox"), help="Folder for the notices (default: outbox).")
    parser.add_argument("--verbose", action="store_true", help="Log each decision of the app.")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("azure").setLevel(logging.WARNING)

    started = time.monotonic()
    shutil.rmtree(args.outbox, ignore_errors=True)
    workdir = Path(tempfile.mkdtemp(prefix="certrenew-demo-"))
    recorder = EventRecorder()
    acs = AcsEmailEmulator(outbox_dir=str(args.outbox), allowed_senders=(EMAIL_SENDER,), poll_retry_after=0)
    with KeyVaultEmulator(vaults=[VAULT], event_sink=recorder, start_time=START, integrated_ca_checks=2) as keyvault, acs:
        settings = Settings(
            vaults=(VaultConfig(VAULT, keyvault.vault_url(VAULT)),),
            journal=f"sqlite:{workdir / 'journal.sqlite3'}",
            outbox_dir=str(args.outbox),
            keyvault_ca_bundle=keyvault.ca_bundle,
            acs_endpoint=acs.endpoint,
            acs_ca_bundle=acs.ca_bundle,
            email_sender=EMAIL_SENDER,
        )
        runtime = Runtime(settings, VaultClients(settings), SqliteJournal(str(workdir / "journal.sqlite3")), keyvault.now)
        set_runtime(runtime)
        # The emulator sends no poll hint (Retry-After 0), so a short interval keeps the SDK from waiting 30 s.
        set_email_sender(EmailSender(settings, polling_interval=0.05))
        try:
            notices = run_story(keyvault, recorder)
            send_emails(notices)
        finally:
            set_email_sender(None)
            set_runtime(None)
        print_summary(keyvault, runtime, notices, args.outbox, time.monotonic() - started)
        print_emails(acs, args.outbox)
    shutil.rmtree(workdir, ignore_errors=True)
    return 0


def run_story(keyvault: KeyVaultEmulator, recorder: EventRecorder) -> list[Notice]:
    """Seed the vault, move the clock and deliver what Key Vault emits. Returns every notice queued."""
    client = CertificateClient(
        keyvault.vault_url(VAULT), EmulatorCredential(), connection_verify=keyvault.ca_bundle,
        verify_challenge_resource=False,
    )
    step("Seeding", f"{len(CERTIFICATES)} certificates and the certificate contacts of {VAULT}")
    client.set_contacts([CertificateContact(email="pki-team@contoso.test", name="PKI team")])
    client.create_issuer("contoso-digicert", "DigiCert", account_id="demo-account", password="demo-only")
    for name, _, policy_options, tags, enabled in CERTIFICATES:
        policy = CertificatePolicy(subject=f"CN={name}.contoso.test", san_dns_names=[f"{name}.contoso.test"], **policy_options)
        poller = client.begin_create_certificate(name, policy, tags=tags, enabled=enabled, _polling_interval=0)
        if policy_options["issuer_name"] == "Unknown":
            merge_signed_csr(keyvault, client, name)
        else:
            poller.result()
    notices = deliver_events(recorder.take_new())

    step("Clock", "moves 340 days: Key Vault sends NearExpiry for the four enabled certificates, Expired for legacy-sftp")
    keyvault.advance(days=340)
    notices += deliver_events(recorder.take_new())

    step("Timer", "runs three times: it checks the operations still running (the integrated CA needs two checks)")
    for _ in range(3):
        notices += run_timer()
        notices += deliver_events(recorder.take_new())

    step("Person", "gets partner-api's CSR signed by the outside CA and merges it")
    merge_signed_csr(keyvault, client, "partner-api")
    notices += deliver_events(recorder.take_new())
    notices += run_timer()
    return notices


def send_emails(notices: list[Notice]) -> None:
    """Deliver every notice to the email function, as the notice queue would."""
    step("Email", f"function sends the {len(notices)} notices through the ACS Email emulator")
    for notice in notices:
        deliver_queue_message(notice.to_json())


def merge_signed_csr(keyvault: KeyVaultEmulator, client: CertificateClient, name: str) -> None:
    """Sign the pending CSR with the emulator's outside test CA and merge it, as a person would."""
    signed = keyvault.sign_csr(client.get_certificate_operation(name).csr, days=365)
    client.merge_certificate(name, [signed.public_bytes(Encoding.DER)])


def step(title: str, text: str) -> None:
    print(f"{title:>8}  {text}")


def print_summary(keyvault: KeyVaultEmulator, runtime: Runtime, notices: list[Notice], outbox: Path, seconds: float) -> None:
    print()
    print(f"Story of each certificate in {VAULT} (emulator clock now {keyvault.now():%Y-%m-%d}):")
    for name, kind, _, _, _ in CERTIFICATES:
        story = [notice.kind for notice in notices if notice.certificate.name == name]
        history = runtime.journal.history(VAULT, name)
        versions = len(list(keyvault_client(keyvault).list_properties_of_certificate_versions(name)))
        line = " -> ".join(story) if story else "no notice (skipped: " + skip_reason(name) + ")"
        print(f"  {name:<14} {kind:<26} versions: {versions}  notices: {line}")
        if history and history[0]["action"] == "renewal-failed":
            print(f"  {'':<14} last failure: {history[0]['detail']}")
    print()
    print(f"{len(notices)} notices written to {outbox}/ in {seconds:.1f} s. Key Vault requests by the app and the demo: "
          f"{len([r for r in keyvault.request_log() if r['status'] != 401])}; secret reads: {len(keyvault.secret_reads)}.")


def print_emails(acs: AcsEmailEmulator, outbox: Path) -> None:
    messages = acs.messages
    print()
    print(f"{len(messages)} emails sent through the ACS Email emulator, each as .eml and .html in {outbox}/:")
    for message in messages:
        recipients = ", ".join(recipient["address"] for recipient in message["recipients"]["to"])
        attachments = "".join(f"  [+ {attachment['name']}]" for attachment in message["attachments"])
        print(f"  {message['subject']}{attachments}")
        print(f"  {'':<4}to: {recipients}")


def skip_reason(name: str) -> str:
    return "disabled" if name == "old-intranet" else "not due"


def keyvault_client(keyvault: KeyVaultEmulator) -> CertificateClient:
    return CertificateClient(
        keyvault.vault_url(VAULT), EmulatorCredential(), connection_verify=keyvault.ca_bundle,
        verify_challenge_resource=False,
    )


if __name__ == "__main__":
    sys.exit(main())
