"""Error responses of the emulator, in the body shape the ACS Email REST API uses."""

from __future__ import annotations

from collections.abc import Mapping


class AcsError(Exception):
    """A request that the emulator rejects with an ACS error body instead of processing it."""

    def __init__(
        self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})

    def body(self) -> dict:
        """Return the ``{"error": {"code", "message"}}`` body that ACS sends with an error status."""
        return {"error": {"code": self.code, "message": self.message}}


def bad_request(message: str) -> AcsError:
    """Build a 400 for a message payload that fails validation."""
    # NOTE: the code ACS puts in a validation error body is not documented in the REST spec;
    # "BadRequest" is the generic Azure one. Callers should branch on the status, not this code.
    return AcsError(400, "BadRequest", message)
