"""Faults that tests queue on the emulator's routes, and the error responses they produce."""

from __future__ import annotations

from dataclasses import dataclass

from emulators.acs_email.errors import AcsError

ROUTES = ("send", "poll")
# HTTP faults respond to the request with this status. Status faults ("failed", "canceled") instead end the
# polled operation with that terminal status, as when ACS drops a message it had accepted.
HTTP_FAULTS = {
    "send": (429, 500, 503),
    "poll": (404, 429, 500, 503),
}
STATUS_FAULTS = {"failed": "Failed", "canceled": "Canceled"}
# ACS sends Retry-After with 429 responses, and the SDK retries a POST on 429 only when it is present.
DEFAULT_THROTTLE_RETRY_AFTER = 1
_ERROR_CODES = {
    404: ("NotFound", "Message not found. The operation {operation} is unknown to the status service."),
    429: ("TooManyRequests", "Too many requests for this resource. Wait for Retry-After seconds and retry."),
    500: ("InternalServerError", "The service hit an internal error (fault injected by the emulator)."),
    503: ("ServiceUnavailable", "The service is unavailable (fault injected by the emulator). Retry later."),
}


@dataclass(frozen=True)
class Fault:
    """One queued fault for the next request on a route."""

    route: str
    kind: int | str
    retry_after: float | None = None

    def to_error(self, operation_id: str = "") -> AcsError:
        """Build the error response of an HTTP fault."""
        assert isinstance(self.kind, int), "status faults do not produce an error response"
        code, message = _ERROR_CODES[self.kind]
        retry_after = self.retry_after
        if retry_after is None and self.kind == 429:
            retry_after = DEFAULT_THROTTLE_RETRY_AFTER
        headers = {"Retry-After": _format_seconds(retry_after)} if retry_after is not None else {}
        return AcsError(self.kind, code, message.format(operation=operation_id or "?"), headers)


def parse_fault(route: str, kind: object, retry_after: object = None) -> Fault:
    """Check a fault description from the Python or HTTP API and return it; raise ValueError when invalid."""
    if route not in ROUTES:
        raise ValueError(f"Fault route {route!r} is not known. Use one of: {', '.join(ROUTES)}.")
    normalized = _normalize_kind(kind)
    allowed = HTTP_FAULTS[route] + (tuple(STATUS_FAULTS) if route == "poll" else ())
    if normalized not in allowed:
        choices = ", ".join(str(choice) for choice in allowed)
        raise ValueError(f"Fault kind {kind!r} is not available on route {route!r}. Use one of: {choices}.")

    if retry_after is not None:
        if isinstance(retry_after, bool) or not isinstance(retry_after, (int, float)) or retry_after < 0:
            raise ValueError(f"retry_after must be a number of seconds >= 0, not {retry_after!r}.")
    return Fault(route=route, kind=normalized, retry_after=retry_after)


def _normalize_kind(kind: object) -> int | str:
    if isinstance(kind, bool):
        return str(kind)
    if isinstance(kind, int):
        return kind
    if isinstance(kind, str):
        text = kind.strip().lower()
        return int(text) if text.isdigit() else text
    return repr(kind)


def _format_seconds(seconds: float) -> str:
    # Retry-After is a whole number of seconds in HTTP, so round up to keep at least the requested wait.
    whole = int(seconds)
    return str(whole if whole == seconds else whole + 1)
