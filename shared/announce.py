"""Notices about renewals: the text of each one, and the journal entries that make each go out once.

The renewal service decides and acts. The Announcer turns each step into a notice for the queue and records
in the journal that it went out, so that a redelivery or a concurrent delivery does not send it again.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import Callable, Iterable

from shared import notices as kinds
from shared.decision import OWNERS_TAG, effective_mode
from shared.journal import OPEN_STATES, Journal, renewal_key
from shared.keyvault import INTEGRATED_CA, OTHER_CA, CertificateView, OperationView, VaultClients
from shared.notices import CertificateInfo, ErrorInfo, Notice, NoticeSink, RenewalInfo, iso, notice_id, portal_url
from shared.outcome import Outcome
from shared.remedies import remedy_for
from shared.settings import Settings, VaultConfig

logger = logging.getLogger(__name__)

# A failed renewal is tried again after this long, in case the cause (a policy, a CA account) was fixed.
RETRY_FAILED_AFTER = timedelta(days=1)


class Announcer:
    """Builds the notices of the renewal steps, emits each once, and records that it did."""

    def __init__(
        self,
        settings: Settings,
        vaults: VaultClients,
        journal: Journal,
        sink: NoticeSink,
        clock: Callable[[], datetime],
    ) -> None:
        self.settings = settings
        self.vaults = vaults
        self.journal = journal
        self.sink = sink
        self.clock = clock


    def started(
        self, outcome: Outcome, vault: VaultConfig, certificate: CertificateView, entry: dict, operation: OperationView
    ) -> None:
        """Announce a renewal this app started: as a CSR waiting for a person, or as started."""
        certificate = version_in_use(certificate, entry)
        kind = entry.get("kind", OTHER_CA)
        waiting_for_person = kind == OTHER_CA and operation.in_progress
        notice_kind = kinds.CSR_WAITING if waiting_for_person else kinds.RENEWAL_STARTED
        if waiting_for_person:
            summary = f"A CSR for {certificate.name} in {vault.name} is waiting for your CA's signature."
            next_step = (
                f"Get the CSR (attached to the email, or from certrenew csr --vault {vault.name} {certificate.name}) "
                "signed by your certificate authority, then merge the result into this same pending request with "
                f"certrenew merge --vault {vault.name} {certificate.name} SIGNED.pem or in the Azure portal."
            )
        else:
            issuer_label = "The integrated CA" if kind == INTEGRATED_CA else "Key Vault"
            summary = f"Renewal of {certificate.name} in {vault.name} has started."
            next_step = f"Nothing to do. {issuer_label} issues the new version, and you get an email when it is there."

        renewal = RenewalInfo(
            started_by="certrenew",
            operation_status=operation.status,
            request_id=operation.request_id,
            autorenew_missed=bool(entry.get("autorenew_missed")),
            previous_version=entry.get("from_version"),
            previous_expires_on=entry.get("from_expires_on"),
            previous_thumbprint=entry.get("from_thumbprint"),
        )
        if entry.get("autorenew_missed"):
            summary += " Key Vault's AutoRenew did not renew it, so this app did."

        days_left = days_until(certificate.expires_on, self.clock())
        notice = self._notice(
            notice_kind, vault, certificate, kind, summary, next_step,
            discriminator=entry.get("from_version", ""), renewal=renewal,
            csr_pem=operation.csr_pem if waiting_for_person else None,
            next_reminder=self._next_reminder(certificate.expires_on, days_left) if waiting_for_person else None,
        )
        if not self._emit_once(outcome, vault, notice):
            logger.info("certificate=%s vault=%s: renewal already announced", certificate.name, vault.name)
            return
        if waiting_for_person:
            self._skip_reminder_reached(vault, certificate.name, entry.get("from_version"), days_left)
        self.journal.merge(vault.name, renewal_key(certificate.name), {"state": "announced", "announced_at": iso(self.clock())})

    def renewed(
        self, outcome: Outcome, vault: VaultConfig, certificate: CertificateView, entry: dict, started_by: str
    ) -> None:
        """Announce the certificate's new version once, and close the renewal in the journal."""
        kind = self.vaults.certificate_kind(vault, certificate.policy)
        renewal = RenewalInfo(
            started_by=started_by,
            operation_status="completed",
            request_id=entry.get("request_id"),
            autorenew_missed=bool(entry.get("autorenew_missed")),
            previous_version=entry.get("from_version"),
            previous_expires_on=entry.get("from_expires_on"),
            previous_thumbprint=entry.get("from_thumbprint"),
            new_version=certificate.version,
            new_expires_on=iso(certificate.expires_on),
            new_thumbprint=certificate.thumbprint,
        )
        summary = (
            f"{certificate.name} in {vault.name} was renewed: the new version expires on "
            f"{certificate.expires_on:%Y-%m-%d}." if certificate.expires_on else f"{certificate.name} was renewed."
        )
        next_step = "Services that load the latest version pick it up; restart or redeploy those that pin a version."
        notice = self._notice(kinds.RENEWED, vault, certificate, kind, summary, next_step,
                              discriminator=certificate.version, renewal=renewal)
        if not self._emit_once(outcome, vault, notice):
            logger.info("certificate=%s vault=%s: renewal of version %s already announced", certificate.name,
                        vault.name, certificate.version)
            self._close_renewal(vault, certificate)
            return
        self.journal.append_history(vault.name, certificate.name, "renewed", f"new version {certificate.version}", self.clock())
        self._close_renewal(vault, certificate)

    def _close_renewal(self, vault: VaultConfig, certificate: CertificateView) -> None:
        entry = self.journal.read(vault.name, renewal_key(certificate.name))
        if entry and entry[0].get("state") in OPEN_STATES + ("claimed",) and entry[0].get("from_version") != certificate.version:
            self.journal.merge(vault.name, renewal_key(certificate.name),
                               {"state": "completed", "new_version": certificate.version, "completed_at": iso(self.clock())})

    def failure(
        self, outcome: Outcome, vault: VaultConfig, certificate: CertificateView, entry: dict,
        code: str | None, message: str,
    ) -> None:
        """Record a failed renewal in the journal and its history, and announce it with the remedy."""
        kind = entry.get("kind") or self.vaults.certificate_kind(vault, certificate.policy)
        remedy = remedy_for(code, message, certificate)
        self.journal.merge(vault.name, renewal_key(certificate.name),
                           {**entry, "state": "failed", "failed_at": iso(self.clock()), "error_code": code,
                            "error_message": message})
        self.journal.append_history(vault.name, certificate.name, "renewal-failed", f"{code}: {message}", self.clock())
        logger.error("Renewal failed: certificate=%s vault=%s code=%s: %s", certificate.name, vault.name, code, message)
        next_try = self.clock() + RETRY_FAILED_AFTER
        notice = self._notice(
            kinds.RENEWAL_FAILED, vault, certificate, kind,
            f"Renewal of {certificate.name} in {vault.name} failed: {code or 'error'}.",
            f"{remedy} The app tries again after {next_try:%Y-%m-%d %H:%M} UTC.",
            discriminator=f"{entry.get('from_version')}|{entry.get('request_id')}|{code}",
            renewal=RenewalInfo(started_by="certrenew", operation_status="failed", request_id=entry.get("request_id"),
                                previous_version=entry.get("from_version")),
            error=ErrorInfo(code=code, message=message, remedy=remedy),
        )
        self._emit_once(outcome, vault, notice)

    def expired(
        self, outcome: Outcome, vault: VaultConfig, certificate: CertificateView, kind: str, mode: str, reason: str
    ) -> None:
        """Announce once per version that the certificate in use has expired."""
        notice_kind = kinds.EXPIRED
        if self.settings.dry_run:
            return
        expired_on = f"{certificate.expires_on:%Y-%m-%d %H:%M} UTC" if certificate.expires_on else "an unknown date"
        summary = f"{certificate.name} in {vault.name} expired on {expired_on}."
        next_step = {
            "notify": "Renew it by hand now: services that use it are failing TLS handshakes.",
            "csr": "A new CSR is waiting or will be made; get it signed and merge it as soon as you can.",
        }.get(mode, "The app is renewing it; you get an email when the new version is there.")
        notice = self._notice(notice_kind, vault, certificate, kind, summary, next_step, discriminator=certificate.version)
        if self._emit_once(outcome, vault, notice):
            self.journal.append_history(vault.name, certificate.name, notice_kind, reason, self.clock())

    def manual_renewal_due(
        self, outcome: Outcome, vault: VaultConfig, certificate: CertificateView, kind: str, mode: str
    ) -> None:
        """Tell the owners of a notify-only certificate that it is due, then remind them at each reminder day."""
        if self.settings.dry_run or (certificate.expires_on and self.clock() >= certificate.expires_on):
            # Once expired, the expired notice covers it, so reminders stop.
            return
        days_left = days_until(certificate.expires_on, self.clock())
        notice_kind, discriminator = kinds.MANUAL_RENEWAL_DUE, certificate.version
        threshold = reminder_threshold(days_left, self.settings.reminder_days)
        first = notice_id(kinds.MANUAL_RENEWAL_DUE, vault.name, certificate.name, certificate.version)
        if self.journal.read(vault.name, f"notice~{first}") is not None:
            if threshold is None:
                return
            notice_kind, discriminator = kinds.REMINDER, f"{certificate.version}|{threshold}"
        else:
            self._skip_reminder_reached(vault, certificate.name, certificate.version, days_left)
        summary = f"{certificate.name} in {vault.name} expires in {days_left} days and must be renewed by hand."
        next_step = "Renew it in Key Vault (or set tag certrenew-mode to renew to let this app do it)."
        notice = self._notice(notice_kind, vault, certificate, kind, summary, next_step, discriminator=discriminator,
                              next_reminder=self._next_reminder(certificate.expires_on, days_left))
        self._emit_once(outcome, vault, notice)

    def _skip_reminder_reached(self, vault: VaultConfig, name: str, version: str | None, days_left: int | None) -> None:
        """Mark the reminder of the threshold already reached as sent, so the first notice is not followed by one."""
        threshold = reminder_threshold(days_left, self.settings.reminder_days)
        if threshold is not None:
            reminder = notice_id(kinds.REMINDER, vault.name, name, f"{version}|{threshold}")
            self.journal.claim_notice(vault.name, reminder, kinds.REMINDER, self.clock())

    def csr_reminder(self, outcome: Outcome, vault: VaultConfig, entry: dict, operation: OperationView) -> None:
        """Remind the owners of a CSR still waiting for a signature at each reminder day, or announce the expiry."""
        expires_on = parse_time(entry.get("from_expires_on")) if entry.get("from_expires_on") else None
        days_left = days_until(expires_on, self.clock())
        threshold = reminder_threshold(days_left, self.settings.reminder_days)
        if threshold is None or self.settings.dry_run:
            return
        certificate = self.vaults.get_certificate(vault, entry["certificate"])
        if certificate is None:
            return
        certificate = version_in_use(certificate, entry)
        if days_left is not None and days_left < 0:
            self._expired_while_waiting(outcome, vault, certificate, entry, operation)
            return
        summary = (
            f"Reminder: the CSR for {certificate.name} in {vault.name} is still waiting for a signature; the "
            f"certificate expires in {days_left} days."
        )
        next_step = (
            "Get the attached CSR signed by your CA and merge the result into the pending request "
            f"(certrenew merge --vault {vault.name} {certificate.name} SIGNED.pem)."
        )
        notice = self._notice(
            kinds.REMINDER, vault, certificate, OTHER_CA, summary, next_step,
            discriminator=f"{entry.get('from_version')}|{threshold}", csr_pem=operation.csr_pem,
            next_reminder=self._next_reminder(expires_on, days_left),
        )
        self._emit_once(outcome, vault, notice)

    def _expired_while_waiting(
        self, outcome: Outcome, vault: VaultConfig, certificate: CertificateView, entry: dict, operation: OperationView
    ) -> None:
        summary = (
            f"{certificate.name} in {vault.name} expired on {entry.get('from_expires_on')} while its CSR was "
            "still waiting for a signature."
        )
        next_step = (
            "Get the attached CSR signed now and merge the result into the pending request "
            f"(certrenew merge --vault {vault.name} {certificate.name} SIGNED.pem)."
        )
        notice = self._notice(kinds.EXPIRED, vault, certificate, OTHER_CA, summary, next_step,
                              discriminator=str(entry.get("from_version")), csr_pem=operation.csr_pem)
        self._emit_once(outcome, vault, notice)

    def _emit_once(self, outcome: Outcome, vault: VaultConfig, notice: Notice) -> bool:
        """Queue a notice unless the journal shows it was queued before. Returns whether it was queued.

        The journal keeps the message, so the timer can queue it again if it never reaches the email function.
        """
        if not self.journal.claim_notice(vault.name, notice.id, notice.kind, self.clock(), notice.to_json()):
            return False
        self.sink.emit(notice)
        outcome.notices.append(notice)
        return True

    def _next_reminder(self, expires_on: datetime | None, days_left: int | None) -> str | None:
        if expires_on is None or days_left is None:
            return None
        later = [days for days in self.settings.reminder_days if days < days_left]
        return iso(expires_on - timedelta(days=max(later))) if later else None

    def _notice(
        self, notice_kind: str, vault: VaultConfig, certificate: CertificateView, kind: str, summary: str,
        next_step: str, discriminator: str, renewal: RenewalInfo | None = None, error: ErrorInfo | None = None,
        csr_pem: str | None = None, next_reminder: str | None = None,
    ) -> Notice:
        mode, _ = effective_mode(certificate.tags, kind, self.settings.default_modes)
        owners = [owner.strip() for owner in certificate.tags.get(OWNERS_TAG, "").split(",") if owner.strip()]
        info = CertificateInfo(
            name=certificate.name,
            version=certificate.version,
            kind=kind,
            issuer=certificate.policy.issuer_name if certificate.policy else "Unknown",
            mode=mode,
            subject=certificate.subject,
            dns_names=list(certificate.dns_names),
            enabled=certificate.enabled,
            expires_on=iso(certificate.expires_on),
            days_left=days_until(certificate.expires_on, self.clock()),
            thumbprint=certificate.thumbprint,
            certificate_id=certificate.certificate_id,
            portal_url=portal_url(certificate.certificate_id),
            owners=owners,
        )
        return Notice(
            id=notice_id(notice_kind, vault.name, certificate.name, discriminator),
            kind=notice_kind,
            created=iso(self.clock()) or "",
            vault_name=vault.name,
            vault_url=vault.url,
            certificate=info,
            summary=summary,
            next_step=next_step,
            renewal=renewal,
            error=error,
            csr_pem=csr_pem,
            next_reminder=next_reminder,
            dry_run=self.settings.dry_run,
        )


def version_in_use(certificate: CertificateView, entry: dict) -> CertificateView:
    """Return the certificate as its users see it: while a new version is pending, the version it replaces."""
    if certificate.expires_on is not None or not entry.get("from_expires_on"):
        return certificate
    return replace(
        certificate,
        version=entry.get("from_version") or certificate.version,
        expires_on=parse_time(entry["from_expires_on"]),
        thumbprint=entry.get("from_thumbprint"),
    )


def parse_time(value: object) -> datetime:
    """Read a time the journal stored as ISO 8601; a missing one reads as the earliest time."""
    if not value:
        return datetime.min.replace(tzinfo=timezone.utc)
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def days_until(expires_on: datetime | None, now: datetime) -> int | None:
    """Return the whole days from now until expires_on, negative after it, or None without a date."""
    if expires_on is None:
        return None
    return int((expires_on - now).total_seconds() // 86400)


def reminder_threshold(days_left: int | None, reminder_days: Iterable[int]) -> int | None:
    """Return the smallest reminder day that days_left has reached, or None."""
    if days_left is None:
        return None
    reached = [days for days in reminder_days if days_left <= days]
    return min(reached) if reached else None
