"""Exactly one email per notice: recipients, rendering, and the journal entry that records ids ACS accepted.

The queue delivers a notice at least once, and the same notice can also be queued twice. The journal entry
`email~<notice id>` decides who sends, and moves through these states:

- `claimed`: one delivery holds a lease on the notice and is sending. Another delivery waits for it a short
  while, then raises so the queue tries again later. A lease that ran out (the process died) is taken over.
- `retrying`: a send failed before ACS accepted it. The next delivery takes over.
- `rejected`: ACS rejected the message for a reason only a person can fix; the notice went to the poison
  queue. A delivery after the fix takes over.
- `accepted`: ACS accepted every message, but a final status could not be read.
- `succeeded` or `failed`: ACS reported the final status of every message.

Once ACS has accepted a message (202), it is never sent again: its operation id is recorded in the entry's
`messages` list. A crash between the 202 and that record is covered by the operation id, which is derived from
the notice, so the resend carries the same Operation-Id and ACS refuses it with 409.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

from shared.email.errors import EmailRejected, EmailUnavailable, NoRecipients
from shared.email.recipients import Contact, Recipient, resolve_recipients, split_into_messages
from shared.email.render import RenderedEmail, render_notice
from shared.email.sending import (
    CANCELED,
    FAILED,
    SUCCEEDED,
    SUPPRESS_INVALID_ATTACHMENT,
    UNKNOWN,
    EmailSender,
    operation_id_for,
)
from shared.journal import Journal, email_key
from shared.keyvault import KeyVaultError, VaultClients, call_keyvault
from shared.notices import Notice
from shared.settings import Settings

logger = logging.getLogger(__name__)

CLAIMED, RETRYING, REJECTED, ACCEPTED = "claimed", "retrying", "rejected", "accepted"
# States in which the email went out (or ACS has it), so no delivery sends it again.
SENT_STATES = (ACCEPTED, SUCCEEDED.lower(), FAILED.lower())
# Longer than a send can take: the SDK's retries after 429 (Retry-After) and 5xx, plus the status polling.
LEASE = timedelta(minutes=10)
# How long a delivery waits for another delivery of the same notice to finish before it raises.
WAIT_FOR_OTHER_SECONDS = 30.0
WAIT_STEP_SECONDS = 0.5
# Bounds the claim loop when the entry keeps changing under it. Waiting for another delivery takes
# WAIT_FOR_OTHER_SECONDS / WAIT_STEP_SECONDS = 60 tries, so the bound is above that.
MAX_CLAIM_TRIES = 100


@dataclass(frozen=True)
class DeliveryResult:
    """Outcome of one delivery of a notice. `sent` is False when an earlier delivery sent the email."""

    notice_id: str
    sent: bool
    state: str
    operation_ids: tuple[str, ...] = ()
    recipients: int = 0


@dataclass
class NoticeMailer:
    """Turns notices into emails and sends each notice once, whatever the number of deliveries."""

    settings: Settings
    vaults: VaultClients
    journal: Journal
    sender: EmailSender
    clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)
    wait_for_other_seconds: float = WAIT_FOR_OTHER_SECONDS
    _sleep: Callable[[float], None] = field(default=time.sleep, repr=False)

    def deliver(self, notice: Notice) -> DeliveryResult:
        """Send the email of a notice, unless a delivery before this one sent it.

        Raises EmailUnavailable or NoRecipients when a later delivery may succeed, and EmailRejected when a
        person must fix a setting first.
        """
        require_email_settings(self.settings, notice.id)
        ids = f"notice={notice.id} certificate={notice.certificate.name} vault={notice.vault_name}"
        state = self._read(notice).get("state", "")
        if state in SENT_STATES:
            # Checked before the contacts are read, so that a duplicate delivery costs no Key Vault request.
            logger.info("%s: the email was sent before (state %s); not sending it again", ids, state)
            return DeliveryResult(notice.id, sent=False, state=state)
        email = render_notice(notice)
        recipients = self.recipients(notice, ids)

        claim = self._claim(notice, ids)
        if claim is None:
            entry = self._read(notice)
            return DeliveryResult(notice.id, sent=False, state=entry.get("state", ""))
        try:
            return self._send_all(notice, ids, email, split_into_messages(recipients), claim)
        except EmailRejected as exc:
            self._release(notice, claim, REJECTED, exc)
            raise
        except Exception as exc:
            self._release(notice, claim, RETRYING, exc)
            raise

    def recipients(self, notice: Notice, ids: str) -> list[Recipient]:
        """Resolve the recipients of a notice. Raises NoRecipients when no recipient is left and no fallback is set."""
        recipients = resolve_recipients(
            self._contacts(notice, ids),
            notice.certificate.owners,
            self.settings.email_recipients,
            self.settings.email_fallback,
            ids,
        )
        if not recipients:
            raise NoRecipients(
                f"Notice {notice.id} about certificate {notice.certificate.name} in vault {notice.vault_name} has "
                "no recipient: the vault has no certificate contacts, the certificate no valid certrenew-owners "
                "tag, and CERTRENEW_EMAIL_RECIPIENTS and CERTRENEW_EMAIL_FALLBACK are empty. Set "
                "CERTRENEW_EMAIL_FALLBACK, then move the notice back from the poison queue.",
                notice.id,
            )
        return recipients

    def _contacts(self, notice: Notice, ids: str) -> list[Contact]:
        vault = self.settings.vault_by_name(notice.vault_name)
        if vault is None:
            logger.warning("%s: the vault is not in CERTRENEW_VAULTS, so its certificate contacts are not read", ids)
            return []
        client = self.vaults.client(vault)
        try:
            contacts = call_keyvault(client.get_contacts, f"certificate contacts of vault {vault.name}")
        except KeyVaultError as exc:
            # 404: the vault has no contacts. 403: the identity may not read them. Neither stops the email.
            if exc.status != 404:
                logger.warning("%s: reading the certificate contacts failed, so they get no email: %s", ids, exc)
            return []
        return [Contact(contact.email, contact.name) for contact in contacts]

    def _send_all(
        self, notice: Notice, ids: str, email: RenderedEmail, groups: list[list[Recipient]], claim: dict[str, Any]
    ) -> DeliveryResult:
        messages: list[dict[str, Any]] = list(claim.get("messages") or [])
        for index, group in enumerate(groups):
            if index < len(messages):
                continue
            operation_id = operation_id_for(notice.id, index)
            poller = self.sender.begin(build_message(self.settings.email_sender, email, group), operation_id, notice.id)
            messages.append({"operation_id": operation_id, "recipients": len(group), "status": UNKNOWN})
            self.journal.merge(notice.vault_name, entry_key(notice.id), {"messages": messages, "lease_until": self._lease_end()})
            if poller is not None:
                messages[-1]["status"] = self.sender.wait(poller, notice.id)

        state = final_state(messages)
        self.journal.merge(notice.vault_name, entry_key(notice.id), {"state": state, "messages": messages, "sent_at": self.clock().isoformat()})
        self._log_result(notice, ids, state, messages)
        return DeliveryResult(
            notice.id, sent=True, state=state,
            operation_ids=tuple(message["operation_id"] for message in messages),
            recipients=sum(message["recipients"] for message in messages),
        )

    def _claim(self, notice: Notice, ids: str) -> dict[str, Any] | None:
        """Claim the notice for this delivery. Returns the claimed entry, or None when it was sent already."""
        token = uuid.uuid4().hex
        fresh = {"state": CLAIMED, "claim": token, "lease_until": self._lease_end(), "attempts": 1,
                 "kind": notice.kind, "certificate": notice.certificate.name, "messages": []}
        waited = 0.0
        for _ in range(MAX_CLAIM_TRIES):
            if self.journal.insert(notice.vault_name, entry_key(notice.id), fresh):
                return fresh
            current = self.journal.read(notice.vault_name, entry_key(notice.id))
            if current is None:
                continue
            fields, etag = current
            state = fields.get("state")
            if state in SENT_STATES:
                logger.info("%s: the email was sent before (state %s); not sending it again", ids, state)
                return None
            if state != CLAIMED or _lease_ended(fields.get("lease_until"), self.clock()):
                takeover = {**fields, "state": CLAIMED, "claim": token, "lease_until": self._lease_end(),
                         "attempts": int(fields.get("attempts", 0)) + 1}
                if self.journal.replace(notice.vault_name, entry_key(notice.id), takeover, etag):
                    logger.info("%s: taking over the email from state %s", ids, state)
                    return takeover
                continue
            if waited >= self.wait_for_other_seconds:
                raise EmailUnavailable(
                    f"Another delivery of notice {notice.id} has been sending its email for more than "
                    f"{self.wait_for_other_seconds:.0f} s; the queue tries again later.",
                    notice.id,
                )
            self._sleep(WAIT_STEP_SECONDS)
            waited += WAIT_STEP_SECONDS
        raise EmailUnavailable(f"The journal entry of notice {notice.id} kept changing; the queue tries again later.", notice.id)

    def _release(self, notice: Notice, claim: dict[str, Any], state: str, error: Exception) -> None:
        """Record a failed try, so that the next delivery takes over at once instead of waiting for the lease."""
        current = self._read(notice)
        if current.get("claim") != claim["claim"] or current.get("state") != CLAIMED:
            return
        self.journal.merge(notice.vault_name, entry_key(notice.id), {"state": state, "last_error": str(error)[:500]})

    def _read(self, notice: Notice) -> dict[str, Any]:
        current = self.journal.read(notice.vault_name, entry_key(notice.id))
        return current[0] if current else {}

    def _lease_end(self) -> str:
        return (self.clock() + LEASE).isoformat()

    def _log_result(self, notice: Notice, ids: str, state: str, messages: list[dict[str, Any]]) -> None:
        recipients = sum(message["recipients"] for message in messages)
        self.journal.append_history(
            notice.vault_name, notice.certificate.name, "email-" + state,
            f"{notice.kind} notice {notice.id} to {recipients} recipients in {len(messages)} messages", self.clock(),
        )
        if state == FAILED.lower():
            logger.error(
                "%s: ACS accepted the email but reported that it failed; it is not sent again. Operations: %s",
                ids, ", ".join(message["operation_id"] for message in messages if message["status"] != SUCCEEDED),
            )
            return
        logger.info("%s kind=%s: email %s, recipients=%d messages=%d", ids, notice.kind, state, recipients, len(messages))


def _lease_ended(lease_until: object, now: datetime) -> bool:
    try:
        return datetime.fromisoformat(str(lease_until)) <= now
    except ValueError:
        return True


def entry_key(notice_id: str) -> str:
    """Return the journal key of a notice's email."""
    return email_key(notice_id)


def final_state(messages: list[dict[str, Any]]) -> str:
    """Return the entry state for the final statuses of a notice's messages."""
    statuses = {message["status"] for message in messages}
    if statuses <= {SUCCEEDED}:
        return SUCCEEDED.lower()
    if statuses & {FAILED, CANCELED}:
        return FAILED.lower()
    return ACCEPTED


def build_message(sender: str, email: RenderedEmail, recipients: list[Recipient]) -> dict[str, Any]:
    """Build the JSON body of an ACS send request."""
    message: dict[str, Any] = {
        "senderAddress": sender,
        "recipients": {"to": [recipient.to_acs() for recipient in recipients]},
        "content": {"subject": email.subject, "plainText": email.plain_text, "html": email.html},
        "userEngagementTrackingDisabled": True,
    }
    if email.attachments:
        message["attachments"] = [attachment.to_acs() for attachment in email.attachments]
        message["headers"] = {SUPPRESS_INVALID_ATTACHMENT: "true"}
    return message


def require_email_settings(settings: Settings, notice_id: str) -> None:
    """Raise EmailRejected naming the setting when the ACS endpoint or the sender is missing."""
    if not settings.acs_endpoint and not settings.acs_connection_string:
        raise EmailRejected(
            "App setting CERTRENEW_ACS_ENDPOINT is missing. Set it to the endpoint of the Communication Services "
            "resource, for example https://contoso-certrenew.communication.azure.com.",
            notice_id, "CERTRENEW_ACS_ENDPOINT",
        )
    if not settings.email_sender:
        raise EmailRejected(
            "App setting CERTRENEW_EMAIL_SENDER is missing. Set it to a MailFrom address of a domain linked to the "
            "Communication Services resource, for example DoNotReply@contoso.com.",
            notice_id, "CERTRENEW_EMAIL_SENDER",
        )
