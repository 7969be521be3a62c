"""Signed certificates for a merge: read what a CA hands out, order the chain, and check it against the CSR.

Key Vault's merge takes the leaf and its chain as base64 DER in `x5c`. It rejects a PKCS#7 file, stripped or
double-encoded base64, and a leaf whose key is not the pending CSR's, with messages that do not say which of
these went wrong. Everything here runs locally, before any request, so each problem can be named.
"""

from __future__ import annotations

import base64
import binascii
import re
import warnings
from dataclasses import dataclass, field
from datetime import datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat, pkcs7
from cryptography.x509.oid import NameOID

from shared.errors import CertRenewError

# PEM labels that hold certificates. "X509 CERTIFICATE" and "TRUSTED CERTIFICATE" are older OpenSSL forms.
CERTIFICATE_LABELS = ("CERTIFICATE", "X509 CERTIFICATE", "TRUSTED CERTIFICATE")
PKCS7_LABELS = ("PKCS7", "PKCS #7 SIGNED DATA", "CMS")
PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 #]+)-----(.*?)-----END \1-----", re.DOTALL)

# Object identifier of the Microsoft user principal name in a subjectAltName otherName.
UPN_OID = x509.ObjectIdentifier("1.3.6.1.4.1.311.20.2.3")

# Base64 of base64 (a double-encoded file) is decoded up to this many layers.
MAX_BASE64_LAYERS = 2


class MergeInputError(CertRenewError):
    """A file given to merge is not a certificate or chain that Key Vault can take."""


@dataclass(frozen=True)
class Problem:
    """One reason the signed certificate cannot be merged: what is wrong, and what to do."""

    what: str
    remedy: str

    def __str__(self) -> str:
        return f"{self.what} {self.remedy}"


class MergeCheckError(CertRenewError):
    """The signed certificate does not fit the pending operation; nothing was sent to Key Vault."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("\n".join(str(problem) for problem in problems))
        self.problems = problems


@dataclass
class OrderedChain:
    """The leaf first, then each issuer up the chain, then other CA certificates the files contained."""

    leaf: x509.Certificate
    issuers: list[x509.Certificate] = field(default_factory=list)
    extra_cas: list[x509.Certificate] = field(default_factory=list)
    # Certificates left out, with the reason, for the operator to read.
    dropped: list[tuple[x509.Certificate, str]] = field(default_factory=list)

    @property
    def certificates(self) -> list[x509.Certificate]:
        return [self.leaf, *self.issuers, *self.extra_cas]

    def der_chain(self) -> list[bytes]:
        """Return the chain as DER, in the order Key Vault stores it in x5c."""
        return [certificate.public_bytes(Encoding.DER) for certificate in self.certificates]


def load_certificates(data: bytes, source: str) -> list[x509.Certificate]:
    """Read every certificate in a file: PEM (certificates or PKCS#7), DER, PKCS#7 DER or bare base64.

    Raises MergeInputError naming the file and what it contains instead.
    """
    certificates = _load(data, source, layers=0)
    if not certificates:
        raise MergeInputError(f"{source} contains no certificate. Give the file your CA sent with the signed certificate.")
    return certificates


def order_chain(certificates: list[x509.Certificate], csr: x509.CertificateSigningRequest, now: datetime) -> OrderedChain:
    """Find the leaf for the CSR's key and put its issuers after it, whatever order the files had.

    Raises MergeCheckError when no certificate has the CSR's public key.
    """
    unique = _unique(certificates)
    expected_key = _public_key_der(csr.public_key())
    leaves = [certificate for certificate in unique if _public_key_der(certificate.public_key()) == expected_key]
    if not leaves:
        raise MergeCheckError([_key_mismatch(unique, csr)])

    # Several certificates for one key happen when the CA reissued, or with reuse_key: take the one valid now
    # that lasts longest.
    leaves.sort(key=lambda c: (c.not_valid_before_utc <= now <= c.not_valid_after_utc, c.not_valid_after_utc), reverse=True)
    chain = OrderedChain(leaf=leaves[0])
    for other in leaves[1:]:
        chain.dropped.append((other, "another certificate for the same key; the one valid now and longest is merged"))

    remaining = [certificate for certificate in unique if certificate not in leaves]
    current = chain.leaf
    while current.issuer != current.subject:
        issuer = next((candidate for candidate in remaining if _issued(current, candidate)), None)
        if issuer is None:
            break
        chain.issuers.append(issuer)
        remaining.remove(issuer)
        current = issuer

    for certificate in remaining:
        if _is_ca(certificate):
            chain.extra_cas.append(certificate)
        else:
            chain.dropped.append((certificate, "not a CA certificate and not the one for the pending CSR"))
    return chain


def check_leaf(leaf: x509.Certificate, policy: dict, now: datetime, certificate_name: str) -> list[Problem]:
    """Return what keeps the leaf from serving the certificate's policy now: validity and names."""
    problems = []
    if now < leaf.not_valid_before_utc:
        problems.append(Problem(
            f"The signed certificate is not valid before {leaf.not_valid_before_utc:%Y-%m-%d %H:%M} UTC "
            f"(it is {now:%Y-%m-%d %H:%M} UTC now).",
            "Merge it after that time, or check this machine's clock.",
        ))
    if now > leaf.not_valid_after_utc:
        problems.append(Problem(
            f"The signed certificate expired on {leaf.not_valid_after_utc:%Y-%m-%d %H:%M} UTC.",
            f"Ask the CA to sign the pending CSR again (certrenew csr {certificate_name} prints it).",
        ))

    missing = missing_names(leaf, policy)
    if missing:
        problems.append(Problem(
            f"The signed certificate does not cover {', '.join(missing)}, which the policy of {certificate_name} "
            f"requires. It covers: {', '.join(names_of(leaf)) or 'no names'}.",
            f"Ask the CA to issue it with every name in the CSR (certrenew csr {certificate_name} prints it), or "
            "change the certificate's policy and start a new request.",
        ))
    return problems


def missing_names(leaf: x509.Certificate, policy: dict) -> list[str]:
    """Return the policy's subject common name and SANs that the leaf does not cover."""
    x509_props = policy.get("x509_props") or {}
    sans = x509_props.get("sans") or {}
    dns_names = _san_values(leaf, x509.DNSName)
    if not dns_names:
        # Before SANs, clients matched the common name; a leaf without SANs is judged by it.
        dns_names = _common_names(leaf)

    missing = []
    common_name = policy_common_name(str(x509_props.get("subject") or ""))
    if common_name and _looks_like_host(common_name):
        if not any(_host_matches(pattern, common_name) for pattern in dns_names):
            missing.append(f"CN={common_name}")
    elif common_name and common_name not in _common_names(leaf):
        missing.append(f"CN={common_name}")

    for name in sans.get("dns_names") or []:
        if not any(_host_matches(pattern, name) for pattern in dns_names):
            missing.append(f"DNS:{name}")
    emails = {email.lower() for email in _san_values(leaf, x509.RFC822Name)}
    missing.extend(f"email:{email}" for email in sans.get("emails") or [] if email.lower() not in emails)
    upns = {upn.lower() for upn in _upns(leaf)}
    missing.extend(f"UPN:{upn}" for upn in sans.get("upns") or [] if upn.lower() not in upns)
    return missing


def names_of(certificate: x509.Certificate) -> list[str]:
    """Return the names a certificate covers, as `CN=`, `DNS:`, `email:` and `UPN:` strings."""
    names = [f"CN={name}" for name in _common_names(certificate)]
    names += [f"DNS:{name}" for name in _san_values(certificate, x509.DNSName)]
    names += [f"email:{name}" for name in _san_values(certificate, x509.RFC822Name)]
    names += [f"UPN:{name}" for name in _upns(certificate)]
    return names


def policy_common_name(subject: str) -> str | None:
    """Return the CN of a policy subject such as 'CN=www.contoso.com, O=Contoso', or None."""
    found = re.search(r"(?:^|[,+;])\s*CN\s*=\s*((?:\\.|[^,+;])+)", subject, re.IGNORECASE)
    return found.group(1).strip().replace("\\", "") if found else None


def describe(certificate: x509.Certificate) -> str:
    """Return a one-line description for messages: subject and validity."""
    subject = certificate.subject.rfc4514_string() or "(empty subject)"
    return f"{subject} (valid {certificate.not_valid_before_utc:%Y-%m-%d} to {certificate.not_valid_after_utc:%Y-%m-%d})"


def _load(data: bytes, source: str, layers: int) -> list[x509.Certificate]:
    # DER is binary and may end in bytes that look like white space, so it is read before any stripping.
    if data[:1] == b"\x30":
        return _load_der(data, source)
    stripped = data.strip()
    if b"-----BEGIN" in stripped:
        return _load_pem(stripped, source)
    try:
        decoded = base64.b64decode(b"".join(stripped.split()), validate=True)
    except (binascii.Error, ValueError):
        decoded = b""
    if decoded and layers < MAX_BASE64_LAYERS:
        return _load(decoded, source, layers + 1)
    raise MergeInputError(
        f"{source} is not a certificate: expected PEM, DER, PKCS#7 (.p7b) or base64 of a DER certificate. "
        "Give the file your CA sent with the signed certificate."
    )


def _load_pem(data: bytes, source: str) -> list[x509.Certificate]:
    certificates: list[x509.Certificate] = []
    for match in PEM_BLOCK.finditer(data):
        label = match.group(1).decode("ascii")
        block = match.group(0)
        if "PRIVATE KEY" in label:
            raise MergeInputError(
                f"{source} contains a private key. Merge takes only the signed certificate and its chain, because "
                "the key of the pending request never leaves Key Vault. Remove the key block and keep the file safe."
            )
        if label == "CERTIFICATE REQUEST" or label == "NEW CERTIFICATE REQUEST":
            raise MergeInputError(f"{source} is a CSR, not a signed certificate. Send it to your CA and merge the certificate it returns.")
        try:
            if label in CERTIFICATE_LABELS:
                certificates.append(x509.load_pem_x509_certificate(_relabel(block, label)))
            elif label in PKCS7_LABELS:
                certificates.extend(_load_pkcs7(_relabel(block, label, "PKCS7"), pem=True))
            else:
                raise MergeInputError(f"{source} contains a PEM block of type {label}, which is not a certificate.")
        except ValueError as exc:
            raise MergeInputError(f"{source} has a damaged {label} block: {exc}. Download it from the CA again.") from exc
    if not certificates:
        raise MergeInputError(f"{source} has no complete PEM block. Download it from the CA again.")
    return certificates


def _load_der(data: bytes, source: str) -> list[x509.Certificate]:
    try:
        return [x509.load_der_x509_certificate(data)]
    except ValueError:
        pass
    try:
        return _load_pkcs7(data, pem=False)
    except ValueError as exc:
        raise MergeInputError(
            f"{source} is DER but neither a certificate nor a PKCS#7 bundle of certificates ({exc}). "
            "If it is a PKCS#12 (.pfx) file, it holds a private key and is not a CA's answer to a CSR."
        ) from exc


def _relabel(block: bytes, label: str, new_label: str = "CERTIFICATE") -> bytes:
    if label == new_label:
        return block
    return block.replace(f"BEGIN {label}".encode(), f"BEGIN {new_label}".encode()).replace(
        f"END {label}".encode(), f"END {new_label}".encode()
    )


def _unique(certificates: list[x509.Certificate]) -> list[x509.Certificate]:
    seen: set[bytes] = set()
    unique = []
    for certificate in certificates:
        der = certificate.public_bytes(Encoding.DER)
        if der not in seen:
            seen.add(der)
            unique.append(certificate)
    return unique


def _issued(subject: x509.Certificate, issuer: x509.Certificate) -> bool:
    if subject.issuer != issuer.subject:
        return False
    try:
        subject.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _is_ca(certificate: x509.Certificate) -> bool:
    try:
        return certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        return False


def _public_key_der(key: object) -> bytes:
    return key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)  # type: ignore[attr-defined]


def _key_mismatch(certificates: list[x509.Certificate], csr: x509.CertificateSigningRequest) -> Problem:
    leaves = [certificate for certificate in certificates if not _is_ca(certificate)] or certificates
    found = "; ".join(describe(certificate) for certificate in leaves)
    return Problem(
        f"No certificate in the files has the key of the pending CSR ({csr.subject.rfc4514_string()}). Found: {found}.",
        "A certificate signed for another CSR cannot be merged, because its private key is not in Key Vault. "
        "Send the CSR that certrenew csr prints to your CA and merge what it returns.",
    )


def _san_values(certificate: x509.Certificate, kind: type) -> list[str]:
    try:
        sans = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return list(sans.get_values_for_type(kind))


def _common_names(certificate: x509.Certificate) -> list[str]:
    return [str(attribute.value) for attribute in certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]


def _upns(certificate: x509.Certificate) -> list[str]:
    upns = []
    for other in _san_values(certificate, x509.OtherName):
        if other.type_id == UPN_OID:
            upn = _utf8_string(other.value)
            if upn:
                upns.append(upn)
    return upns


def _utf8_string(der: bytes) -> str | None:
    """Decode a DER UTF8String (tag 0x0C), the encoding of a UPN in a SAN otherName."""
    if len(der) < 2 or der[0] != 0x0C:
        return None
    length, offset = der[1], 2
    if length & 0x80:
        size = length & 0x7F
        length, offset = int.from_bytes(der[2 : 2 + size], "big"), 2 + size
    return der[offset : offset + length].decode("utf-8", errors="replace")


def _looks_like_host(name: str) -> bool:
    return "." in name and " " not in name and "@" not in name


def _host_matches(pattern: str, name: str) -> bool:
    """Match a DNS name against a certificate name, where `*.` covers exactly one label (RFC 6125)."""
    pattern, name = pattern.lower().rstrip("."), name.lower().rstrip(".")
    if pattern == name:
        return True
    if pattern.startswith("*.") and not name.startswith("*."):
        head, _, rest = name.partition(".")
        return bool(head) and rest == pattern[2:]
    return False


def _load_pkcs7(data: bytes, pem: bool) -> list[x509.Certificate]:
    """Read the certificates of a PKCS#7 file. BER encoding, which OpenSSL's crl2pkcs7 writes, is accepted.

    cryptography warns when it falls back from DER to BER. The fallback is what CAs need, so the warning is
    not shown to the operator.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="PKCS#7 certificates could not be parsed as DER")
        if pem:
            return list(pkcs7.load_pem_pkcs7_certificates(data))
        return list(pkcs7.load_der_pkcs7_certificates(data))
