"""The emulator's own HTTP API under ``/_emulator/``, for tests and people that are not in the same process.

It needs no authentication: the emulator listens on loopback only.
"""

from __future__ import annotations

import base64
import json
from typing import TYPE_CHECKING

from emulators.acs_email.errors import AcsError, bad_request
from emulators.acs_email.transport import Response

if TYPE_CHECKING:
    from emulators.acs_email.server import AcsEmailEmulator


def handle_control_request(emulator: AcsEmailEmulator, method: str, path: str, body: bytes) -> Response:
    """Serve ``POST /_emulator/faults``, ``GET /_emulator/messages``, ``POST /_emulator/reset``, ``GET /_emulator/requests``."""
    try:
        if (method, path) == ("POST", "/_emulator/faults"):
            return _inject_fault(emulator, body)
        if (method, path) == ("GET", "/_emulator/messages"):
            return Response(200, {"value": [message_to_json(message) for message in emulator.messages]})
        if (method, path) == ("POST", "/_emulator/reset"):
            emulator.reset()
            return Response(204)
        if (method, path) == ("GET", "/_emulator/requests"):
            return Response(200, {"value": emulator.request_log()})
        raise AcsError(404, "NotFound", f"No emulator control route for {method} {path}.")
    except AcsError as error:
        return Response.from_error(error)


def message_to_json(message: dict) -> dict:
    """Return a stored message with attachment content in base64 and times in ISO 8601, for JSON."""
    result = dict(message)
    result["received_at"] = message["received_at"].isoformat()
    result["attachments"] = [
        {**attachment, "content": base64.b64encode(attachment["content"]).decode()}
        for attachment in message["attachments"]
    ]
    return result


def _inject_fault(emulator: AcsEmailEmulator, body: bytes) -> Response:
    try:
        request = json.loads(body or b"{}")
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise bad_request(f"The body is not valid JSON: {exc}.") from exc
    if not isinstance(request, dict):
        raise bad_request('Send a JSON object such as {"route": "send", "kind": 429, "count": 1}.')

    route, kind = request.get("route"), request.get("kind")
    count, retry_after = request.get("count", 1), request.get("retry_after")
    try:
        emulator.inject_fault(route, kind, count=count, retry_after=retry_after)
    except ValueError as exc:
        raise bad_request(str(exc)) from exc
    return Response(201, {"route": route, "kind": kind, "count": count, "retry_after": retry_after})
