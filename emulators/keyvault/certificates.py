"""Certificate lifecycle of an emulated vault: create, import, issue, merge, renew, update and delete.

Every function expects the caller to hold the emulator's lock.
"""

from __future__ import annotations

import base64
import binascii
import bisect

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from emulators.keyvault import pki
from emulators.keyvault import policy as policies
from emulators.keyvault.errors import KeyVaultError, bad_parameter, certificate_not_found
from emulators.keyvault.store import (
    CANCELLED,
    COMPLETED,
    DAY,
    FAILED,
    IN_PROGRESS,
    ISSUER_ERROR_CODE,
    PENDING_CONFLICT_CODE,
    PENDING_CONFLICT_MESSAGE,
    RECOVERABLE_DAYS,
    REUSED_CSR_MESSAGE,
    Certificate,
    Operation,
    Vault,
    Version,
    new_version,
)

INTEGRATED = "integrated"

# Status details as Key Vault words them for a fresh operation.
DETAILS_ISSUER = (
    "Pending certificate created. Certificate request is in progress. This may take some time based on the "
    "issuer provider. Please check again later."
)
DETAILS_MANUAL = "Pending certificate created. Please Perform Merge to complete the request."


# ---- create and issue -------------------------------------------------------------------------------------


def create(vault: Vault, name: str, body: dict) -> dict:
    """Start a new version from a create request and return its CertificateOperation (202)."""
    vault.check_name_free(name)
    existing = vault.certificates.get(name.lower())
    if existing is not None:
        settle(vault, existing)
        _check_no_operation_in_progress(existing)
    if existing is None and not body.get("policy"):
        raise bad_parameter(f"A policy is required to create the new certificate {name}.")

    now = vault.emulator.epoch()
    if body.get("policy"):
        policy = policies.normalize_policy(body["policy"], now, existing.policy if existing else None)
    else:
        policy = existing.policy
    kind = issuer_kind(vault, policy)
    attributes = body.get("attributes") or {}

    certificate = existing or Certificate(name=name, policy=policy)
    certificate.policy = policy
    if existing is None:
        vault.put_certificate(certificate)
    start_version(vault, certificate, kind, body.get("tags"), attributes.get("enabled"))
    return vault.operation_body(certificate)


def start_version(vault: Vault, certificate: Certificate, kind: str, tags: dict | None, enabled: bool | None) -> None:
    """Add a pending version with its key and CSR, and the operation that will complete it."""
    now = vault.emulator.epoch()
    policy = certificate.policy
    version = new_version(certificate, now, tags, enabled)
    version.key = _key_for_new_version(certificate, policy)
    version.content_type = policy["secret_props"]["contentType"]
    csr = pki.build_csr(version.key, policies.subject_spec(policy))
    certificate.add(version)

    operation = Operation(
        issuer_name=policies.issuer_name(policy),
        certificate_type=policy["issuer"].get("cty"),
        kind=kind,
        version=version,
        csr_der=csr.public_bytes(serialization.Encoding.DER),
        requested_at=now,
        status_details=DETAILS_MANUAL if kind == policies.UNKNOWN else DETAILS_ISSUER,
    )
    certificate.operation = operation
    if kind == policies.SELF:
        vault.self_pending.add(certificate.name.lower())


def issuer_kind(vault: Vault, policy: dict) -> str:
    """Return how the policy's issuer issues: self-signed, manual merge (Unknown) or an integrated CA."""
    name = policies.issuer_name(policy)
    if name.lower() == policies.SELF:
        return policies.SELF
    if name.lower() == policies.UNKNOWN:
        return policies.UNKNOWN
    issuer = vault.issuers.get(name.lower())
    if issuer is None:
        raise bad_parameter(
            f"Issuer {name} is not configured in this vault. Create it with PUT /certificates/issuers/{name}, "
            "or use issuer Self or Unknown."
        )
    return INTEGRATED


def settle(vault: Vault, certificate: Certificate) -> None:
    """Complete a self-signed operation that is still in progress.

    Key Vault issues self-signed certificates within seconds. The emulator does it at the first request
    that looks at the certificate after the create, so the 202 response still has status inProgress.
    """
    operation = certificate.operation
    if operation is None or operation.status != IN_PROGRESS or operation.kind != policies.SELF:
        return
    now_moment = vault.emulator.now()
    spec = policies.subject_spec(certificate.policy)
    not_after = pki.add_months(now_moment, certificate.policy["x509_props"]["validity_months"])
    issued = pki.build_self_signed(operation.version.key, spec, now_moment, not_after)
    finish_version(vault, certificate, issued)


def settle_all(vault: Vault) -> None:
    """Complete every self-signed operation of the vault that is still in progress."""
    for key in list(vault.self_pending):
        certificate = vault.certificates.get(key)
        if certificate is not None:
            settle(vault, certificate)
    vault.self_pending.clear()


def check_integrated(vault: Vault, certificate: Certificate, counts_as_check: bool) -> None:
    """Advance an integrated-CA operation: it completes at the N-th status check or after enough clock time."""
    operation = certificate.operation
    if operation is None or operation.kind != INTEGRATED or operation.status != IN_PROGRESS:
        return
    if counts_as_check:
        operation.checks += 1
    elapsed = vault.emulator.epoch() - operation.requested_at
    if operation.checks >= vault.emulator.integrated_ca_checks or elapsed >= vault.emulator.integrated_ca_seconds:
        issue_from_integrated_ca(vault, certificate)


def issue_from_integrated_ca(vault: Vault, certificate: Certificate) -> None:
    """Finish an integrated-CA operation: a certificate signed by the test CA, or a failure."""
    operation = certificate.operation
    assert operation is not None
    failure = vault.failures.pop(certificate.name.lower(), None)
    public_der = pki.public_key_der(operation.version.key.public_key())
    if failure is None and public_der in certificate.issued_keys:
        failure = (ISSUER_ERROR_CODE, REUSED_CSR_MESSAGE)
    if failure is not None:
        operation.status = FAILED
        operation.status_details = ""
        operation.error = {"code": failure[0], "message": failure[1]}
        return

    now_moment = vault.emulator.now()
    not_after = pki.add_months(now_moment, certificate.policy["x509_props"]["validity_months"])
    spec = policies.subject_spec(certificate.policy)
    issued = pki.sign_for_key(vault.emulator.test_ca, operation.version.key.public_key(), spec, now_moment, not_after)
    certificate.issued_keys.add(public_der)
    finish_version(vault, certificate, issued)


def finish_version(vault: Vault, certificate: Certificate, issued: x509.Certificate) -> None:
    """Attach the issued certificate to the pending version and mark the operation completed."""
    operation = certificate.operation
    assert operation is not None
    operation.version.complete(issued, vault.emulator.epoch())
    operation.status = COMPLETED
    operation.status_details = ""
    operation.error = None
    vault.self_pending.discard(certificate.name.lower())
    vault.emulator.version_created(vault, certificate, operation.version)


# ---- import and merge -------------------------------------------------------------------------------------


def import_certificate(vault: Vault, name: str, body: dict) -> dict:
    """Import a PFX or PEM with its private key as a new, completed version (200)."""
    vault.check_name_free(name)
    existing = vault.certificates.get(name.lower())
    if existing is not None:
        settle(vault, existing)
        _check_no_operation_in_progress(existing)

    raw = _decode_base64(body.get("value"), "value")
    try:
        leaf, key, _chain, is_pem = pki.load_certificate_and_key(raw, body.get("pwd"))
    except ValueError as exc:
        raise bad_parameter(
            f"The certificate to import is not a PKCS#12 (PFX) file or a PEM file with its private key, or the "
            f"password is wrong: {exc}."
        ) from exc

    now = vault.emulator.epoch()
    content_type = policies.PEM if is_pem else policies.PKCS12
    if body.get("policy"):
        requested = {**body["policy"]}
        requested.setdefault("key_props", pki.key_properties(leaf.public_key()))
        requested.setdefault("secret_props", {"contentType": content_type})
        requested.setdefault("x509_props", policies.generated_import_policy(leaf, content_type, now)["x509_props"])
        policy = policies.normalize_policy(requested, now, existing.policy if existing else None)
    elif existing is not None:
        policy = existing.policy
    else:
        policy = policies.generated_import_policy(leaf, content_type, now)

    certificate = existing or Certificate(name=name, policy=policy)
    certificate.policy = policy
    if existing is None:
        vault.put_certificate(certificate)
    version = new_version(certificate, now, body.get("tags"), (body.get("attributes") or {}).get("enabled"))
    version.key = key
    version.content_type = content_type
    version.complete(leaf, now)
    certificate.add(version)
    vault.emulator.version_created(vault, certificate, version)
    return vault.bundle(certificate, version, with_policy=True)


def merge(vault: Vault, name: str, body: dict) -> dict:
    """Merge a signed certificate (chain) with the pending key and return the new version (201)."""
    certificate = vault.certificate(name)
    settle(vault, certificate)
    operation = certificate.operation
    mergeable = operation is not None and (
        (operation.kind == policies.UNKNOWN and operation.status == IN_PROGRESS)
        or (operation.kind == INTEGRATED and operation.status in (FAILED, CANCELLED))
    )
    if operation is not None and operation.kind == INTEGRATED and operation.status == IN_PROGRESS:
        raise KeyVaultError(
            403,
            "Forbidden",
            f"Merge is forbidden on pending object created with issuer : {operation.issuer_name} while it is in progess.",
        )
    if not mergeable:
        raise KeyVaultError(404, "PendingCertificateNotFound", f"Pending certificate not found: {name}")

    chain = body.get("x5c")
    if not isinstance(chain, list) or not chain:
        raise bad_parameter("x5c must be a non-empty array of base64-encoded DER certificates.")
    certificates = [_load_der_certificate(item) for item in chain]
    wanted = pki.public_key_der(operation.version.key.public_key())
    leaf = next((c for c in certificates if pki.public_key_der(c.public_key()) == wanted), None)
    if leaf is None:
        raise bad_parameter("Public key from x509 certificate and key of this instance doesn't match")

    version = operation.version
    if body.get("tags") is not None:
        version.tags = dict(body["tags"])
    enabled = (body.get("attributes") or {}).get("enabled")
    if enabled is not None:
        version.requested_enabled = bool(enabled)
    finish_version(vault, certificate, leaf)
    return vault.bundle(certificate, version, with_policy=True)


# ---- operation --------------------------------------------------------------------------------------------


def get_operation(vault: Vault, name: str) -> dict:
    """Return the certificate operation, advancing one that depends on status checks."""
    certificate = vault.certificate(name)
    settle(vault, certificate)
    check_integrated(vault, certificate, counts_as_check=True)
    if certificate.operation is None:
        raise KeyVaultError(404, "PendingCertificateNotFound", f"Pending certificate not found: {name}")
    return vault.operation_body(certificate)


def cancel_operation(vault: Vault, name: str, body: dict) -> dict:
    """Request cancellation of an operation in progress."""
    certificate = vault.certificate(name)
    settle(vault, certificate)
    if certificate.operation is None:
        raise KeyVaultError(404, "PendingCertificateNotFound", f"Pending certificate not found: {name}")
    if not isinstance(body.get("cancellation_requested"), bool):
        raise bad_parameter("cancellation_requested must be true or false.")
    operation = certificate.operation
    if operation.status != IN_PROGRESS:
        raise KeyVaultError(403, "Forbidden", "Pending status must be in progress to allow update.")
    if body["cancellation_requested"]:
        operation.cancellation_requested = True
        operation.status = CANCELLED
        operation.status_details = "Certificate request was cancelled by the user."
    return vault.operation_body(certificate)


def delete_operation(vault: Vault, name: str) -> dict:
    """Delete the operation; its pending version stays, without a certificate."""
    certificate = vault.certificate(name)
    settle(vault, certificate)
    if certificate.operation is None:
        raise KeyVaultError(404, "PendingCertificateNotFound", f"Pending certificate not found: {name}")
    body = vault.operation_body(certificate)
    certificate.operation = None
    return body


# ---- renewal ----------------------------------------------------------------------------------------------


def auto_renew(vault: Vault, certificate: Certificate, version: Version) -> None:
    """Start the renewal that a policy's AutoRenew action requests, with the current version's tags."""
    version.auto_renew_started = True
    kind = issuer_kind(vault, certificate.policy)
    start_version(vault, certificate, kind, version.tags, True)
    if kind == policies.SELF:
        settle(vault, certificate)


def renewal_due_at(vault: Vault, certificate: Certificate) -> tuple[int, Version] | None:
    """Return when AutoRenew fires for the certificate's current version, or None when it never does."""
    action = policies.lifetime_action(certificate.policy)
    if action is None or action[0] != "AutoRenew":
        return None
    issuer = policies.issuer_name(certificate.policy).lower()
    if issuer == policies.UNKNOWN or (issuer != policies.SELF and issuer not in vault.issuers):
        return None
    operation = certificate.operation
    if operation is not None and operation.status == IN_PROGRESS:
        return None
    version = certificate.latest_complete()
    if version is None or version.auto_renew_started or version is not certificate.latest:
        return None
    trigger = action[1]
    if trigger.get("lifetime_percentage") is not None:
        due = version.nbf + (version.exp - version.nbf) * trigger["lifetime_percentage"] // 100
    else:
        due = version.exp - trigger["days_before_expiry"] * DAY
    return due, version


# ---- reads and updates ------------------------------------------------------------------------------------


def get(vault: Vault, name: str, version_id: str) -> dict:
    """Return the latest version (with the policy) or one version (without it)."""
    certificate = vault.certificate(name)
    settle(vault, certificate)
    check_integrated(vault, certificate, counts_as_check=False)
    if not version_id:
        return vault.bundle(certificate, certificate.latest, with_policy=True)
    version = certificate.by_version.get(version_id.lower())
    if version is None:
        raise certificate_not_found(name, version_id)
    return vault.bundle(certificate, version, with_policy=False)


def update(vault: Vault, name: str, version_id: str, body: dict) -> dict:
    """Update the enabled flag, tags and optionally the policy of a version (empty version = latest)."""
    certificate = vault.certificate(name)
    settle(vault, certificate)
    version = certificate.latest if not version_id else certificate.by_version.get(version_id.lower())
    if version is None:
        raise certificate_not_found(name, version_id)
    attributes = body.get("attributes") or {}
    if "enabled" in attributes and attributes["enabled"] is not None:
        if not version.is_complete and attributes["enabled"]:
            raise bad_parameter(f"Version {version.version} of certificate {name} is pending and cannot be enabled.")
        version.enabled = bool(attributes["enabled"])
    if body.get("tags") is not None:
        version.tags = dict(body["tags"])
    now = vault.emulator.epoch()
    if body.get("policy"):
        certificate.policy = policies.merge_policy(certificate.policy, body["policy"], now)
    version.updated = now
    return vault.bundle(certificate, version, with_policy=not version_id)


def list_certificates(vault: Vault, query: dict) -> dict:
    """Return one page of certificates, sorted by name; pending-only ones only with includePending=true."""
    settle_all(vault)
    size = vault.page_size(query)
    include_pending = str(query.get("includePending", "")).lower() == "true"
    names = vault.sorted_names
    start = _bisect_after(names, query.get("$skiptoken"))
    items: list[dict] = []
    index = start
    while index < len(names) and len(items) < size:
        certificate = vault.certificates[names[index]]
        index += 1
        version = certificate.latest if include_pending else certificate.latest_complete()
        if version is not None:
            items.append(vault.item(certificate, version, with_name_only=True))
    body: dict = {"value": items, "nextLink": None}
    if index < len(names):
        extra_query = "&includePending=true" if include_pending else ""
        body["nextLink"] = vault.next_link("/certificates", names[index - 1], size, extra_query)
    return body


def list_versions(vault: Vault, name: str, query: dict) -> dict:
    """Return one page of a certificate's versions, oldest first."""
    certificate = vault.certificate(name)
    settle(vault, certificate)
    size = vault.page_size(query)
    start = int(query.get("$skiptoken") or 0)
    page = certificate.versions[start : start + size]
    body: dict = {"value": [vault.item(certificate, v, with_name_only=False) for v in page], "nextLink": None}
    if start + size < len(certificate.versions):
        body["nextLink"] = vault.next_link(f"/certificates/{certificate.name}/versions", str(start + size), size)
    return body


def get_policy(vault: Vault, name: str) -> dict:
    """Return the certificate's policy."""
    return vault.policy_body(vault.certificate(name))


def update_policy(vault: Vault, name: str, body: dict) -> dict:
    """Apply a policy PATCH and return the new policy."""
    certificate = vault.certificate(name)
    certificate.policy = policies.merge_policy(certificate.policy, body, vault.emulator.epoch())
    return vault.policy_body(certificate)


# ---- delete and recover -----------------------------------------------------------------------------------


def delete(vault: Vault, name: str) -> dict:
    """Soft-delete a certificate with all its versions and return the DeletedCertificateBundle."""
    certificate = vault.certificate(name)
    settle(vault, certificate)
    vault.drop_certificate(name.lower())
    certificate.deleted_date = vault.emulator.epoch()
    certificate.operation = None
    vault.deleted[name.lower()] = certificate
    return vault.deleted_bundle(certificate)


def get_deleted(vault: Vault, name: str) -> dict:
    """Return a soft-deleted certificate."""
    return vault.deleted_bundle(_deleted(vault, name))


def purge(vault: Vault, name: str) -> None:
    """Remove a soft-deleted certificate for good."""
    _deleted(vault, name)
    del vault.deleted[name.lower()]


def recover(vault: Vault, name: str) -> dict:
    """Bring a soft-deleted certificate back and return its latest version."""
    certificate = _deleted(vault, name)
    del vault.deleted[name.lower()]
    certificate.deleted_date = None
    vault.put_certificate(certificate)
    return vault.bundle(certificate, certificate.latest, with_policy=True)


def list_deleted(vault: Vault, query: dict) -> dict:
    """Return the soft-deleted certificates (one page of at most 25)."""
    size = vault.page_size(query)
    names = sorted(vault.deleted)
    start = _bisect_after(names, query.get("$skiptoken"))
    items = []
    for key in names[start : start + size]:
        certificate = vault.deleted[key]
        item = vault.item(certificate, certificate.latest, with_name_only=True)
        item["recoveryId"] = f"{vault.base_url}/deletedcertificates/{certificate.name}"
        item["deletedDate"] = certificate.deleted_date
        item["scheduledPurgeDate"] = certificate.deleted_date + RECOVERABLE_DAYS * DAY
        items.append(item)
    body: dict = {"value": items, "nextLink": None}
    if start + size < len(names):
        body["nextLink"] = vault.next_link("/deletedcertificates", names[start + size - 1], size)
    return body


# ---- helpers ----------------------------------------------------------------------------------------------


def _check_no_operation_in_progress(certificate: Certificate) -> None:
    operation = certificate.operation
    if operation is not None and operation.status == IN_PROGRESS:
        raise KeyVaultError(409, PENDING_CONFLICT_CODE, PENDING_CONFLICT_MESSAGE)


def _key_for_new_version(certificate: Certificate, policy: dict) -> pki.PrivateKey:
    key_props = policy["key_props"]
    if key_props.get("reuse_key") and certificate.versions:
        previous = certificate.latest_complete() or certificate.latest
        if previous.key is not None and _key_matches(previous.key, key_props):
            return previous.key
    return pki.generate_key(key_props["kty"], key_props.get("key_size"), key_props.get("crv"))


def _key_matches(key: pki.PrivateKey, key_props: dict) -> bool:
    described = pki.key_properties(key)
    if key_props["kty"].upper().startswith("EC"):
        return described["kty"] == "EC" and described.get("crv") == key_props.get("crv")
    return described["kty"] == "RSA" and described["key_size"] == key_props.get("key_size")


def _decode_base64(value: object, field_name: str) -> bytes:
    if not isinstance(value, str) or not value:
        raise bad_parameter(f"{field_name} must be a non-empty base64 string.")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise bad_parameter(f"{field_name} is not valid base64: {exc}.") from exc


def _load_der_certificate(item: object) -> x509.Certificate:
    try:
        return x509.load_der_x509_certificate(_decode_base64(item, "x5c"))
    except ValueError as exc:
        # Key Vault's words for bytes that are not a DER certificate (PEM text, double base64).
        raise bad_parameter("ASN1 bad tag value met.") from exc


def _deleted(vault: Vault, name: str) -> Certificate:
    certificate = vault.deleted.get(name.lower())
    if certificate is None:
        raise KeyVaultError(404, "CertificateNotFound", f"Deleted Certificate not found: {name}")
    return certificate


def _bisect_after(names: list[str], token: str | None) -> int:
    if not token:
        return 0
    return bisect.bisect_right(names, token.lower())
