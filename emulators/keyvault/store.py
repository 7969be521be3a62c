"""In-memory state of one emulated vault: certificates, their versions and operations, issuers and contacts.

Every method expects the caller to hold the emulator's lock. Methods return JSON-ready dicts in the
wire shape of the Key Vault REST API and raise KeyVaultError for error responses.
"""

from __future__ import annotations

import base64
import bisect
import copy
import datetime as dt
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from emulators.keyvault import pki
from emulators.keyvault import policy as policies
from emulators.keyvault.errors import KeyVaultError, bad_parameter, certificate_not_found

if TYPE_CHECKING:
    from emulators.keyvault.emulator import KeyVaultEmulator

RECOVERY_LEVEL = "Recoverable+Purgeable"
RECOVERABLE_DAYS = 90
DAY = 86400
MAX_PAGE_SIZE = 25

IN_PROGRESS = "inProgress"
COMPLETED = "completed"
FAILED = "failed"
CANCELLED = "cancelled"

# Error codes and messages as Key Vault documents them in "Monitor and manage certificate creation".
PENDING_CONFLICT_CODE = "Forbidden"
PENDING_CONFLICT_MESSAGE = (
    "A new key vault certificate can not be created or imported while a pending key vault certificate's "
    "status is inProgress."
)
ISSUER_ERROR_CODE = "Certificate issuer error"
# NOTE: inferred. The message is what CAs return for a reused CSR. The documented code for issuer-side
# failures is "Certificate issuer error".
REUSED_CSR_MESSAGE = "The CSR used to get your certificate has already been used."


@dataclass(eq=False)
class Version:
    """One version of a certificate. A pending version has a key but no certificate until it completes."""

    name: str
    version: str
    created: int
    key: pki.PrivateKey | None = None
    enabled: bool = False
    requested_enabled: bool = True
    tags: dict = field(default_factory=dict)
    updated: int = 0
    certificate: x509.Certificate | None = None
    der: bytes = b""
    cer: str = ""
    thumbprint: str = ""
    nbf: int | None = None
    exp: int | None = None
    content_type: str = policies.PKCS12
    near_expiry_sent: bool = False
    expired_sent: bool = False
    auto_renew_started: bool = False

    def complete(self, certificate: x509.Certificate, now: int) -> None:
        """Attach the issued certificate and cache its encodings, so requests never re-encode it."""
        self.certificate = certificate
        self.der = certificate.public_bytes(serialization.Encoding.DER)
        self.cer = base64.b64encode(self.der).decode()
        self.thumbprint = pki.x5t(self.der)
        self.nbf = int(certificate.not_valid_before_utc.timestamp())
        self.exp = int(certificate.not_valid_after_utc.timestamp())
        self.enabled = self.requested_enabled
        self.updated = now

    @property
    def is_complete(self) -> bool:
        """True once the version has its certificate."""
        return self.certificate is not None


@dataclass(eq=False)
class Operation:
    """The certificate operation (the 'pending' object) of a certificate."""

    issuer_name: str
    kind: str  # policies.SELF, policies.UNKNOWN or "integrated"
    version: Version
    csr_der: bytes
    requested_at: int
    certificate_type: str | None = None
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    status: str = IN_PROGRESS
    status_details: str = ""
    error: dict | None = None
    cancellation_requested: bool = False
    checks: int = 0


@dataclass(eq=False)
class Certificate:
    """A certificate name with its versions, policy and latest operation."""

    name: str
    policy: dict
    versions: list[Version] = field(default_factory=list)
    by_version: dict[str, Version] = field(default_factory=dict)
    operation: Operation | None = None
    issued_keys: set[bytes] = field(default_factory=set)
    deleted_date: int | None = None

    @property
    def latest(self) -> Version:
        """The newest version, pending or not."""
        return self.versions[-1]

    def latest_complete(self) -> Version | None:
        """Return the newest version that has its certificate, or None."""
        for version in reversed(self.versions):
            if version.is_complete:
                return version
        return None

    def add(self, version: Version) -> None:
        """Append a new version."""
        self.versions.append(version)
        self.by_version[version.version] = version


@dataclass(eq=False)
class Vault:
    """One emulated vault and its objects."""

    name: str
    emulator: "KeyVaultEmulator"
    base_url: str = ""
    certificates: dict[str, Certificate] = field(default_factory=dict)
    sorted_names: list[str] = field(default_factory=list)
    deleted: dict[str, Certificate] = field(default_factory=dict)
    issuers: dict[str, dict] = field(default_factory=dict)
    contacts: list | None = None
    failures: dict[str, tuple[str, str]] = field(default_factory=dict)
    # Lower-case names of certificates whose self-signed operation has not completed yet.
    self_pending: set[str] = field(default_factory=set)

    # ---- lookups -------------------------------------------------------------------------------------------

    def certificate(self, name: str) -> Certificate:
        """Return the live certificate of that name (names are case-insensitive) or raise 404."""
        found = self.certificates.get(name.lower())
        if found is None:
            raise certificate_not_found(name)
        return found

    def check_name_free(self, name: str) -> None:
        """Raise 409 when a soft-deleted certificate has the name."""
        if name.lower() in self.deleted:
            raise KeyVaultError(
                409,
                "ObjectIsDeletedButRecoverable",
                f"Certificate {name} is currently in a deleted but recoverable state, and its name cannot be "
                "reused; in this state, the certificate can only be recovered or purged.",
            )

    def put_certificate(self, certificate: Certificate) -> None:
        """Store a new certificate and keep the name index sorted for paging."""
        key = certificate.name.lower()
        self.certificates[key] = certificate
        bisect.insort(self.sorted_names, key)

    def drop_certificate(self, key: str) -> Certificate:
        """Remove a live certificate from the store and the name index."""
        certificate = self.certificates.pop(key)
        index = bisect.bisect_left(self.sorted_names, key)
        del self.sorted_names[index]
        return certificate

    # ---- URLs ----------------------------------------------------------------------------------------------

    def object_url(self, kind: str, name: str, version: str = "") -> str:
        """Return the URL of a certificate, key or secret (version) in this vault."""
        return f"{self.base_url}/{kind}/{name}" + (f"/{version}" if version else "")

    # ---- wire shapes ---------------------------------------------------------------------------------------

    def attributes(self, version: Version) -> dict:
        """Return the 'attributes' object of a version."""
        attributes: dict = {"enabled": version.enabled}
        if version.nbf is not None:
            attributes["nbf"] = version.nbf
            attributes["exp"] = version.exp
        attributes.update(
            created=version.created,
            updated=version.updated,
            recoveryLevel=RECOVERY_LEVEL,
            recoverableDays=RECOVERABLE_DAYS,
        )
        return attributes

    def bundle(self, certificate: Certificate, version: Version, with_policy: bool) -> dict:
        """Return a CertificateBundle; a pending version has no 'cer' and 'x5t'."""
        body: dict = {
            "id": self.object_url("certificates", certificate.name, version.version),
            "kid": self.object_url("keys", certificate.name, version.version),
            "sid": self.object_url("secrets", certificate.name, version.version),
        }
        if version.is_complete:
            body["x5t"] = version.thumbprint
            body["cer"] = version.cer
        body["attributes"] = self.attributes(version)
        body["tags"] = dict(version.tags)
        body["contentType"] = version.content_type
        if with_policy:
            body["policy"] = self.policy_body(certificate)
        return body

    def item(self, certificate: Certificate, version: Version, with_name_only: bool) -> dict:
        """Return a CertificateItem of a list page."""
        url = self.object_url("certificates", certificate.name, "" if with_name_only else version.version)
        body: dict = {"id": url, "attributes": self.attributes(version), "tags": dict(version.tags)}
        if version.is_complete:
            body["x5t"] = version.thumbprint
        return body

    def policy_body(self, certificate: Certificate) -> dict:
        """Return the certificate's policy with its id."""
        body = copy.deepcopy(certificate.policy)
        body["id"] = f"{self.base_url}/certificates/{certificate.name}/policy"
        return body

    def operation_body(self, certificate: Certificate) -> dict:
        """Return the CertificateOperation of the certificate."""
        operation = certificate.operation
        assert operation is not None
        issuer: dict = {"name": operation.issuer_name}
        if operation.certificate_type:
            issuer["cty"] = operation.certificate_type
        body: dict = {
            "id": f"{self.base_url}/certificates/{certificate.name}/pending",
            "issuer": issuer,
            "csr": base64.b64encode(operation.csr_der).decode(),
            "cancellation_requested": operation.cancellation_requested,
            "status": operation.status,
            "status_details": operation.status_details,
            "request_id": operation.request_id,
        }
        if operation.error:
            body["error"] = operation.error
        if operation.status == COMPLETED:
            body["target"] = f"{self.base_url}/certificates/{certificate.name}"
        return body

    def deleted_bundle(self, certificate: Certificate) -> dict:
        """Return a DeletedCertificateBundle of a soft-deleted certificate."""
        body = self.bundle(certificate, certificate.latest, with_policy=True)
        body["recoveryId"] = f"{self.base_url}/deletedcertificates/{certificate.name}"
        body["deletedDate"] = certificate.deleted_date
        body["scheduledPurgeDate"] = certificate.deleted_date + RECOVERABLE_DAYS * DAY
        return body

    # ---- paging --------------------------------------------------------------------------------------------

    def page_size(self, query: dict) -> int:
        """Return the page size from 'maxresults', which Key Vault caps at 25."""
        raw = query.get("maxresults")
        if raw is None:
            return MAX_PAGE_SIZE
        try:
            size = int(raw)
        except ValueError:
            raise bad_parameter(f"maxresults must be a whole number from 1 to 25, not {raw!r}.") from None
        if not 1 <= size <= MAX_PAGE_SIZE:
            raise bad_parameter(f"maxresults must be a whole number from 1 to 25, not {size}.")
        return size

    def next_link(self, path: str, token: str, size: int, extra_query: str = "") -> str:
        """Return an absolute nextLink URL for the page after token, keeping the request's filters (extra_query)."""
        api_version = self.emulator.api_version_hint
        return f"{self.base_url}{path}?api-version={api_version}&$skiptoken={token}&maxresults={size}{extra_query}"


def new_version(certificate: Certificate, now: int, tags: dict | None, enabled: bool | None) -> Version:
    """Return a new, still pending version of a certificate (not yet added to it)."""
    return Version(
        name=certificate.name,
        version=uuid.uuid4().hex,
        created=now,
        updated=now,
        tags=dict(tags or {}),
        requested_enabled=True if enabled is None else bool(enabled),
    )


def epoch(moment: dt.datetime) -> int:
    """Return Unix seconds of an aware datetime."""
    return int(moment.timestamp())
