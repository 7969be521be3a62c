"""The renewal service: what the Event Grid functions, the timer and the operator CLI run.

Each step reads Key Vault first, then claims its work in the journal, then acts, then emits its notice. A
delivery that finds a step half done (started but not announced) finishes it, so a crash or a redelivery
neither loses a notice nor starts a second renewal.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from typing import Callable, Iterable

from shared import decision as decisions
from shared import notices as kinds
from shared.decision import OWNERS_TAG, Decision, decide, due_time, effective_mode
from shared.events import EXPIRED, NEAR_EXPIRY, NEW_VERSION_CREATED, CertificateEvent
from shared.journal import OPEN_STATES, Journal
from shared.keyvault import (
    INTEGRATED_CA,
    OTHER_CA,
    CertificateView,
    KeyVaultError,
    OperationInProgress,
    OperationView,
    VaultClients,
)
from shared.notices import CertificateInfo, ErrorInfo, Notice, NoticeSink, RenewalInfo, iso, notice_id, portal_url
from shared.remedies import remedy_for
from shared.settings import Settings, VaultConfig

logger = logging.getLogger(__name__)

# A claim or a started renewal older than this belongs to a delivery that died, so another may take over.
# Event Grid retries a failed delivery after 10 s, 30 s, 1 min, 5 min, 10 min and then longer, so its later
# retries, and the hourly timer, come after this.
STALE_CLAIM_AFTER = timedelta(minutes=5)

# A failed renewal is tried again after this long, in case the cause (a policy, a CA account) was fixed.
RETRY_FAILED_AFTER = timedelta(days=1)


def utc_now() -> datetime:
    """Return the current time in UTC."""
    return datetime.now(timezone.utc)


@dataclass
class Outcome:
    """The decisions per certificate and the notices of one call of the service."""

    decisions: list[tuple[str, str, Decision]] = field(default_factory=list)
    notices: list[Notice] = field(default_factory=list)

    def extend(self, other: "Outcome") -> None:
        self.decisions.extend(other.decisions)
        self.notices.extend(other.notices)


@dataclass
class SweepReport(Outcome):
    """A sweep's outcome, with the counts an operator wants in the log."""

    listed: int = 0
    due: int = 0
    operations_checked: int = 0


class RenewalService:
    """Decides and starts renewals, confirms them and checks their operations."""

    def __init__(
        self,
        settings: Settings,
        vaults: VaultClients,
        journal: Journal,
        sink: NoticeSink,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.settings = settings
        self.vaults = vaults
        self.journal = journal
        self.sink = sink
        self.clock = clock
        self._owner = uuid.uuid4().hex

    # Entry points -------------------------------------------------------------------------------------------

    def handle_event(self, event: CertificateEvent) -> Outcome:
        """Handle one validated Key Vault certificate event."""
        logger.info("Handling %s", event.describe())
        if event.event_type in (NEAR_EXPIRY, EXPIRED):
            return self.process_certificate(event.vault, event.certificate_name, event_version=event.version)
        if event.event_type == NEW_VERSION_CREATED:
            return self.confirm_new_version(event.vault, event.certificate_name, event.version)
        logger.warning("Ignoring %s: the event type is not a certificate event this app handles", event.describe())
        return Outcome()

    def process_certificate(
        self, vault: VaultConfig, name: str, event_version: str | None = None, force: bool = False
    ) -> Outcome:
        """Read a certificate from Key Vault, decide, and act on the decision."""
        outcome = Outcome()
        certificate = self.vaults.get_certificate(vault, name)
        if certificate is None:
            logger.warning("certificate=%s vault=%s was not found; it may have been deleted", name, vault.name)
            return outcome

        entry = self.journal.read(vault.name, _renewal_key(name))
        if entry and entry[0].get("state") == "started" and self._is_stale(entry[0].get("started_at")):
            # An earlier delivery started this renewal and stopped before announcing it. Announce it now:
            # as started while the operation runs, or as renewed if Key Vault has finished it since.
            outcome.extend(self._check_operation(vault, entry[0]))
            certificate = self.vaults.get_certificate(vault, name) or certificate

        if certificate.expires_on is None:
            # The latest version has no certificate yet: an operation is pending, or it failed or was
            # cancelled. Follow a pending operation; otherwise decide on the newest completed version.
            operation = self.vaults.get_operation(vault, name)
            if operation is not None and operation.in_progress:
                return self._follow_pending(vault, certificate, operation)
            completed = self._newest_completed(vault, certificate)
            if completed is None:
                logger.info("certificate=%s vault=%s has no completed version yet", name, vault.name)
                return outcome
            certificate = completed

        kind = self.vaults.certificate_kind(vault, certificate.policy)
        mode, warning = effective_mode(certificate.tags, kind, self.settings.default_modes)
        if warning:
            logger.warning("certificate=%s vault=%s: %s", name, vault.name, warning)
        now = self.clock()
        decision = decide(certificate, kind, mode, now, self.settings.renewal_window_days, event_version, force)
        outcome.decisions.append((vault.name, name, decision))
        logger.info(
            "certificate=%s vault=%s version=%s kind=%s mode=%s decision=%s: %s",
            name, vault.name, certificate.version, kind, mode, decision.action, decision.reason,
        )

        if certificate.enabled and mode != "off" and certificate.expires_on and now >= certificate.expires_on:
            self._notify_once(outcome, vault, certificate, kind, mode, kinds.EXPIRED, decision.reason)
        if decision.action == decisions.NOTIFY:
            self._notify_manual_renewal(outcome, vault, certificate, kind, mode)
        elif decision.action == decisions.START:
            self._start_renewal(outcome, vault, certificate, kind, mode, decision, force)
        return outcome

    def confirm_new_version(self, vault: VaultConfig, name: str, version: str | None) -> Outcome:
        """Confirm that a certificate has a new version, made by this app or by anyone else, and announce it once."""
        outcome = Outcome()
        certificate = self.vaults.get_certificate(vault, name)
        if certificate is None:
            logger.warning("certificate=%s vault=%s was not found; it may have been deleted", name, vault.name)
            return outcome
        if certificate.expires_on is None:
            logger.info("certificate=%s vault=%s: the latest version is not complete yet", name, vault.name)
            return outcome
        if version and version != certificate.version:
            logger.info(
                "certificate=%s vault=%s: the event's version %s is not the current version %s; confirming the current one",
                name, vault.name, version, certificate.version,
            )

        entry = self.journal.read(vault.name, _renewal_key(name))
        if entry and entry[0].get("state") in OPEN_STATES and entry[0].get("from_version") != certificate.version:
            self._announce_renewed(outcome, vault, certificate, entry[0], entry[0].get("started_by", "certrenew"))
            return outcome
        if entry and entry[0].get("state") == "completed" and entry[0].get("new_version") == certificate.version:
            logger.info("certificate=%s vault=%s: version %s was already confirmed", name, vault.name, certificate.version)
            return outcome

        previous = self._previous_version(vault, certificate)
        if previous is None:
            logger.info("certificate=%s vault=%s: first version %s, nothing renewed", name, vault.name, certificate.version)
            return outcome
        started_by = "keyvault-autorenew" if certificate.policy and certificate.policy.auto_renews else "other"
        self._announce_renewed(
            outcome,
            vault,
            certificate,
            {"from_version": previous.version, "from_expires_on": iso(previous.expires_on),
             "from_thumbprint": _thumbprint_of(previous)},
            started_by,
        )
        return outcome

    def check_operations(self) -> Outcome:
        """Check every renewal still waiting for Key Vault, a CA or a person, and report what changed."""
        outcome = Outcome()
        for vault_name, key, entry in self.journal.entries("renewal~", OPEN_STATES):
            vault = self.settings.vault_by_name(vault_name)
            if vault is None:
                logger.warning("Journal entry %s names vault %s, which is no longer configured", key, vault_name)
                continue
            outcome.extend(self._check_operation(vault, entry))
        return outcome

    def sweep(self, dry_run: bool | None = None) -> SweepReport:
        """Check open operations, then list every vault and process the certificates that are due.

        Only due certificates cost requests beyond the list pages, because the list items carry the
        enabled flag, the dates and the tags.
        """
        report = SweepReport()
        report.extend(self.check_operations())
        report.operations_checked = len(report.decisions)
        now = self.clock()
        for vault in self.settings.vaults:
            for properties in self.vaults.list_certificates(vault):
                report.listed += 1
                if not self._listed_as_due(vault, properties, now):
                    continue
                report.due += 1
                report.extend(self.process_certificate(vault, properties.name))
        logger.info(
            "Sweep done: listed=%d due=%d notices=%d", report.listed, report.due, len(report.notices)
        )
        return report

    def open_renewal(self, vault: VaultConfig, name: str) -> dict | None:
        """Return the journal entry of the certificate's renewal while it waits for Key Vault or a person, else None."""
        entry = self.journal.read(vault.name, _renewal_key(name))
        return entry[0] if entry and entry[0].get("state") in OPEN_STATES else None

    def record_cancelled(self, vault: VaultConfig, name: str, detail: str) -> None:
        """Close the certificate's open renewal after an operator cancelled its operation, and log it in the history.

        Without this the timer would find the operation gone and report the renewal as failed.
        """
        if self.open_renewal(vault, name) is not None:
            self.journal.merge(vault.name, _renewal_key(name), {"state": "cancelled", "cancelled_at": iso(self.clock())})
        self.journal.append_history(vault.name, name, "operation-cancelled", detail, self.clock())

    # Steps ----------------------------------------------------------------------------------------------

    def _listed_as_due(self, vault: VaultConfig, properties: object, now: datetime) -> bool:
        enabled = getattr(properties, "enabled", True)
        expires_on = getattr(properties, "expires_on", None)
        tags = getattr(properties, "tags", None) or {}
        if expires_on is None:
            # The latest version is pending, failed or cancelled. An open renewal is the operation
            # check's work; anything else gets a look, so a failed renewal is retried in time.
            entry = self.journal.read(vault.name, _renewal_key(properties.name))
            return not (entry and entry[0].get("state") in OPEN_STATES)
        if not enabled or str(tags.get(decisions.MODE_TAG, "")).lower() == "off":
            return False
        view = CertificateView(
            name=properties.name, certificate_id=properties.id, version=properties.version, enabled=True,
            not_before=getattr(properties, "not_before", None), expires_on=expires_on, created_on=None,
            thumbprint=None, subject=None, dns_names=(), tags=tags, policy=None,
        )
        due_at = due_time(view, self.settings.renewal_window_days)
        if due_at is None or now < due_at:
            return False
        entry = self.journal.read(vault.name, _renewal_key(properties.name))
        if entry and entry[0].get("from_version") == properties.version and entry[0].get("state") in OPEN_STATES:
            # The timer's operation check covers it, and a second create would get 409.
            return False
        return True

    def _start_renewal(
        self,
        outcome: Outcome,
        vault: VaultConfig,
        certificate: CertificateView,
        kind: str,
        mode: str,
        decision: Decision,
        force: bool,
    ) -> None:
        if self.settings.dry_run:
            logger.info("Dry run: would start a new version of certificate=%s vault=%s", certificate.name, vault.name)
            return
        claim = self._claim_renewal(vault, certificate, kind, decision, force)
        if claim is None:
            return
        if claim.get("state") in OPEN_STATES:
            self._resume(outcome, vault, certificate, claim)
            return

        try:
            operation = self.vaults.create_version(
                vault, certificate.name, certificate.policy, certificate.tags, certificate.enabled
            )
        except OperationInProgress:
            logger.info("certificate=%s vault=%s already has an operation; resuming it", certificate.name, vault.name)
            operation = self.vaults.get_operation(vault, certificate.name)
            if operation is None:
                self._release(vault, certificate.name)
                raise
        except KeyVaultError as exc:
            self._record_failure(outcome, vault, certificate, claim, exc.code, str(exc))
            return
        except BaseException:
            self._release(vault, certificate.name)
            raise

        claim.update(state="started", request_id=operation.request_id, started_at=iso(self.clock()))
        self.journal.merge(vault.name, _renewal_key(certificate.name), claim)
        self.journal.append_history(
            vault.name, certificate.name, "renewal-started", f"{decision.reason}; operation {operation.status}", self.clock()
        )
        self._announce_started(outcome, vault, certificate, claim, operation)

    def _claim_renewal(
        self, vault: VaultConfig, certificate: CertificateView, kind: str, decision: Decision, force: bool
    ) -> dict | None:
        """Claim the renewal of the certificate's current version, or return the claim already open for it.

        Returns None when another delivery has a fresh claim, or when the renewal failed recently.
        """
        key = _renewal_key(certificate.name)
        now = self.clock()
        claim = {
            "state": "claimed",
            "owner": self._owner,
            "claimed_at": iso(now),
            "certificate": certificate.name,
            "kind": kind,
            "from_version": certificate.version,
            "from_expires_on": iso(certificate.expires_on),
            "from_thumbprint": certificate.thumbprint,
            "autorenew_missed": decision.autorenew_missed,
            "reason": decision.reason,
        }
        current = self.journal.read(vault.name, key)
        if current is None:
            return claim if self.journal.insert(vault.name, key, claim) else None

        fields, etag = current
        if fields.get("from_version") == certificate.version and not force:
            state = fields.get("state")
            if state in OPEN_STATES:
                return fields
            if state == "claimed" and not self._is_stale(fields.get("claimed_at")):
                logger.info("certificate=%s vault=%s: another delivery is starting this renewal", certificate.name, vault.name)
                return None
            if state == "failed" and now - _parse_time(fields.get("failed_at")) < RETRY_FAILED_AFTER:
                logger.info(
                    "certificate=%s vault=%s: the last renewal failed at %s; the next try is after %s",
                    certificate.name, vault.name, fields.get("failed_at"), RETRY_FAILED_AFTER,
                )
                return None
        return claim if self.journal.replace(vault.name, key, claim, etag) else None

    def _is_stale(self, claimed_at: object) -> bool:
        """Return True when a claim or a started renewal is old enough that its delivery must have died."""
        return self.clock() - _parse_time(claimed_at) >= STALE_CLAIM_AFTER

    def _release(self, vault: VaultConfig, name: str) -> None:
        """Give a claim back after a transient failure, so the redelivery can take it at once."""
        self.journal.merge(vault.name, _renewal_key(name), {"state": "released"})

    def _resume(self, outcome: Outcome, vault: VaultConfig, certificate: CertificateView, entry: dict) -> None:
        if entry.get("state") == "started":
            operation = self.vaults.get_operation(vault, certificate.name)
            if operation is not None:
                self._announce_started(outcome, vault, certificate, entry, operation)
        else:
            logger.info("certificate=%s vault=%s: renewal already started and announced", certificate.name, vault.name)

    def _follow_pending(self, vault: VaultConfig, certificate: CertificateView, operation: OperationView) -> Outcome:
        """Follow a pending operation: one this app started, or one started outside it (a person, a script)."""
        entry = self.journal.read(vault.name, _renewal_key(certificate.name))
        if entry and entry[0].get("state") in OPEN_STATES:
            return self._check_operation(vault, entry[0])

        previous = self._newest_completed(vault, certificate)
        adopted = {
            "state": "started",
            "certificate": certificate.name,
            "kind": self.vaults.certificate_kind(vault, certificate.policy),
            "started_by": "other",
            "request_id": operation.request_id,
            "started_at": iso(self.clock()),
            "from_version": previous.version if previous else None,
            "from_expires_on": iso(previous.expires_on) if previous else None,
            "from_thumbprint": previous.thumbprint if previous else None,
        }
        current = entry[1] if entry else None
        claimed = (
            self.journal.replace(vault.name, _renewal_key(certificate.name), adopted, current)
            if current else self.journal.insert(vault.name, _renewal_key(certificate.name), adopted)
        )
        if not claimed:
            return Outcome()
        logger.info("certificate=%s vault=%s: following an operation started outside this app", certificate.name,
                    vault.name)
        return self._check_operation(vault, adopted)

    def _newest_completed(self, vault: VaultConfig, latest: CertificateView) -> CertificateView | None:
        """Return the newest version that has a certificate, with the certificate's policy, or None."""
        client = self.vaults.client(vault)
        completed = [
            item for item in client.list_properties_of_certificate_versions(latest.name)
            if item.expires_on is not None and item.created_on is not None
        ]
        if not completed:
            return None
        newest = max(completed, key=lambda item: item.created_on)
        view = self.vaults.get_certificate_version(vault, latest.name, newest.version)
        return replace(view, policy=latest.policy) if view else None

    def _check_operation(self, vault: VaultConfig, entry: dict) -> Outcome:
        outcome = Outcome()
        name = entry["certificate"]
        operation = self.vaults.get_operation(vault, name)
        if operation is not None and operation.in_progress:
            outcome.decisions.append((vault.name, name, Decision(decisions.SKIP, "the operation is in progress")))
            certificate = self.vaults.get_certificate(vault, name) if entry.get("state") == "started" else None
            if certificate is not None:
                self._announce_started(outcome, vault, certificate, entry, operation)
            if entry.get("kind") == OTHER_CA:
                self._remind_csr(outcome, vault, entry, operation)
            return outcome

        certificate = self.vaults.get_certificate(vault, name)
        if certificate is None:
            self.journal.merge(vault.name, _renewal_key(name), {"state": "gone"})
            return outcome
        status = operation.status.lower() if operation else "deleted"
        outcome.decisions.append((vault.name, name, Decision(decisions.SKIP, f"the operation is {status}")))
        if operation is not None and status in ("failed", "cancelled"):
            failed_from = self._newest_completed(vault, certificate) if certificate.expires_on is None else certificate
            self._record_failure(outcome, vault, failed_from or certificate, entry, operation.error_code,
                                 operation.error_message or f"The certificate operation was {status}.")
        elif certificate.expires_on is not None and certificate.version != entry.get("from_version"):
            self._announce_renewed(outcome, vault, certificate, entry, entry.get("started_by", "certrenew"))
        elif operation is None:
            self._record_failure(outcome, vault, certificate, entry, "PendingCertificateNotFound",
                                 "The pending operation was deleted before a new version was made.")
        return outcome

    # Notices --------------------------------------------------------------------------------------------

    def _announce_started(
        self, outcome: Outcome, vault: VaultConfig, certificate: CertificateView, entry: dict, operation: OperationView
    ) -> None:
        certificate = _version_in_use(certificate, entry)
        kind = entry.get("kind", OTHER_CA)
        waiting_for_person = kind == OTHER_CA and operation.in_progress
        notice_kind = kinds.CSR_WAITING if waiting_for_person else kinds.RENEWAL_STARTED
        if waiting_for_person:
            summary = f"A CSR for {certificate.name} in {vault.name} is waiting for your CA's signature."
            next_step = (
                "Send the attached CSR to your certificate authority, then merge the signed certificate into this "
                f"same pending request: certrenew merge --vault {vault.name} {certificate.name} SIGNED.pem, or "
                "Merge Signed Request in the Azure portal. A certificate signed for any other CSR will not match the key."
            )
        else:
            issuer_label = "integrated CA" if kind == INTEGRATED_CA else "Key Vault"
            summary = f"Renewal of {certificate.name} in {vault.name} has started."
            next_step = f"Nothing to do: the {issuer_label} issues the new version and you get an email when it is there."


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

        days_left = _days_left(certificate.expires_on, self.clock())
        notice = self._notice(
            notice_kind, vault, certificate, kind, summary, next_step,
            discriminator=entry.get("from_version", ""), renewal=renewal,
            csr_pem=operation.csr_pem if waiting_for_person else None,
            next_reminder=self._next_reminder(certificate.expires_on, days_left) if waiting_for_person else None,
        )
        if not self.journal.claim_notice(vault.name, notice.id, notice.kind, self.clock()):
            logger.info("certificate=%s vault=%s: renewal already announced", certificate.name, vault.name)
            return
        if waiting_for_person:
            self._skip_reminder_reached(vault, certificate.name, entry.get("from_version"), days_left)
        self.sink.emit(notice)
        outcome.notices.append(notice)
        self.journal.merge(vault.name, _renewal_key(certificate.name), {"state": "announced", "announced_at": iso(self.clock())})

    def _announce_renewed(
        self, outcome: Outcome, vault: VaultConfig, certificate: CertificateView, entry: dict, started_by: str
    ) -> None:
        kind = self.vaults.certificate_kind(vault, certificate.policy)
        if not self.journal.claim_notice(vault.name, notice_id(kinds.RENEWED, vault.name, certificate.certificate_id),
                                         kinds.RENEWED, self.clock()):
            logger.info("certificate=%s vault=%s: renewal of version %s already announced", certificate.name,
                        vault.name, certificate.version)
            self._close_renewal(vault, certificate)
            return
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
        self.sink.emit(notice)
        outcome.notices.append(notice)
        self.journal.append_history(vault.name, certificate.name, "renewed", f"new version {certificate.version}", self.clock())
        self._close_renewal(vault, certificate)

    def _close_renewal(self, vault: VaultConfig, certificate: CertificateView) -> None:
        entry = self.journal.read(vault.name, _renewal_key(certificate.name))
        if entry and entry[0].get("state") in OPEN_STATES + ("claimed",) and entry[0].get("from_version") != certificate.version:
            self.journal.merge(vault.name, _renewal_key(certificate.name),
                               {"state": "completed", "new_version": certificate.version, "completed_at": iso(self.clock())})

    def _record_failure(
        self, outcome: Outcome, vault: VaultConfig, certificate: CertificateView, entry: dict,
        code: str | None, message: str,
    ) -> None:
        kind = entry.get("kind") or self.vaults.certificate_kind(vault, certificate.policy)
        remedy = remedy_for(code, message, certificate)
        self.journal.merge(vault.name, _renewal_key(certificate.name),
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
        if self.journal.claim_notice(vault.name, notice.id, notice.kind, self.clock()):
            self.sink.emit(notice)
            outcome.notices.append(notice)

    def _notify_once(
        self, outcome: Outcome, vault: VaultConfig, certificate: CertificateView, kind: str, mode: str,
        notice_kind: str, reason: str,
    ) -> None:
        if self.settings.dry_run:
            return
        expired_on = f"{certificate.expires_on:%Y-%m-%d %H:%M} UTC" if certificate.expires_on else "an unknown date"
        summary = f"{certificate.name} in {vault.name} expired on {expired_on}."
        next_step = {
            "notify": "Renew it by hand now: services that use it are failing TLS handshakes.",
            "csr": "A new CSR is waiting or will be made; get it signed and merge it as soon as you can.",
        }.get(mode, "The app is renewing it; you get an email when the new version is there.")
        notice = self._notice(notice_kind, vault, certificate, kind, summary, next_step, discriminator=certificate.version)
        if self.journal.claim_notice(vault.name, notice.id, notice_kind, self.clock()):
            self.sink.emit(notice)
            outcome.notices.append(notice)
            self.journal.append_history(vault.name, certificate.name, notice_kind, reason, self.clock())

    def _notify_manual_renewal(
        self, outcome: Outcome, vault: VaultConfig, certificate: CertificateView, kind: str, mode: str
    ) -> None:
        if self.settings.dry_run or (certificate.expires_on and self.clock() >= certificate.expires_on):
            # Once expired, the expired notice covers it, so reminders stop.
            return
        days_left = _days_left(certificate.expires_on, self.clock())
        notice_kind, discriminator = kinds.MANUAL_RENEWAL_DUE, certificate.version
        threshold = _reminder_threshold(days_left, self.settings.reminder_days)
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
        if self.journal.claim_notice(vault.name, notice.id, notice_kind, self.clock()):
            self.sink.emit(notice)
            outcome.notices.append(notice)

    def _skip_reminder_reached(self, vault: VaultConfig, name: str, version: str | None, days_left: int | None) -> None:
        """Mark the reminder of the threshold already reached as sent, so the first notice is not followed by one."""
        threshold = _reminder_threshold(days_left, self.settings.reminder_days)
        if threshold is not None:
            reminder = notice_id(kinds.REMINDER, vault.name, name, f"{version}|{threshold}")
            self.journal.claim_notice(vault.name, reminder, kinds.REMINDER, self.clock())

    def _remind_csr(self, outcome: Outcome, vault: VaultConfig, entry: dict, operation: OperationView) -> None:
        expires_on = _parse_time(entry.get("from_expires_on")) if entry.get("from_expires_on") else None
        days_left = _days_left(expires_on, self.clock())
        threshold = _reminder_threshold(days_left, self.settings.reminder_days)
        if threshold is None or self.settings.dry_run:
            return
        certificate = self.vaults.get_certificate(vault, entry["certificate"])
        if certificate is None:
            return
        certificate = _version_in_use(certificate, entry)
        if days_left is not None and days_left < 0:
            self._announce_expired_while_waiting(outcome, vault, certificate, entry, operation)
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
        if self.journal.claim_notice(vault.name, notice.id, kinds.REMINDER, self.clock()):
            self.sink.emit(notice)
            outcome.notices.append(notice)

    def _announce_expired_while_waiting(
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
        if self.journal.claim_notice(vault.name, notice.id, kinds.EXPIRED, self.clock()):
            self.sink.emit(notice)
            outcome.notices.append(notice)

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
            days_left=_days_left(certificate.expires_on, self.clock()),
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

    def _previous_version(self, vault: VaultConfig, certificate: CertificateView) -> CertificateView | None:
        """Return the version made just before the current one, from the version list."""
        client = self.vaults.client(vault)
        older = [
            item for item in client.list_properties_of_certificate_versions(certificate.name)
            if item.version != certificate.version and item.created_on is not None
            and (certificate.created_on is None or item.created_on <= certificate.created_on)
        ]
        if not older:
            return None
        newest = max(older, key=lambda item: item.created_on)
        return CertificateView(
            name=certificate.name, certificate_id=newest.id, version=newest.version, enabled=bool(newest.enabled),
            not_before=newest.not_before, expires_on=newest.expires_on, created_on=newest.created_on,
            thumbprint=newest.x509_thumbprint.hex().upper() if newest.x509_thumbprint else None,
            subject=None, dns_names=(), tags=newest.tags or {}, policy=None,
        )


def _version_in_use(certificate: CertificateView, entry: dict) -> CertificateView:
    """Return the certificate as its users see it: while a new version is pending, the version it replaces."""
    if certificate.expires_on is not None or not entry.get("from_expires_on"):
        return certificate
    return replace(
        certificate,
        version=entry.get("from_version") or certificate.version,
        expires_on=_parse_time(entry["from_expires_on"]),
        thumbprint=entry.get("from_thumbprint"),
    )


def _renewal_key(name: str) -> str:
    return f"renewal~{name.lower()}"


def _thumbprint_of(certificate: CertificateView) -> str | None:
    return certificate.thumbprint


def _parse_time(value: object) -> datetime:
    if not value:
        return datetime.min.replace(tzinfo=timezone.utc)
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def _days_left(expires_on: datetime | None, now: datetime) -> int | None:
    if expires_on is None:
        return None
    return int((expires_on - now).total_seconds() // 86400)


def _reminder_threshold(days_left: int | None, reminder_days: Iterable[int]) -> int | None:
    """Return the smallest reminder day that days_left has reached, or None."""
    if days_left is None:
        return None
    reached = [days for days in reminder_days if days_left <= days]
    return min(reached) if reached else None
