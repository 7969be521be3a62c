"""Throwaway certificate authority and loopback server certificate for the emulator's HTTPS listener."""

from __future__ import annotations

import datetime
import ipaddress
import os
import ssl
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# EC P-256 keys are generated in milliseconds, where RSA-2048 takes a noticeable part of a second.
_CURVE = ec.SECP256R1()
# Long enough for a demo left running for days, short enough that a leaked bundle soon stops mattering.
_VALIDITY = datetime.timedelta(days=7)
# Clocks of the client and the emulator are the same machine's, but a small back-date covers rounding.
_BACKDATE = datetime.timedelta(minutes=5)
LOOPBACK_NAMES = ("localhost",)
LOOPBACK_ADDRESSES = ("127.0.0.1", "::1")


@dataclass(frozen=True)
class TlsFiles:
    """Paths of the PEM files written for one emulator run."""

    ca_bundle: str
    """CA certificate that clients pass as ``connection_verify``."""
    server_certificate: str
    """Server certificate followed by nothing else: the CA is the only trust anchor clients need."""
    server_key: str
    """Unencrypted server private key, readable only by the current user."""


def write_loopback_tls_files(directory: str, common_name: str = "ACS Email emulator") -> TlsFiles:
    """Generate a CA and a server certificate for loopback names, and write them as PEM into ``directory``."""
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(_CURVE)
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{common_name} throwaway CA")])
    ca_certificate = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + _VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_ca_key_usage(), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    server_key = ec.generate_private_key(_CURVE)
    server_certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(ca_name)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + _VALIDITY)
        .add_extension(_loopback_subject_alternative_names(), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )

    files = TlsFiles(
        ca_bundle=os.path.join(directory, "ca-bundle.pem"),
        server_certificate=os.path.join(directory, "server-cert.pem"),
        server_key=os.path.join(directory, "server-key.pem"),
    )
    _write(files.ca_bundle, ca_certificate.public_bytes(serialization.Encoding.PEM))
    _write(files.server_certificate, server_certificate.public_bytes(serialization.Encoding.PEM))
    key_pem = server_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    _write(files.server_key, key_pem, mode=0o600)
    return files


def server_ssl_context(files: TlsFiles) -> ssl.SSLContext:
    """Build a TLS 1.2+ server context from the files written by ``write_loopback_tls_files``."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(files.server_certificate, files.server_key)
    return context


def _ca_key_usage() -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=True,
        crl_sign=True,
        encipher_only=False,
        decipher_only=False,
    )


def _loopback_subject_alternative_names() -> x509.SubjectAlternativeName:
    names: list[x509.GeneralName] = [x509.DNSName(name) for name in LOOPBACK_NAMES]
    names += [x509.IPAddress(ipaddress.ip_address(address)) for address in LOOPBACK_ADDRESSES]
    return x509.SubjectAlternativeName(names)


def _write(path: str, data: bytes, mode: int = 0o644) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(descriptor, "wb") as file:
        file.write(data)
