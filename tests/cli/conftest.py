"""Helpers of the CLI tests: run certrenew in-process, and make certificates a CA would hand out."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from shared.cli import main
from tests.support.harness import unknown_issuer_policy


@dataclass
class Result:
    """What one certrenew run returned and printed."""

    code: int
    out: str
    err: str


@pytest.fixture
def certrenew(app, capsys):
    """Run certrenew with arguments against the app's emulator, and return its exit code and output."""

    def run(*argv: str) -> Result:
        capsys.readouterr()
        code = main(list(argv))
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


@pytest.fixture
def pending_csr(app):
    """A certificate of issuer Unknown named partner in contoso-certs, whose first version waits for a merge."""
    client = app.client()
    client.begin_create_certificate("partner", unknown_issuer_policy())
    return x509.load_der_x509_csr(client.get_certificate_operation("partner").csr)


@dataclass
class TestCA:
    """A root and an intermediate CA, standing for a public CA outside Key Vault."""

    root: x509.Certificate
    root_key: ec.EllipticCurvePrivateKey
    intermediate: x509.Certificate
    intermediate_key: ec.EllipticCurvePrivateKey

    def issue(
        self,
        public_key,
        now: datetime,
        dns_names: tuple[str, ...] = ("partner.contoso.test",),
        common_name: str = "partner.contoso.test",
        days: int = 90,
        not_before: datetime | None = None,
    ) -> x509.Certificate:
        """Sign a leaf for public_key with the intermediate, valid from not_before (default: a day before now)."""
        start = not_before or now - timedelta(days=1)
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
            .issuer_name(self.intermediate.subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(start + timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name) for name in dns_names]), critical=False)
        )
        return builder.sign(self.intermediate_key, hashes.SHA256())


def make_ca(now: datetime) -> TestCA:
    root_key = ec.generate_private_key(ec.SECP256R1())
    intermediate_key = ec.generate_private_key(ec.SECP256R1())
    root_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test Root CA")])
    intermediate_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test Issuing CA")])
    root = _ca_certificate(root_name, root_name, root_key.public_key(), root_key, now)
    intermediate = _ca_certificate(intermediate_name, root_name, intermediate_key.public_key(), root_key, now)
    return TestCA(root, root_key, intermediate, intermediate_key)


@pytest.fixture
def test_ca(app):
    return make_ca(app.now())


def _ca_certificate(subject, issuer, public_key, signing_key, now) -> x509.Certificate:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=365))
        .not_valid_after(now + timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(signing_key, hashes.SHA256())
    )
