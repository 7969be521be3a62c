"""The renewal decision: the action for a certificate, from its state in Key Vault now.

Every input comes from Key Vault itself, never from the event, because an event may be stale or delivered twice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Mapping

from shared.keyvault import OTHER_CA, CertificateView

logger = logging.getLogger(__name__)

# Tag that sets a certificate's mode, and tag that names its owners (email addresses, separated by commas).
MODE_TAG = "certrenew-mode"
OWNERS_TAG = "certrenew-owners"

# The renewal window is capped at this fraction of the version's lifetime, so a fresh version is never due:
# a certificate valid for one month becomes due 10 days before expiry, not 30, and its renewal is not due again.
MAX_WINDOW_FRACTION = 1 / 3

# Key Vault runs AutoRenew some time after its trigger passes, not at that second. Renewing ourselves
# earlier than this after the trigger would race Key Vault and make two versions.
AUTORENEW_GRACE = timedelta(days=1)

SKIP = "skip"
WAIT_FOR_AUTORENEW = "wait-for-autorenew"
NOTIFY = "notify"
START = "start"


@dataclass(frozen=True)
class Decision:
    """An action for one certificate, and its reason in words for the log and the notice."""

    action: str
    reason: str
    # True when Key Vault's own AutoRenew should have renewed the certificate and did not.
    autorenew_missed: bool = False


def effective_mode(tags: Mapping[str, str], kind: str, default_modes: Mapping[str, str]) -> tuple[str, str | None]:
    """Return the certificate's mode (renew, csr, notify or off) and a warning when its tag is invalid.

    `renew` and `csr` both start a new version: for issuer Unknown the new version waits for a person to
    merge the signed certificate, so its mode is called csr. An invalid tag falls back to notify, which
    changes nothing in Key Vault and still notifies the owners.
    """
    value = tags.get(MODE_TAG)
    if value is None:
        return default_modes[kind], None
    mode = value.strip().lower()
    if mode not in ("renew", "csr", "notify", "off"):
        return "notify", f"tag {MODE_TAG} has the invalid value {value!r}; use renew, csr, notify or off"
    if mode == "renew" and kind == OTHER_CA:
        mode = "csr"
    return mode, None


def renewal_window(certificate: CertificateView, window_days: int) -> timedelta:
    """Return how long before expiry the certificate becomes due."""
    window = timedelta(days=window_days)
    if certificate.not_before is None or certificate.expires_on is None:
        return window
    lifetime = certificate.expires_on - certificate.not_before
    return min(window, lifetime * MAX_WINDOW_FRACTION)


def due_time(certificate: CertificateView, window_days: int) -> datetime | None:
    """Return when the certificate becomes due, or None when Key Vault gave no expiry."""
    if certificate.expires_on is None:
        return None
    return certificate.expires_on - renewal_window(certificate, window_days)


def decide(
    certificate: CertificateView,
    kind: str,
    mode: str,
    now: datetime,
    window_days: int,
    event_version: str | None = None,
    force: bool = False,
) -> Decision:
    """Decide what to do with the certificate's current version.

    `force` starts a renewal before the window, for a key that may be compromised.
    """
    if not certificate.enabled:
        return Decision(SKIP, "the certificate is disabled")
    if mode == "off":
        return Decision(SKIP, f"tag {MODE_TAG} is off")
    if certificate.policy is None or certificate.expires_on is None:
        return Decision(SKIP, "Key Vault returned no policy or expiry; the first version may still be pending")

    due_at = due_time(certificate, window_days)
    if not force and due_at is not None and now < due_at:
        if event_version and event_version != certificate.version:
            return Decision(SKIP, f"the current version {certificate.version} is newer than the event's and not due")
        return Decision(SKIP, f"not due until {due_at:%Y-%m-%d %H:%M} UTC")

    if mode == "notify":
        return Decision(NOTIFY, "the certificate is due and its mode is notify, so a person must renew it")

    action = certificate.policy.lifetime_action
    if not force and kind != OTHER_CA and certificate.policy.auto_renews and action is not None:
        trigger = action.trigger_time(certificate.not_before or certificate.expires_on, certificate.expires_on)
        if now < trigger + AUTORENEW_GRACE:
            return Decision(
                WAIT_FOR_AUTORENEW, f"Key Vault renews it by itself (AutoRenew at {trigger:%Y-%m-%d %H:%M} UTC)"
            )
        return Decision(
            START,
            f"Key Vault's AutoRenew was due at {trigger:%Y-%m-%d %H:%M} UTC and has not renewed it",
            autorenew_missed=True,
        )

    if force:
        return Decision(START, "an operator forced the renewal")
    if now >= certificate.expires_on:
        return Decision(START, "the certificate has expired")
    return Decision(START, f"it expires on {certificate.expires_on:%Y-%m-%d} and was due from {due_at:%Y-%m-%d}")
