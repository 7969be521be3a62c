"""The renewal service: what the Event Grid functions, the timer and the operator CLI run.

Each step reads Key Vault first, then claims its work in the journal, then acts, then emits its notice. A
delivery that finds a step half done (started but not announced) finishes it, so a crash or a redelivery
neither loses a notice nor starts a second renewal.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import Callable

from shared import decision as decisions
from shared.announce import RETRY_FAILED_AFTER, Announcer, parse_time
from shared.decision import Decision, decide, due_time, effective_mode
from shared.events import EXPIRED, NEAR_EXPIRY, NEW_VERSION_CREATED, CertificateEvent
from shared.journal import OPEN_STATES, Journal, email_key, renewal_key
from shared.keyvault import (
    OTHER_CA,
    CertificateView,
    KeyVaultError,
    OperationInProgress,
    OperationView,
    VaultClients,
)
from shared.notices import NOTICE_QUEUE, Notice, NoticeSink, iso
from shared.outcome import Outcome, SweepReport
from shared.settings import Settings, VaultConfig

logger = logging.getLogger(__name__)

# A claim or a started renewal older than this belongs to a delivery that died, so another may take over.
# Event Grid retries a failed delivery after 10 s, 30 s, 1 min, 5 min, 10 min and then longer, so its later
# retries, and the hourly timer, come after this.
STALE_CLAIM_AFTER = timedelta(minutes=5)

# The email function takes a queue message within seconds to minutes. A notice that has not reached it after
# this long was lost between the journal and the queue, so the timer queues it again, at most MAX_RESENDS times.
RESEND_NOTICE_AFTER = timedelta(minutes=30)
MAX_RESENDS = 3

def utc_now() -> datetime:
    """Return the current time in UTC."""
    return datetime.now(timezone.utc)


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
        self.announce = Announcer(settings, vaults, journal, sink, clock)
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
            outcome.decisions.append((vault.name, name, Decision(decisions.SKIP, "not found in the vault")))
            return outcome

        entry = self.journal.read(vault.name, renewal_key(name))
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
            self.announce.expired(outcome, vault, certificate, kind, mode, decision.reason)
        if decision.action == decisions.NOTIFY:
            self.announce.manual_renewal_due(outcome, vault, certificate, kind, mode)
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

        entry = self.journal.read(vault.name, renewal_key(name))
        if entry and entry[0].get("state") in OPEN_STATES and entry[0].get("from_version") != certificate.version:
            self.announce.renewed(outcome, vault, certificate, entry[0], entry[0].get("started_by", "certrenew"))
            return outcome
        if entry and entry[0].get("state") == "completed" and entry[0].get("new_version") == certificate.version:
            logger.info("certificate=%s vault=%s: version %s was already confirmed", name, vault.name, certificate.version)
            return outcome

        previous = self._previous_version(vault, certificate)
        if previous is None:
            logger.info("certificate=%s vault=%s: first version %s, nothing renewed", name, vault.name, certificate.version)
            return outcome
        started_by = "keyvault-autorenew" if certificate.policy and certificate.policy.auto_renews else "other"
        self.announce.renewed(
            outcome,
            vault,
            certificate,
            {"from_version": previous.version, "from_expires_on": iso(previous.expires_on),
             "from_thumbprint": previous.thumbprint},
            started_by,
        )
        return outcome

    def check_operations(self) -> Outcome:
        """Check every renewal still waiting for Key Vault, a CA or a person, and report what changed.

        It also queues again the notices that never reached the email function.
        """
        outcome = self.resend_lost_notices()
        for vault_name, key, entry in self.journal.entries("renewal~", OPEN_STATES):
            vault = self.settings.vault_by_name(vault_name)
            if vault is None:
                logger.warning("Journal entry %s names vault %s, which is no longer configured", key, vault_name)
                continue
            outcome.extend(self._check_operation(vault, entry))
        return outcome

    def resend_lost_notices(self) -> Outcome:
        """Queue again each notice that the journal counts as queued but the email function never received.

        The output binding writes the queue only after the function returns, so a notice can be recorded and
        then lost. The email function sends one email per notice id, so a notice queued twice is emailed once.
        Without email settings nothing consumes the queue, so nothing is sent again.
        """
        outcome = Outcome()
        if not (self.settings.acs_endpoint or self.settings.acs_connection_string):
            return outcome
        now = self.clock()
        for vault_name, key, fields in self.journal.entries("notice~", ("queued",)):
            notice_id = key.removeprefix("notice~")
            if self.journal.read(vault_name, email_key(notice_id)) is not None:
                self.journal.merge(vault_name, key, {"state": "handed-over"})
                continue
            if now - parse_time(fields.get("at")) < RESEND_NOTICE_AFTER or not fields.get("message"):
                continue
            resends = int(fields.get("resends") or 0)
            if resends >= MAX_RESENDS:
                logger.error("notice=%s vault=%s never reached the email function after %d resends; check the "
                             "queue %s and the function's logs", notice_id, vault_name, resends, NOTICE_QUEUE)
                self.journal.merge(vault_name, key, {"state": "lost"})
                continue
            notice = Notice.from_json(fields["message"])
            logger.warning("notice=%s vault=%s certificate=%s did not reach the email function; queuing it again",
                           notice_id, vault_name, notice.certificate.name)
            self.sink.emit(notice)
            outcome.notices.append(notice)
            self.journal.merge(vault_name, key, {"at": now.isoformat(), "resends": resends + 1})
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
        entry = self.journal.read(vault.name, renewal_key(name))
        return entry[0] if entry and entry[0].get("state") in OPEN_STATES else None

    def record_cancelled(self, vault: VaultConfig, name: str, detail: str) -> None:
        """Close the certificate's open renewal after an operator cancelled its operation, and log it in the history.

        Without this the timer would find the operation gone and report the renewal as failed.
        """
        if self.open_renewal(vault, name) is not None:
            self.journal.merge(vault.name, renewal_key(name), {"state": "cancelled", "cancelled_at": iso(self.clock())})
        self.journal.append_history(vault.name, name, "operation-cancelled", detail, self.clock())

    # Steps ----------------------------------------------------------------------------------------------

    def _listed_as_due(self, vault: VaultConfig, properties: object, now: datetime) -> bool:
        enabled = getattr(properties, "enabled", True)
        expires_on = getattr(properties, "expires_on", None)
        tags = getattr(properties, "tags", None) or {}
        if expires_on is None:
            # The latest version is pending, failed or cancelled. An open renewal is the operation
            # check's work; anything else gets a look, so a failed renewal is retried in time.
            entry = self.journal.read(vault.name, renewal_key(properties.name))
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
        entry = self.journal.read(vault.name, renewal_key(properties.name))
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
            self.announce.failure(outcome, vault, certificate, claim, exc.code, str(exc))
            return
        except BaseException:
            self._release(vault, certificate.name)
            raise

        claim.update(state="started", request_id=operation.request_id, started_at=iso(self.clock()))
        self.journal.merge(vault.name, renewal_key(certificate.name), claim)
        self.journal.append_history(
            vault.name, certificate.name, "renewal-started", f"{decision.reason}; operation {operation.status}", self.clock()
        )
        self.announce.started(outcome, vault, certificate, claim, operation)

    def _claim_renewal(
        self, vault: VaultConfig, certificate: CertificateView, kind: str, decision: Decision, force: bool
    ) -> dict | None:
        """Claim the renewal of the certificate's current version, or return the claim already open for it.

        Returns None when another delivery has a fresh claim, or when the renewal failed recently.
        """
        key = renewal_key(certificate.name)
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
            if state == "failed" and now - parse_time(fields.get("failed_at")) < RETRY_FAILED_AFTER:
                logger.info(
                    "certificate=%s vault=%s: the last renewal failed at %s; the next try is after %s",
                    certificate.name, vault.name, fields.get("failed_at"), RETRY_FAILED_AFTER,
                )
                return None
        return claim if self.journal.replace(vault.name, key, claim, etag) else None

    def _is_stale(self, claimed_at: object) -> bool:
        """Return True when a claim or a started renewal is old enough that its delivery must have died."""
        return self.clock() - parse_time(claimed_at) >= STALE_CLAIM_AFTER

    def _release(self, vault: VaultConfig, name: str) -> None:
        """Give a claim back after a transient failure, so the redelivery can take it at once."""
        self.journal.merge(vault.name, renewal_key(name), {"state": "released"})

    def _resume(self, outcome: Outcome, vault: VaultConfig, certificate: CertificateView, entry: dict) -> None:
        if entry.get("state") == "started":
            operation = self.vaults.get_operation(vault, certificate.name)
            if operation is not None:
                self.announce.started(outcome, vault, certificate, entry, operation)
        else:
            logger.info("certificate=%s vault=%s: renewal already started and announced", certificate.name, vault.name)

    def _follow_pending(self, vault: VaultConfig, certificate: CertificateView, operation: OperationView) -> Outcome:
        """Follow a pending operation: one this app started, or one started outside it (a person, a script)."""
        entry = self.journal.read(vault.name, renewal_key(certificate.name))
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
            self.journal.replace(vault.name, renewal_key(certificate.name), adopted, current)
            if current else self.journal.insert(vault.name, renewal_key(certificate.name), adopted)
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
                self.announce.started(outcome, vault, certificate, entry, operation)
            if entry.get("kind") == OTHER_CA:
                self.announce.csr_reminder(outcome, vault, entry, operation)
            return outcome

        certificate = self.vaults.get_certificate(vault, name)
        if certificate is None:
            self.journal.merge(vault.name, renewal_key(name), {"state": "gone"})
            return outcome
        status = operation.status.lower() if operation else "deleted"
        outcome.decisions.append((vault.name, name, Decision(decisions.SKIP, f"the operation is {status}")))
        if operation is not None and status in ("failed", "cancelled"):
            failed_from = self._newest_completed(vault, certificate) if certificate.expires_on is None else certificate
            self.announce.failure(outcome, vault, failed_from or certificate, entry, operation.error_code,
                                 operation.error_message or f"The certificate operation was {status}.")
        elif certificate.expires_on is not None and certificate.version != entry.get("from_version"):
            self.announce.renewed(outcome, vault, certificate, entry, entry.get("started_by", "certrenew"))
        elif operation is None:
            self.announce.failure(outcome, vault, certificate, entry, "PendingCertificateNotFound",
                                 "The pending operation was deleted before a new version was made.")
        return outcome

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
