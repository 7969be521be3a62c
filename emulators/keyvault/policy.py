"""Certificate policies: defaults, validation and the policy Key Vault generates for an imported certificate."""

from __future__ import annotations

import copy

from cryptography import x509

from emulators.keyvault import pki
from emulators.keyvault.errors import bad_parameter

PKCS12 = "application/x-pkcs12"
PEM = "application/x-pem-file"
CONTENT_TYPES = (PKCS12, PEM)

SELF = "self"
UNKNOWN = "unknown"
INTEGRATED_PROVIDERS = ("digicert", "globalsign")

# Defaults Key Vault fills in when a create request leaves them out (REST reference, CertificatePolicy).
DEFAULT_EKUS = ["1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.2"]
DEFAULT_KEY_USAGE = ["digitalSignature", "keyEncipherment"]
DEFAULT_VALIDITY_MONTHS = 12
# NOTE: inferred from the policy in Microsoft's "Monitor and manage certificate creation" example, where a
# create request without lifetime actions comes back with EmailContacts at 80 % of the lifetime.
DEFAULT_LIFETIME_ACTIONS = [{"trigger": {"lifetime_percentage": 80}, "action": {"action_type": "EmailContacts"}}]
MAX_VALIDITY_MONTHS = 1200
LIFETIME_ACTION_TYPES = ("AutoRenew", "EmailContacts")
KEY_TYPES = ("RSA", "RSA-HSM", "EC", "EC-HSM")


def normalize_policy(requested: dict, now: int, previous: dict | None = None) -> dict:
    """Return a complete, validated policy from a create request's policy, with Key Vault's defaults.

    Raises KeyVaultError (400 BadParameter) naming the first invalid field.
    """
    policy = copy.deepcopy(requested or {})
    if not isinstance(policy, dict):
        raise bad_parameter("The policy must be a JSON object.")

    key_props = {"exportable": True, "kty": "RSA", "reuse_key": False, **(policy.get("key_props") or {})}
    if key_props["kty"].upper().startswith("EC"):
        key_props.setdefault("crv", "P-256")
        key_props["key_size"] = _curve_bits(key_props["crv"])
    else:
        key_props.setdefault("key_size", 2048)
        key_props.pop("crv", None)
    policy["key_props"] = key_props
    policy["secret_props"] = {"contentType": PKCS12, **(policy.get("secret_props") or {})}

    x509_props = {"ekus": DEFAULT_EKUS, "key_usage": DEFAULT_KEY_USAGE, **(policy.get("x509_props") or {})}
    x509_props.setdefault("validity_months", DEFAULT_VALIDITY_MONTHS)
    policy["x509_props"] = x509_props
    if "lifetime_actions" not in policy or policy["lifetime_actions"] is None:
        policy["lifetime_actions"] = copy.deepcopy(DEFAULT_LIFETIME_ACTIONS)
    policy["issuer"] = {"name": "Unknown", **(policy.get("issuer") or {})}

    created = (previous or {}).get("attributes", {}).get("created", now)
    policy["attributes"] = {"enabled": True, **(policy.get("attributes") or {}), "created": created, "updated": now}
    policy.pop("id", None)
    validate_policy(policy)
    return policy


def merge_policy(current: dict, update: dict, now: int) -> dict:
    """Apply a PATCH of the policy: each section sent replaces the keys it names, the rest stays."""
    merged = copy.deepcopy(current)
    for section, value in (update or {}).items():
        if section in ("id", "attributes"):
            continue
        if isinstance(value, dict) and isinstance(merged.get(section), dict):
            merged[section] = {**merged[section], **value}
        else:
            merged[section] = copy.deepcopy(value)
    return normalize_policy(merged, now, previous=current)


def validate_policy(policy: dict) -> None:
    """Raise a 400 BadParameter error for the first field of the policy that Key Vault rejects."""
    key_props = policy["key_props"]
    kty = key_props.get("kty")
    if kty not in KEY_TYPES:
        raise bad_parameter(f"Key type {kty!r} is not supported for certificates. Use one of {', '.join(KEY_TYPES)}.")
    if kty.startswith("RSA") and key_props.get("key_size") not in pki.RSA_KEY_SIZES:
        raise bad_parameter(f"RSA key size {key_props.get('key_size')} is not supported. Use 2048, 3072 or 4096.")
    if kty.startswith("EC") and key_props.get("crv") not in pki.CURVES:
        raise bad_parameter(f"Curve {key_props.get('crv')!r} is not supported. Use P-256, P-384, P-521 or P-256K.")

    content_type = policy["secret_props"].get("contentType")
    if content_type not in CONTENT_TYPES:
        raise bad_parameter(f"Content type {content_type!r} is not supported. Use {PKCS12} or {PEM}.")

    x509_props = policy["x509_props"]
    sans = x509_props.get("sans") or {}
    if not x509_props.get("subject") and not any(sans.get(kind) for kind in ("dns_names", "emails", "upns")):
        raise bad_parameter("The policy must have a subject or at least one subject alternative name.")
    if x509_props.get("subject"):
        try:
            pki.parse_name(x509_props["subject"])
        except ValueError as exc:
            raise bad_parameter(f"Subject {x509_props['subject']!r} is not a valid X.500 name: {exc}.") from exc
    months = x509_props.get("validity_months")
    if not isinstance(months, int) or not 1 <= months <= MAX_VALIDITY_MONTHS:
        raise bad_parameter(f"validity_months must be a whole number from 1 to {MAX_VALIDITY_MONTHS}, not {months!r}.")
    _validate_lifetime_actions(policy["lifetime_actions"], months)


def generated_import_policy(certificate: x509.Certificate, content_type: str, now: int) -> dict:
    """Return the policy Key Vault gives an imported certificate that came without one: issuer Unknown."""
    spec = pki.subject_spec_of(certificate)
    x509_props: dict = {
        "subject": spec.subject,
        "ekus": list(spec.ekus),
        "key_usage": list(spec.key_usage),
        "validity_months": _lifetime_months(certificate),
    }
    sans = {
        kind: list(values)
        for kind, values in (("dns_names", spec.dns_names), ("emails", spec.emails), ("upns", spec.upns))
        if values
    }
    if sans:
        x509_props["sans"] = sans
    return {
        "key_props": {"exportable": True, "reuse_key": False, **pki.key_properties(certificate.public_key())},
        "secret_props": {"contentType": content_type},
        "x509_props": x509_props,
        "lifetime_actions": copy.deepcopy(DEFAULT_LIFETIME_ACTIONS),
        "issuer": {"name": "Unknown"},
        "attributes": {"enabled": True, "created": now, "updated": now},
    }


def subject_spec(policy: dict) -> pki.SubjectSpec:
    """Return what a certificate issued under the policy names."""
    x509_props = policy["x509_props"]
    sans = x509_props.get("sans") or {}
    return pki.SubjectSpec(
        subject=x509_props.get("subject") or "",
        dns_names=tuple(sans.get("dns_names") or ()),
        emails=tuple(sans.get("emails") or ()),
        upns=tuple(sans.get("upns") or ()),
        ip_addresses=tuple(sans.get("ipAddresses") or ()),
        uris=tuple(sans.get("uris") or ()),
        ekus=tuple(x509_props.get("ekus") or ()),
        key_usage=tuple(x509_props.get("key_usage") or ()),
    )


def issuer_name(policy: dict) -> str:
    """Return the policy's issuer name: Self, Unknown or the name of a configured issuer."""
    return policy["issuer"].get("name") or "Unknown"


def lifetime_action(policy: dict) -> tuple[str, dict] | None:
    """Return the policy's only lifetime action as (action type, trigger), or None."""
    actions = policy.get("lifetime_actions") or []
    if not actions:
        return None
    return actions[0]["action"]["action_type"], actions[0]["trigger"]


def _validate_lifetime_actions(actions: list, validity_months: int) -> None:
    if not isinstance(actions, list) or len(actions) > 1:
        raise bad_parameter("A certificate policy can have at most one lifetime action.")
    for action in actions:
        action_type = (action.get("action") or {}).get("action_type")
        if action_type not in LIFETIME_ACTION_TYPES:
            raise bad_parameter(f"Lifetime action type {action_type!r} is invalid. Use AutoRenew or EmailContacts.")
        trigger = action.get("trigger") or {}
        percentage = trigger.get("lifetime_percentage")
        days = trigger.get("days_before_expiry")
        if (percentage is None) == (days is None):
            raise bad_parameter("A lifetime action trigger needs exactly one of lifetime_percentage and days_before_expiry.")
        if percentage is not None and not (isinstance(percentage, int) and 1 <= percentage <= 99):
            raise bad_parameter(f"lifetime_percentage must be from 1 to 99, not {percentage!r}.")
        # Key Vault's bound: days_before_expiry must leave part of the lifetime, at most validity_months * 27 days.
        if days is not None and not (isinstance(days, int) and 1 <= days <= validity_months * 27):
            raise bad_parameter(
                f"days_before_expiry must be from 1 to {validity_months * 27} for a validity of "
                f"{validity_months} months, not {days!r}."
            )


def _curve_bits(curve: str) -> int | None:
    return {"P-256": 256, "P-256K": 256, "P-384": 384, "P-521": 521}.get(curve)


def _lifetime_months(certificate: x509.Certificate) -> int:
    days = (certificate.not_valid_after_utc - certificate.not_valid_before_utc).days
    return max(1, round(days / 30.4))
