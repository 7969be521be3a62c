"""Command line: start the Key Vault emulator, print how to point the app and the SDK at it, serve until Ctrl-C."""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import signal
import sys
import threading

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from emulators.keyvault import EmulatorCredential, KeyVaultEmulator, pki

DEFAULT_VAULTS = ["contoso-certs"]


def main(argv: list[str] | None = None) -> int:
    """Parse the options, start the emulator and block until interrupted."""
    options = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # The SDK logs every request of the seeding at INFO, which would bury the settings printed below.
    logging.getLogger("azure").setLevel(logging.WARNING)
    # A SIGTERM stops the emulator the way Ctrl-C does, so its temporary TLS files are removed.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    vaults = options.vault or DEFAULT_VAULTS
    sink = options.events_file or options.events_url
    try:
        emulator = KeyVaultEmulator(vaults=vaults, event_sink=sink, ports=options.port or None)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    with emulator:
        if options.seed:
            for vault in vaults:
                seed(emulator, vault)
        print(instructions(emulator, vaults), flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            print("Stopping the Key Vault emulator.")
    return 0


def seed(emulator: KeyVaultEmulator, vault: str) -> None:
    """Create one certificate of each kind: self-signed, Unknown issuer (CSR pending), DigiCert issuer, imported."""
    from azure.keyvault.certificates import CertificateClient, CertificatePolicy

    client = CertificateClient(
        emulator.vault_url(vault), EmulatorCredential(), connection_verify=emulator.ca_bundle, verify_challenge_resource=False
    )
    with client:
        client.begin_create_certificate(
            "self-signed", CertificatePolicy(issuer_name="Self", subject="CN=self-signed.contoso.test"), _polling_interval=0
        ).result()
        client.begin_create_certificate(
            "external-ca", CertificatePolicy(issuer_name="Unknown", subject="CN=external-ca.contoso.test")
        ).result()
        client.create_issuer("digicert", "DigiCert", account_id="emulator")
        client.begin_create_certificate(
            "integrated-ca", CertificatePolicy(issuer_name="digicert", subject="CN=integrated-ca.contoso.test"),
            _polling_interval=0,
        ).result()
        client.import_certificate("imported", _pfx_for_import(emulator))


def _pfx_for_import(emulator: KeyVaultEmulator) -> bytes:
    """Return a PFX of a certificate signed by the external test CA, valid for 60 days from the emulator clock."""
    key = pki.generate_key("EC", curve="P-256")
    now = emulator.now()
    spec = pki.SubjectSpec(subject="CN=imported.contoso.test", dns_names=("imported.contoso.test",))
    certificate = pki.sign_for_key(emulator.external_ca, key.public_key(), spec, now, now + dt.timedelta(days=60))
    return pkcs12.serialize_key_and_certificates(b"imported", key, certificate, None, serialization.NoEncryption())


def instructions(emulator: KeyVaultEmulator, vaults: list[str]) -> str:
    """Return the vault URLs, the CA bundle and the settings and code that point a client at the emulator."""
    first = vaults[0]
    pairs = ",".join(f"{vault}={emulator.vault_url(vault)}" for vault in vaults)
    lines = ["Key Vault emulator is running. Vaults:"]
    lines += [f"  {vault}: {emulator.vault_url(vault)}" for vault in vaults]
    lines += [
        f"CA bundle: {emulator.ca_bundle}",
        "",
        "App settings:",
        f"  CERTRENEW_VAULTS={pairs}",
        f"  CERTRENEW_KEYVAULT_CA_BUNDLE={emulator.ca_bundle}",
        "",
        "Python:",
        "  from azure.keyvault.certificates import CertificateClient",
        "  from emulators.keyvault import EmulatorCredential",
        f"  client = CertificateClient({emulator.vault_url(first)!r}, EmulatorCredential(),",
        f"                             connection_verify={emulator.ca_bundle!r}, verify_challenge_resource=False)",
        "  print([c.name for c in client.list_properties_of_certificates()])",
        "",
        f"Control API (no token needed): {emulator.vault_url(first)}/_emulator/clock, .../faults, .../requests, .../events",
        "Press Ctrl-C to stop.",
    ]
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m emulators.keyvault",
        description="Local emulator of the Azure Key Vault certificates data plane, one HTTPS port per vault.",
    )
    parser.add_argument("--vault", action="append", metavar="NAME",
                        help="Key Vault name to emulate; repeat for more vaults. Default: contoso-certs.")
    parser.add_argument("--port", action="append", type=int, metavar="N",
                        help="Port of the vault at the same position; repeat once per --vault. Default: a free port.")
    parser.add_argument("--seed", action="store_true",
                        help="Create one certificate per kind in each vault: Self, Unknown, DigiCert and imported.")
    sinks = parser.add_mutually_exclusive_group()
    sinks.add_argument("--events-file", metavar="PATH", help="Append each event as one JSON line to this file.")
    sinks.add_argument("--events-url", metavar="URL",
                       help="POST events (Event Grid schema) to this http(s)://127.0.0.1 URL.")
    return parser


if __name__ == "__main__":
    sys.exit(main())
