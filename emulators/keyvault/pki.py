"""X.509 building blocks of the emulator: keys, CSRs, certificates, test CAs and certificate parsing."""

from __future__ import annotations

import base64
import calendar
import datetime as dt
import hashlib
import ipaddress
import re
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

RSA_KEY_SIZES = (2048, 3072, 4096)
CURVES = {"P-256": ec.SECP256R1, "P-384": ec.SECP384R1, "P-521": ec.SECP521R1, "P-256K": ec.SECP256K1}
CURVE_NAMES = {curve.name: name for name, curve in CURVES.items()}

# X.509 key usage names as Key Vault spells them, mapped to cryptography's KeyUsage arguments.
KEY_USAGE_FIELDS = {
    "digitalSignature": "digital_signature",
    "nonRepudiation": "content_commitment",
    "keyEncipherment": "key_encipherment",
    "dataEncipherment": "data_encipherment",
    "keyAgreement": "key_agreement",
    "keyCertSign": "key_cert_sign",
    "cRLSign": "crl_sign",
    "encipherOnly": "encipher_only",
    "decipherOnly": "decipher_only",
}

# Object identifier of the user principal name, an otherName SAN (Microsoft's szOID_NT_PRINCIPAL_NAME).
_UPN_OID = x509.ObjectIdentifier("1.3.6.1.4.1.311.20.2.3")
_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----.+?-----END \1-----", re.DOTALL)

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey


@dataclass(frozen=True)
class SubjectSpec:
    """Names and usages of a certificate or CSR: the subject, the subject alternative names, EKUs and key usage."""

    subject: str = ""
    dns_names: tuple[str, ...] = ()
    emails: tuple[str, ...] = ()
    upns: tuple[str, ...] = ()
    ip_addresses: tuple[str, ...] = ()
    uris: tuple[str, ...] = ()
    ekus: tuple[str, ...] = ()
    key_usage: tuple[str, ...] = ()


@dataclass
class CertificateAuthority:
    """A CA key and certificate that signs certificates for the emulator."""

    key: PrivateKey
    certificate: x509.Certificate

    def sign(self, builder: x509.CertificateBuilder) -> x509.Certificate:
        """Sign a certificate builder that already has its subject, key and validity."""
        builder = builder.issuer_name(self.certificate.subject)
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(self.certificate.public_key()), critical=False
        )
        return builder.sign(self.key, hashes.SHA256())


def generate_key(kty: str = "RSA", key_size: int | None = None, curve: str | None = None) -> PrivateKey:
    """Generate a private key of a Key Vault key type (RSA, RSA-HSM, EC, EC-HSM)."""
    if kty.upper().startswith("EC"):
        curve_class = CURVES[curve or "P-256"]
        return ec.generate_private_key(curve_class())
    return rsa.generate_private_key(public_exponent=65537, key_size=key_size or 2048)


def add_months(moment: dt.datetime, months: int) -> dt.datetime:
    """Add calendar months, keeping the day of month where the target month has it."""
    month_index = moment.month - 1 + months
    year = moment.year + month_index // 12
    month = month_index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def parse_name(subject: str) -> x509.Name:
    """Parse an RFC 4514 distinguished name such as 'CN=www.contoso.com, O=Contoso'."""
    if not subject:
        return x509.Name([])
    # Key Vault policies often write "CN=a, O=b". RFC 4514 has no space after the comma, so drop the spaces
    # that follow an unescaped comma before parsing.
    return x509.Name.from_rfc4514_string(re.sub(r"(?<!\\),\s+", ",", subject.strip()))


def build_csr(key: PrivateKey, spec: SubjectSpec) -> x509.CertificateSigningRequest:
    """Build a CSR signed by key that requests the subject, SANs and usages of spec."""
    builder = x509.CertificateSigningRequestBuilder().subject_name(parse_name(spec.subject))
    for extension, critical in _extensions(spec):
        builder = builder.add_extension(extension, critical=critical)
    return builder.sign(key, hashes.SHA256())


def build_self_signed(
    key: PrivateKey, spec: SubjectSpec, not_before: dt.datetime, not_after: dt.datetime
) -> x509.Certificate:
    """Build a self-signed certificate for key."""
    name = parse_name(spec.subject)
    builder = _leaf_builder(name, key.public_key(), spec, not_before, not_after).issuer_name(name)
    return builder.sign(key, hashes.SHA256())


def sign_csr(
    ca: CertificateAuthority, csr: x509.CertificateSigningRequest, not_before: dt.datetime, not_after: dt.datetime
) -> x509.Certificate:
    """Issue a certificate for the CSR's key, subject and requested extensions, signed by ca."""
    builder = (
        x509.CertificateBuilder()
        .subject_name(csr.subject)
        .public_key(csr.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(csr.public_key()), critical=False)
    )
    for extension in csr.extensions:
        if isinstance(extension.value, (x509.SubjectAlternativeName, x509.KeyUsage, x509.ExtendedKeyUsage)):
            builder = builder.add_extension(extension.value, critical=extension.critical)
    return ca.sign(builder)


def sign_for_key(
    ca: CertificateAuthority, public_key: PublicKey, spec: SubjectSpec, not_before: dt.datetime, not_after: dt.datetime
) -> x509.Certificate:
    """Issue a certificate for public_key with the names of spec, signed by ca."""
    return ca.sign(_leaf_builder(parse_name(spec.subject), public_key, spec, not_before, not_after))


def create_ca(common_name: str, not_before: dt.datetime, not_after: dt.datetime) -> CertificateAuthority:
    """Create a CA with an EC P-256 key, which is fast to generate."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return CertificateAuthority(key=key, certificate=certificate)


def public_key_der(key: PublicKey) -> bytes:
    """Return the SubjectPublicKeyInfo DER of a public key, the form compared when merging."""
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def x5t(der: bytes) -> str:
    """Return the base64url SHA-1 thumbprint without padding, as Key Vault sends it in 'x5t'."""
    return base64.urlsafe_b64encode(hashlib.sha1(der).digest()).decode().rstrip("=")


def key_properties(key: PublicKey | PrivateKey) -> dict:
    """Return the policy 'key_props' that describe a key."""
    public = key.public_key() if hasattr(key, "private_bytes") else key
    if isinstance(public, rsa.RSAPublicKey):
        return {"kty": "RSA", "key_size": public.key_size}
    return {"kty": "EC", "crv": CURVE_NAMES.get(public.curve.name, public.curve.name), "key_size": public.key_size}


def subject_spec_of(certificate: x509.Certificate) -> SubjectSpec:
    """Read the subject, SANs and usages of a certificate."""
    dns_names: list[str] = []
    emails: list[str] = []
    upns: list[str] = []
    ips: list[str] = []
    uris: list[str] = []
    try:
        sans = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        sans = None
    if sans is not None:
        dns_names = sans.get_values_for_type(x509.DNSName)
        emails = sans.get_values_for_type(x509.RFC822Name)
        ips = [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)]
        uris = sans.get_values_for_type(x509.UniformResourceIdentifier)
        upns = [
            other.value[4:].decode("utf-8", "replace")
            for other in sans.get_values_for_type(x509.OtherName)
            if other.type_id == _UPN_OID
        ]
    return SubjectSpec(
        subject=certificate.subject.rfc4514_string(),
        dns_names=tuple(dns_names),
        emails=tuple(emails),
        upns=tuple(upns),
        ip_addresses=tuple(ips),
        uris=tuple(uris),
        ekus=_ekus_of(certificate),
        key_usage=_key_usage_of(certificate),
    )


def load_certificate_and_key(data: bytes, password: str | None) -> tuple[x509.Certificate, PrivateKey, list, bool]:
    """Load an import payload: PEM with a private key, or PKCS#12.

    Returns the leaf certificate, its private key, the remaining chain and whether the input was PEM.
    Raises ValueError with a reason when the payload is neither or has no private key.
    """
    if data.lstrip().startswith(b"-----BEGIN"):
        certificates = x509.load_pem_x509_certificates(data)
        key = serialization.load_pem_private_key(_pem_key_block(data), password.encode() if password else None)
        leaf = _leaf_for_key(certificates, key)
        return leaf, key, [c for c in certificates if c is not leaf], True
    key, leaf, chain = pkcs12.load_key_and_certificates(data, password.encode() if password else None)
    if leaf is None or key is None:
        raise ValueError("the PKCS#12 file contains no certificate with its private key")
    return leaf, key, list(chain), False


def _pem_key_block(data: bytes) -> bytes:
    for match in _PEM_BLOCK.finditer(data):
        if b"PRIVATE KEY" in match.group(1):
            return match.group(0)
    raise ValueError("the PEM contains no private key")


def _leaf_for_key(certificates: list[x509.Certificate], key: PrivateKey) -> x509.Certificate:
    wanted = public_key_der(key.public_key())
    for certificate in certificates:
        if public_key_der(certificate.public_key()) == wanted:
            return certificate
    raise ValueError("no certificate in the PEM matches its private key")




def _leaf_builder(
    name: x509.Name, public_key: PublicKey, spec: SubjectSpec, not_before: dt.datetime, not_after: dt.datetime
) -> x509.CertificateBuilder:
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )
    for extension, critical in _extensions(spec):
        builder = builder.add_extension(extension, critical=critical)
    return builder


def _extensions(spec: SubjectSpec) -> list[tuple[x509.ExtensionType, bool]]:
    extensions: list[tuple[x509.ExtensionType, bool]] = []
    names: list[x509.GeneralName] = [x509.DNSName(name) for name in spec.dns_names]
    names += [x509.RFC822Name(email) for email in spec.emails]
    names += [x509.OtherName(_UPN_OID, _utf8_string_der(upn)) for upn in spec.upns]
    names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in spec.ip_addresses]
    names += [x509.UniformResourceIdentifier(uri) for uri in spec.uris]
    if names:
        extensions.append((x509.SubjectAlternativeName(names), False))
    if spec.key_usage:
        flags = {argument: False for argument in KEY_USAGE_FIELDS.values()}
        for usage in spec.key_usage:
            if usage in KEY_USAGE_FIELDS:
                flags[KEY_USAGE_FIELDS[usage]] = True
        if not flags["key_agreement"]:
            flags["encipher_only"] = flags["decipher_only"] = False
        extensions.append((x509.KeyUsage(**flags), True))
    if spec.ekus:
        extensions.append((x509.ExtendedKeyUsage([x509.ObjectIdentifier(oid) for oid in spec.ekus]), False))
    return extensions


def _utf8_string_der(value: str) -> bytes:
    # A UPN SAN is an otherName whose value is a DER UTF8String (tag 0x0c).
    encoded = value.encode("utf-8")
    if len(encoded) < 128:
        return bytes([0x0C, len(encoded)]) + encoded
    length = len(encoded).to_bytes((len(encoded).bit_length() + 7) // 8, "big")
    return bytes([0x0C, 0x80 | len(length)]) + length + encoded


def _ekus_of(certificate: x509.Certificate) -> tuple[str, ...]:
    try:
        usages = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return ()
    return tuple(oid.dotted_string for oid in usages)


def _key_usage_of(certificate: x509.Certificate) -> tuple[str, ...]:
    try:
        usage = certificate.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return ()
    found = []
    for name, argument in KEY_USAGE_FIELDS.items():
        if argument in ("encipher_only", "decipher_only") and not usage.key_agreement:
            continue
        if getattr(usage, argument):
            found.append(name)
    return tuple(found)

