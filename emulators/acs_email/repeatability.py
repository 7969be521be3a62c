"""Repeatable requests (OASIS Repeatable Requests 1.0) as ACS documents them for the Email send API.

A client that sends ``Repeatability-Request-Id`` (a GUID) and ``Repeatability-First-Sent`` (IMF-fixdate)
can resend a POST safely. ACS keeps requests for 5 minutes and responds to a resend as follows
(learn.microsoft.com/rest/api/communication/repeatable-requests):
- 400 when a header is malformed or the body differs from the first request;
- 412 when First-Sent is older than 5 minutes;
- 409 while the first request is still being processed;
- the first response again when it was 2xx or 4xx, and a fresh execution after a 5xx.
"""

from __future__ import annotations

import datetime
import email.utils
import hashlib
import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field

from emulators.acs_email.errors import AcsError

TRACKED_DURATION = datetime.timedelta(minutes=5)
REQUEST_ID_HEADER = "Repeatability-Request-Id"
FIRST_SENT_HEADER = "Repeatability-First-Sent"


@dataclass
class StoredResponse:
    """The response to a first request, kept to be sent again for a resend."""

    status: int
    body: dict | None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class _Entry:
    body_hash: str
    first_sent: datetime.datetime
    response: StoredResponse | None = None


class RepeatabilityTracker:
    """Remembers repeatable send requests and decides how to respond to a resend."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, _Entry] = {}

    def begin(self, headers: Mapping[str, str], body: bytes) -> tuple[str | None, StoredResponse | None]:
        """Start a repeatable request; return its id (None when not repeatable) and a stored response if any.

        Raises AcsError for the rejections listed in the module docstring.
        """
        request_id = headers.get(REQUEST_ID_HEADER)
        first_sent_text = headers.get(FIRST_SENT_HEADER)
        if request_id is None and first_sent_text is None:
            return None, None
        request_id, first_sent = _parse_headers(request_id, first_sent_text)

        body_hash = hashlib.sha256(body).hexdigest()
        with self._lock:
            self._forget_expired()
            entry = self._entries.get(request_id)
            if entry is None:
                self._entries[request_id] = _Entry(body_hash=body_hash, first_sent=first_sent)
                return request_id, None
            if entry.body_hash != body_hash:
                raise AcsError(
                    400, "BadRequest", f"{REQUEST_ID_HEADER} {request_id} was first sent with another body."
                )
            if entry.response is None:
                raise AcsError(409, "Conflict", f"The first request with {REQUEST_ID_HEADER} {request_id} is still being processed.")
            return request_id, entry.response

    def finish(self, request_id: str, response: StoredResponse) -> None:
        """Record the response to a first request; a 5xx is forgotten so that a resend runs again."""
        with self._lock:
            entry = self._entries.get(request_id)
            if entry is None:
                return
            if response.status >= 500:
                del self._entries[request_id]
            else:
                entry.response = response

    def clear(self) -> None:
        """Forget every tracked request."""
        with self._lock:
            self._entries.clear()

    def _forget_expired(self) -> None:
        cutoff = datetime.datetime.now(datetime.timezone.utc) - TRACKED_DURATION
        for request_id in [key for key, entry in self._entries.items() if entry.first_sent < cutoff]:
            del self._entries[request_id]


def _parse_headers(request_id: str | None, first_sent_text: str | None) -> tuple[str, datetime.datetime]:
    try:
        parsed_id = str(uuid.UUID(request_id or ""))
    except ValueError as exc:
        raise AcsError(400, "BadRequest", f"{REQUEST_ID_HEADER} {request_id!r} is not a GUID.") from exc
    try:
        first_sent = email.utils.parsedate_to_datetime(first_sent_text or "")
    except (TypeError, ValueError) as exc:
        raise AcsError(
            400, "BadRequest", f"{FIRST_SENT_HEADER} {first_sent_text!r} is not an IMF-fixdate (RFC 7231) time."
        ) from exc
    if first_sent.tzinfo is None:
        first_sent = first_sent.replace(tzinfo=datetime.timezone.utc)

    if datetime.datetime.now(datetime.timezone.utc) - first_sent > TRACKED_DURATION:
        raise AcsError(
            412,
            "PreconditionFailed",
            f"{FIRST_SENT_HEADER} {first_sent_text} is more than 5 minutes ago; the request is not repeated. "
            "Check the client clock, or send a new request with a new id.",
        )
    return parsed_id, first_sent
