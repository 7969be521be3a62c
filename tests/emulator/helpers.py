"""Certificates, keys and clients that the emulator tests build with cryptography and the real SDK."""

from __future__ import annotations

import datetime as dt

from azure.keyvault.certificates import CertificateClient
from azure.keyvault.certificates.aio import CertificateClient as AsyncCertificateClient
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12

from emulators.keyvault import AsyncEmulatorCredential, EmulatorCredential, KeyVaultEmulator

# Small backoff so retried requests do not slow the suite; the number of retries stays the SDK default.
FAST_RETRY = {"retry_backoff_factor": 0.01, "retry_backoff_max": 0.05}


def make_client(emulator: KeyVaultEmulator, vault: str = "contoso-certs", **kwargs) -> CertificateClient:
    """Return a synchronous SDK client for one emulated vault."""
    options = {**FAST_RETRY, **kwargs}
    return CertificateClient(
        emulator.vault_url(vault), EmulatorCredential(), connection_verify=emulator.ca_bundle,
        verify_challenge_resource=False, **options,
    )


def make_async_client(emulator: KeyVaultEmulator, vault: str = "contoso-certs") -> AsyncCertificateClient:
    """Return an asynchronous SDK client for one emulated vault."""
    return AsyncCertificateClient(
        emulator.vault_url(vault), AsyncEmulatorCredential(), connection_verify=emulator.ca_bundle,
        verify_challenge_resource=False, **FAST_RETRY,
    )


def self_signed(subject: str, not_before: dt.datetime, days: int, dns_names=()) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """Return a self-signed EC P-256 certificate and its key, valid for days from not_before."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name.from_rfc4514_string(subject)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_before + dt.timedelta(days=days))
    )
    if dns_names:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in dns_names]), critical=False)
    return builder.sign(key, hashes.SHA256()), key


def pfx_bytes(certificate: x509.Certificate, key, password: bytes | None) -> bytes:
    """Return a PKCS#12 file of the certificate and key."""
    encryption = serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    return pkcs12.serialize_key_and_certificates(b"imported", key, certificate, None, encryption)


def pem_bytes(certificate: x509.Certificate, key) -> bytes:
    """Return a PEM file with the private key and the certificate, as Key Vault imports it."""
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return key_pem + certificate.public_bytes(serialization.Encoding.PEM)


def der(certificate: x509.Certificate) -> bytes:
    """Return the DER encoding of a certificate."""
    return certificate.public_bytes(serialization.Encoding.DER)
