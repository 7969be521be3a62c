"""Key Vault access: one client per vault, and read-only views of certificates, policies and operations.

Reading a certificate and creating its next version go through `CertificateClient.send_request`, the SDK's
pipeline with its challenge authentication and retries, and not through `get_certificate` and
`begin_create_certificate`, for two reasons:
- The policy goes back to Key Vault exactly as Key Vault returned it, fields this SDK version does not model
  included. A round trip through `CertificatePolicy` would drop them.
- `begin_create_certificate` starts a thread that polls the operation every 5 seconds until it finishes, and an
  integrated CA can take hours. Here the timer checks operations instead.
Everything else uses the SDK's typed methods.
"""

from __future__ import annotations

import base64
import binascii
import logging
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Iterator, Mapping

from azure.core.credentials import AccessToken, AccessTokenInfo, TokenCredential
from azure.core.exceptions import (
    HttpResponseError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.core.rest import HttpRequest
from azure.keyvault.certificates import CertificateClient, CertificateProperties
from cryptography import x509
from cryptography.x509.oid import NameOID

from shared.errors import CertRenewError
from shared.settings import Settings, VaultConfig

logger = logging.getLogger(__name__)

SELF_SIGNED = "self-signed"
INTEGRATED_CA = "integrated-ca"
OTHER_CA = "other-ca"

# Issuer providers that Key Vault talks to itself (Key Vault's integrated CAs).
INTEGRATED_PROVIDERS = ("digicert", "globalsign")


class KeyVaultError(CertRenewError):
    """Key Vault returned an error that retrying will not fix."""

    def __init__(self, message: str, status: int | None, code: str | None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class KeyVaultUnavailable(CertRenewError):
    """Key Vault throttled or failed after the SDK's retries: raise so the platform delivers again."""


class OperationInProgress(CertRenewError):
    """Create was rejected with 409 because a certificate operation is already in progress."""


@dataclass(frozen=True)
class LifetimeAction:
    """The policy's lifetime action: the action Key Vault takes by itself, and its trigger."""

    action_type: str
    lifetime_percentage: int | None
    days_before_expiry: int | None

    def trigger_time(self, not_before: datetime, expires_on: datetime) -> datetime:
        """Return when Key Vault fires this action for a version valid from not_before to expires_on."""
        if self.days_before_expiry is not None:
            return expires_on - timedelta(days=self.days_before_expiry)
        percentage = self.lifetime_percentage if self.lifetime_percentage is not None else 80
        return not_before + (expires_on - not_before) * (percentage / 100)


@dataclass(frozen=True)
class PolicyView:
    """A certificate policy as Key Vault returned it, with the fields the renewal needs."""

    raw: Mapping[str, Any]

    @property
    def issuer_name(self) -> str:
        """Issuer name: `Self`, `Unknown`, or the name of an issuer configured in the vault."""
        return str((self.raw.get("issuer") or {}).get("name") or "Unknown")

    @property
    def reuse_key(self) -> bool:
        """True when a new version keeps the key of the current one."""
        return bool((self.raw.get("key_props") or {}).get("reuse_key"))

    @property
    def lifetime_action(self) -> LifetimeAction | None:
        """The policy's one lifetime action, or None."""
        actions = self.raw.get("lifetime_actions") or []
        if not actions:
            return None
        trigger = actions[0].get("trigger") or {}
        action = actions[0].get("action") or {}
        return LifetimeAction(
            action_type=str(action.get("action_type") or ""),
            lifetime_percentage=trigger.get("lifetime_percentage"),
            days_before_expiry=trigger.get("days_before_expiry"),
        )

    @property
    def auto_renews(self) -> bool:
        """True when Key Vault renews the certificate by itself (lifetime action AutoRenew)."""
        action = self.lifetime_action
        return action is not None and action.action_type.lower() == "autorenew"

    def for_create(self) -> dict[str, Any]:
        """Return the policy for a create request: as stored, without the read-only `id` and timestamps."""
        policy = {key: value for key, value in self.raw.items() if key != "id"}
        attributes = policy.get("attributes")
        if isinstance(attributes, dict):
            policy["attributes"] = {key: attributes[key] for key in ("enabled",) if key in attributes}
        return policy


@dataclass(frozen=True)
class CertificateView:
    """The current version of a certificate, read from its CertificateBundle."""

    name: str
    certificate_id: str
    version: str
    enabled: bool
    not_before: datetime | None
    expires_on: datetime | None
    created_on: datetime | None
    thumbprint: str | None
    subject: str | None
    dns_names: tuple[str, ...]
    tags: Mapping[str, str]
    policy: PolicyView | None

    @classmethod
    def from_bundle(cls, name: str, bundle: Mapping[str, Any]) -> "CertificateView":
        """Read a CertificateBundle JSON object."""
        attributes = bundle.get("attributes") or {}
        certificate_id = str(bundle.get("id") or "")
        subject, dns_names = _read_names(bundle.get("cer"))
        policy = bundle.get("policy")
        return cls(
            name=name,
            certificate_id=certificate_id,
            version=certificate_id.rstrip("/").rsplit("/", 1)[-1],
            enabled=bool(attributes.get("enabled", True)),
            not_before=_from_unix(attributes.get("nbf")),
            expires_on=_from_unix(attributes.get("exp")),
            created_on=_from_unix(attributes.get("created")),
            thumbprint=_thumbprint_hex(bundle.get("x5t")),
            subject=subject,
            dns_names=dns_names,
            tags=dict(bundle.get("tags") or {}),
            policy=PolicyView(policy) if isinstance(policy, dict) else None,
        )

    @property
    def lifetime_days(self) -> float | None:
        """Validity period of this version in days, or None when Key Vault did not send both dates."""
        if self.not_before is None or self.expires_on is None:
            return None
        return (self.expires_on - self.not_before).total_seconds() / 86400


@dataclass(frozen=True)
class OperationView:
    """A certificate operation (`/certificates/{name}/pending`)."""

    status: str
    issuer_name: str | None
    csr: bytes | None
    cancellation_requested: bool
    error_code: str | None
    error_message: str | None
    request_id: str | None
    target: str | None = None
    status_details: str | None = None

    @property
    def in_progress(self) -> bool:
        """True while Key Vault or a person still has to act. Key Vault's casing varies, so compare lowered."""
        return self.status.lower() == "inprogress"

    @property
    def csr_pem(self) -> str | None:
        """The CSR as PEM text, or None when the operation has none."""
        if not self.csr:
            return None
        body = base64.encodebytes(self.csr).decode("ascii")
        return f"-----BEGIN CERTIFICATE REQUEST-----\n{body}-----END CERTIFICATE REQUEST-----\n"

    @classmethod
    def from_sdk(cls, operation: Any) -> "OperationView":
        """Read an SDK CertificateOperation."""
        error = getattr(operation, "error", None)
        return cls(
            status=str(operation.status or ""),
            issuer_name=operation.issuer_name,
            csr=bytes(operation.csr) if operation.csr else None,
            cancellation_requested=bool(operation.cancellation_requested),
            error_code=getattr(error, "code", None),
            error_message=getattr(error, "message", None),
            request_id=operation.request_id,
            target=operation.target,
            status_details=operation.status_details,
        )

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> "OperationView":
        """Read a CertificateOperation JSON object."""
        error = body.get("error") or {}
        csr = body.get("csr")
        return cls(
            status=str(body.get("status") or ""),
            issuer_name=(body.get("issuer") or {}).get("name"),
            csr=base64.b64decode(csr) if csr else None,
            cancellation_requested=bool(body.get("cancellation_requested")),
            error_code=error.get("code"),
            error_message=error.get("message"),
            request_id=body.get("request_id"),
            target=body.get("target"),
            status_details=body.get("status_details"),
        )


class StaticTokenCredential(TokenCredential):
    """A token credential for a Key Vault emulator on a loopback address, which accepts any bearer token.

    It is used only for vault URLs on loopback, so no token from it ever leaves the machine.
    """

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken("local-emulator-token", int(datetime.now(timezone.utc).timestamp()) + 3600)

    def get_token_info(self, *scopes: str, options: Any = None) -> AccessTokenInfo:
        return AccessTokenInfo("local-emulator-token", int(datetime.now(timezone.utc).timestamp()) + 3600)


@dataclass
class VaultClients:
    """One CertificateClient per configured vault, built on first use and kept for the process."""

    settings: Settings
    credential: TokenCredential | None = None
    client_options: Mapping[str, Any] = field(default_factory=dict)
    _clients: dict[str, CertificateClient] = field(default_factory=dict)
    _issuer_providers: dict[tuple[str, str], str] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def client(self, vault: VaultConfig) -> CertificateClient:
        """Return the CertificateClient of a configured vault."""
        with self._lock:
            client = self._clients.get(vault.name)
            if client is None:
                client = self._build(vault)
                self._clients[vault.name] = client
            return client

    def _build(self, vault: VaultConfig) -> CertificateClient:
        options: dict[str, Any] = dict(self.client_options)
        if vault.is_loopback:
            # A local emulator: its TLS certificate comes from its own CA, and its challenge names no real
            # Key Vault resource.
            options["verify_challenge_resource"] = False
            if self.settings.keyvault_ca_bundle:
                options["connection_verify"] = self.settings.keyvault_ca_bundle
            credential = StaticTokenCredential()
        else:
            credential = self.credential or self._default_credential()
        return CertificateClient(vault.url, credential, **options)

    def _default_credential(self) -> TokenCredential:
        # Imported here because azure.identity is slow to import and emulator runs never need it.
        from azure.identity import DefaultAzureCredential

        # In Azure this resolves to the app's managed identity (AZURE_CLIENT_ID names a user-assigned one).
        self.credential = DefaultAzureCredential()
        return self.credential

    def issuer_provider(self, vault: VaultConfig, issuer_name: str) -> str:
        """Return the provider of a configured issuer (for example DigiCert), cached for the process."""
        key = (vault.name.lower(), issuer_name.lower())
        provider = self._issuer_providers.get(key)
        if provider is None:
            issuer = call_keyvault(
                lambda: self.client(vault).get_issuer(issuer_name), f"issuer {issuer_name} in vault {vault.name}"
            )
            provider = str(issuer.provider or "")
            self._issuer_providers[key] = provider
        return provider

    def certificate_kind(self, vault: VaultConfig, policy: PolicyView | None) -> str:
        """Classify a certificate by its policy's issuer: self-signed, integrated CA or other CA."""
        issuer = policy.issuer_name if policy else "Unknown"
        if issuer.lower() == "self":
            return SELF_SIGNED
        if issuer.lower() == "unknown":
            return OTHER_CA
        provider = self.issuer_provider(vault, issuer)
        if provider.lower() in INTEGRATED_PROVIDERS:
            return INTEGRATED_CA
        # NOTE: Key Vault has other issuer providers (OneCertV2 for Microsoft's own CAs). Key Vault talks to
        # those too, so they renew like DigiCert and GlobalSign.
        return INTEGRATED_CA

    def get_certificate(self, vault: VaultConfig, name: str) -> CertificateView | None:
        """Read the current version of a certificate with its policy, or None when it does not exist."""
        response = self._send(vault, HttpRequest("GET", f"/certificates/{name}"), f"certificate {name}")
        if response.status_code == 404:
            return None
        return CertificateView.from_bundle(name, response.json())

    def get_certificate_version(self, vault: VaultConfig, name: str, version: str) -> CertificateView | None:
        """Read one version of a certificate (without the policy, which Key Vault returns only with the latest)."""
        response = self._send(vault, HttpRequest("GET", f"/certificates/{name}/{version}"), f"certificate {name}")
        if response.status_code == 404:
            return None
        return CertificateView.from_bundle(name, response.json())

    def create_version(
        self, vault: VaultConfig, name: str, policy: PolicyView, tags: Mapping[str, str], enabled: bool
    ) -> OperationView:
        """Start a new version of a certificate with its current policy, tags and enabled state.

        Raises OperationInProgress when Key Vault responds with 409 because an operation is already pending.
        """
        body = {"policy": policy.for_create(), "attributes": {"enabled": enabled}, "tags": dict(tags)}
        request = HttpRequest("POST", f"/certificates/{name}/create", json=body)
        response = self._send(vault, request, f"certificate {name}", allow=(409,))
        if response.status_code == 409:
            raise OperationInProgress(f"Certificate {name} in vault {vault.name} already has an operation.")
        return OperationView.from_json(response.json())

    def get_operation(self, vault: VaultConfig, name: str) -> OperationView | None:
        """Read the certificate's pending operation, or None when there is none."""
        client = self.client(vault)
        try:
            operation = call_keyvault(
                lambda: client.get_certificate_operation(name), f"operation of certificate {name}"
            )
        except KeyVaultError as exc:
            if exc.status == 404:
                return None
            raise
        return OperationView.from_sdk(operation)

    def get_policy(self, vault: VaultConfig, name: str) -> PolicyView | None:
        """Read a certificate's policy as Key Vault returned it, or None when the certificate does not exist."""
        response = self._send(vault, HttpRequest("GET", f"/certificates/{name}/policy"), f"policy of certificate {name}")
        if response.status_code == 404:
            return None
        return PolicyView(response.json())

    def list_certificates(self, vault: VaultConfig, include_pending: bool = False) -> Iterator[CertificateProperties]:
        """Yield the current version's properties of every certificate, one page of at most 25 at a time.

        With include_pending, certificates whose only version is still pending are listed too.
        """
        pages = (
            self.client(vault)
            .list_properties_of_certificates(max_page_size=25, include_pending=include_pending or None)
            .by_page()
        )
        while True:
            page = call_keyvault(lambda: next(pages, None), f"certificate list of vault {vault.name}")
            if page is None:
                return
            yield from page

    def _send(self, vault: VaultConfig, request: HttpRequest, description: str, allow: tuple[int, ...] = ()) -> Any:
        client = self.client(vault)
        response = call_keyvault(lambda: client.send_request(request), f"{description} in vault {vault.name}")
        if response.status_code < 400 or response.status_code == 404 or response.status_code in allow:
            return response
        try:
            response.raise_for_status()
        except HttpResponseError as exc:
            raise classify_error(exc, f"{description} in vault {vault.name}") from exc
        return response


def call_keyvault(call: Any, description: str) -> Any:
    """Run one Key Vault call and turn its failures into KeyVaultUnavailable or KeyVaultError."""
    try:
        return call()
    except (ServiceRequestError, ServiceResponseError) as exc:
        if "CERTIFICATE_VERIFY_FAILED" in str(exc):
            raise KeyVaultUnavailable(
                f"The TLS certificate of Key Vault failed verification for {description}: {exc}. For a local emulator, "
                "set CERTRENEW_KEYVAULT_CA_BUNDLE to the CA bundle path it printed."
            ) from exc
        raise KeyVaultUnavailable(f"No response from Key Vault for {description}: {exc}") from exc
    except HttpResponseError as exc:
        raise classify_error(exc, description) from exc


def classify_error(exc: HttpResponseError, description: str) -> CertRenewError:
    """Map an HTTP error to KeyVaultUnavailable (worth a redelivery) or KeyVaultError (not)."""
    status = exc.status_code
    code = getattr(exc.error, "code", None) if exc.error else None
    message = getattr(exc.error, "message", None) if exc.error else None
    if status is None or status in (408, 429) or status >= 500:
        return KeyVaultUnavailable(f"Key Vault responded with {status} for {description} after retries: {message or exc.reason}")
    if isinstance(exc, ResourceNotFoundError) or status == 404:
        return KeyVaultError(f"{description} was not found.", status, code or "NotFound")
    if status in (401, 403):
        return KeyVaultError(
            f"Access to {description} was denied ({code or status}): {message or exc.reason}. Give the app's managed "
            "identity the Key Vault Certificates Officer role on the vault (or the certificate permissions of "
            "its access policy).",
            status,
            code,
        )
    return KeyVaultError(f"Key Vault rejected the request for {description} ({code or status}): {message}", status, code)


def _from_unix(value: Any) -> datetime | None:
    if value is None:
        return None
    return datetime.fromtimestamp(int(value), tz=timezone.utc)


def _thumbprint_hex(x5t: Any) -> str | None:
    """Convert Key Vault's base64url SHA-1 thumbprint to the upper-case hex that the portal shows."""
    if not x5t:
        return None
    text = str(x5t)
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).hex().upper()
    except (binascii.Error, ValueError):
        return None


def _read_names(cer: Any) -> tuple[str | None, tuple[str, ...]]:
    """Read the subject and DNS names from the certificate's DER (`cer`, base64)."""
    if not cer:
        return None, ()
    try:
        certificate = x509.load_der_x509_certificate(base64.b64decode(cer))
    except (ValueError, binascii.Error):
        logger.warning("The certificate bundle's cer field is not a DER certificate; subject left empty.")
        return None, ()
    try:
        sans = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        dns_names = tuple(sans.get_values_for_type(x509.DNSName))
    except x509.ExtensionNotFound:
        dns_names = ()
    common_names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    subject = certificate.subject.rfc4514_string() if certificate.subject else None
    if not subject and common_names:
        subject = str(common_names[0].value)
    return subject, dns_names
