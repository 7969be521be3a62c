"""The body of the queue-triggered email function: one notice message in, one email out, or a clear failure."""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path

from shared.email.delivery import DeliveryResult, NoticeMailer
from shared.email.errors import EmailRejected, EmailUnavailable, NoRecipients
from shared.email.sending import EmailSender
from shared.journal import JournalUnavailable
from shared.keyvault import KeyVaultUnavailable
from shared.notices import InvalidNotice, Notice
from shared.runtime import Runtime, get_runtime
from shared.settings import Settings

logger = logging.getLogger(__name__)

# The Functions host moves a message to the poison queue after this many failed deliveries. It is
# extensions.queues.maxDequeueCount in host.json, read so that the log names the last try.
_HOST_JSON = Path(__file__).resolve().parents[2] / "host.json"
DEFAULT_MAX_DEQUEUE_COUNT = 5

_lock = threading.Lock()
_sender_for: tuple[Runtime, Settings, EmailSender] | None = None
_sender_override: EmailSender | None = None


def handle_notice_message(body: str, dequeue_count: int | None = None) -> str | None:
    """Send the email of one notice queue message.

    Returns the message to put on the poison queue at once when no redelivery can help (an invalid notice, or
    ACS rejecting the sender), or None. Raises when a redelivery may help, so the queue tries again and moves
    the message to the poison queue after its last try.
    """
    try:
        notice = Notice.from_json(body)
    except InvalidNotice as exc:
        logger.error("Moved a queue message to the poison queue because it is not a notice: %s", exc)
        return body

    runtime = get_runtime()
    mailer = NoticeMailer(runtime.settings, runtime.vaults, runtime.journal, email_sender(runtime), clock=runtime.clock)
    try:
        result: DeliveryResult = mailer.deliver(notice)
    except EmailRejected as exc:
        logger.error("notice=%s: moved to the poison queue: %s", notice.id, exc)
        return body
    except (EmailUnavailable, NoRecipients, KeyVaultUnavailable, JournalUnavailable) as exc:
        _log_failed_try(notice, dequeue_count, exc)
        raise
    if not result.sent:
        logger.info("notice=%s: delivered again, email already %s", notice.id, result.state)
    return None


def email_sender(runtime: Runtime) -> EmailSender:
    """Return the process's EmailSender for the runtime's settings, built once."""
    global _sender_for
    with _lock:
        if _sender_override is not None:
            return _sender_override
        if _sender_for is None or _sender_for[0] is not runtime or _sender_for[1] is not runtime.settings:
            _sender_for = (runtime, runtime.settings, EmailSender(runtime.settings))
        return _sender_for[2]


def set_email_sender(sender: EmailSender | None) -> None:
    """Replace the EmailSender: for tests and the demo, which pass client options such as fast retries."""
    global _sender_override
    with _lock:
        _sender_override = sender


def max_dequeue_count() -> int:
    """Return host.json's extensions.queues.maxDequeueCount, or the host's default of 5."""
    try:
        host = json.loads(_HOST_JSON.read_text(encoding="utf-8"))
        return int(host["extensions"]["queues"]["maxDequeueCount"])
    except (OSError, ValueError, KeyError, TypeError):
        return DEFAULT_MAX_DEQUEUE_COUNT


def _log_failed_try(notice: Notice, dequeue_count: int | None, error: Exception) -> None:
    last = max_dequeue_count()
    ids = f"notice={notice.id} certificate={notice.certificate.name} vault={notice.vault_name}"
    if dequeue_count is not None and dequeue_count >= last:
        logger.error("%s: try %d of %d failed; the queue moves the notice to the poison queue: %s",
                     ids, dequeue_count, last, error)
    else:
        logger.warning("%s: try %s of %d failed; the queue delivers it again: %s", ids, dequeue_count or "?", last, error)
