"""Local ACS Email service on HTTPS loopback that the real ``EmailClient`` talks to unchanged."""

from __future__ import annotations

import base64
import copy
import datetime
import logging
import re
import secrets
import shutil
import tempfile
import threading
import uuid
from collections import deque
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

from emulators.tls import LoopbackTls, create_loopback_tls, server_context
from emulators.acs_email.auth import check_authorization
from emulators.acs_email.control import handle_control_request
from emulators.acs_email.errors import AcsError, bad_request
from emulators.acs_email.faults import STATUS_FAULTS, Fault, parse_fault
from emulators.acs_email.transport import EmulatorHttpServer, Response
from emulators.acs_email.outbox import write_message_files
from emulators.acs_email.repeatability import RepeatabilityTracker, StoredResponse
from emulators.acs_email.validation import parse_send_payload

logger = logging.getLogger(__name__)

DEFAULT_SENDERS = ("DoNotReply@certrenew.test",)
LOOPBACK_HOST = "127.0.0.1"
TERMINAL_STATUSES = frozenset({"Succeeded", "Failed", "Canceled"})
# api-version values look like 2025-09-01 or 2024-07-01-preview; any such value is served the same way.
_API_VERSION = re.compile(r"^\d{4}-\d{2}-\d{2}(-preview)?$")
# How often serve_forever checks for shutdown; the 0.5 s default makes every stop() take that long.
_SHUTDOWN_POLL_SECONDS = 0.05
_OPERATION_PATH = re.compile(r"^/emails/operations/(?P<operation_id>[^/]+)$")


@dataclass
class _Operation:
    id: str
    status: str = "Running"
    polls: int = 0
    error: dict | None = None
    message: dict | None = field(default=None, repr=False)


class AcsEmailEmulator:
    """ACS Email on ``https://127.0.0.1:PORT``: accepts sends, serves operation status, keeps every message.

    ``access_key`` is the base64 key of the connection string (a random one when None). A sender must be
    one of ``allowed_senders``; its domain must be one of ``linked_domains`` (by default the domains of
    ``allowed_senders``). An operation returns ``Running`` to its first ``polls_until_done`` polls, then
    ``Succeeded``. ``poll_retry_after`` is the ``retry-after`` header in seconds on non-terminal responses.
    Accepted messages are written to ``outbox_dir`` (a new temporary folder when None, kept after stop).
    """

    def __init__(
        self,
        outbox_dir: str | None = None,
        access_key: str | None = None,
        allowed_senders: tuple[str, ...] | list[str] = DEFAULT_SENDERS,
        polls_until_done: int = 1,
        port: int | None = None,
        *,
        linked_domains: tuple[str, ...] | list[str] | None = None,
        poll_retry_after: int = 1,
    ) -> None:
        if polls_until_done < 0:
            raise ValueError(f"polls_until_done must be 0 or more, not {polls_until_done}.")
        self.access_key = access_key or base64.b64encode(secrets.token_bytes(32)).decode()
        self._access_key_bytes = base64.b64decode(self.access_key, validate=True)
        self.allowed_senders = tuple(allowed_senders)
        self.linked_domains = tuple(
            linked_domains if linked_domains is not None
            else dict.fromkeys(sender.rpartition("@")[2].lower() for sender in self.allowed_senders)
        )
        self.polls_until_done = polls_until_done
        self.poll_retry_after = poll_retry_after
        self.outbox_dir = outbox_dir or tempfile.mkdtemp(prefix="acs-email-outbox-")
        self._requested_port = port or 0

        self._lock = threading.Lock()
        self._operations: dict[str, _Operation] = {}
        self._messages: list[dict] = []
        self._faults: dict[str, deque[Fault]] = {"send": deque(), "poll": deque()}
        self._requests: list[dict] = []
        self._repeatability = RepeatabilityTracker()
        self._server: EmulatorHttpServer | None = None
        self._thread: threading.Thread | None = None
        self._tls_dir: str | None = None
        self._tls_files: LoopbackTls | None = None

    # Lifecycle

    def start(self) -> AcsEmailEmulator:
        """Generate the throwaway CA, bind the port and serve in a background thread."""
        if self._server is not None:
            raise RuntimeError("The emulator is already running; stop it before starting it again.")
        self._tls_dir = tempfile.mkdtemp(prefix="acs-email-tls-")
        self._tls_files = create_loopback_tls(self._tls_dir, "ACS Email emulator")
        context = server_context(self._tls_files)

        self._server = EmulatorHttpServer((LOOPBACK_HOST, self._requested_port), context, self._dispatch)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": _SHUTDOWN_POLL_SECONDS},
            name="acs-email-emulator",
            daemon=True,
        )
        self._thread.start()
        logger.info("ACS Email emulator started endpoint=%s outbox=%s", self.endpoint, self.outbox_dir)
        return self

    def stop(self) -> None:
        """Stop serving and delete the TLS files; the outbox and the stored messages stay."""
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join()
        if self._tls_dir is not None:
            shutil.rmtree(self._tls_dir, ignore_errors=True)
        logger.info("ACS Email emulator stopped endpoint=%s", self.endpoint)
        self._server = self._thread = None

    def __enter__(self) -> AcsEmailEmulator:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # What clients need

    @property
    def port(self) -> int:
        """The bound TCP port."""
        if self._server is None:
            raise RuntimeError("The emulator is not running; call start() first.")
        return self._server.server_address[1]

    @property
    def endpoint(self) -> str:
        """Endpoint URL without a trailing slash, as ``EmailClient`` takes it."""
        return f"https://{LOOPBACK_HOST}:{self.port}"

    @property
    def connection_string(self) -> str:
        """Connection string for ``EmailClient.from_connection_string`` (HMAC authentication)."""
        return f"endpoint={self.endpoint}/;accesskey={self.access_key}"

    @property
    def ca_bundle(self) -> str:
        """Path of the PEM CA certificate to pass as ``connection_verify``."""
        if self._tls_files is None:
            raise RuntimeError("The emulator is not running; call start() first.")
        return self._tls_files.ca_bundle

    # Inspection and control

    @property
    def messages(self) -> list[dict]:
        """Copies of the accepted messages, oldest first.

        Each has the keys of ``validation.parse_send_payload`` plus ``operation_id``, ``received_at`` (UTC
        datetime), ``eml_path`` and ``html_path``.
        """
        with self._lock:
            return copy.deepcopy(self._messages)

    def request_log(self) -> list[dict]:
        """Requests to the ACS routes, oldest first, as ``{"method", "path", "status"}`` (path without query)."""
        with self._lock:
            return [dict(entry) for entry in self._requests]

    def inject_fault(self, route: str, kind: int | str, count: int = 1, retry_after: float | None = None) -> None:
        """Respond to the next ``count`` requests on ``route`` ("send" or "poll") with a fault.

        ``kind`` is an HTTP status (send: 429, 500, 503; poll: 404, 429, 500, 503) or, on poll, "failed" or
        "canceled" to end the operation with that status. A poll 404 leaves the message stored, as when
        ACS loses track of a message it delivered. ``retry_after`` sets the Retry-After header in seconds;
        a 429 gets 1 s when it is None.
        """
        fault = parse_fault(route, kind, retry_after)
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ValueError(f"count must be a whole number of 1 or more, not {count!r}.")
        with self._lock:
            self._faults[route].extend([fault] * count)

    def reset(self) -> None:
        """Forget messages, operations, faults, repeatable requests and the request log; files stay."""
        with self._lock:
            self._operations.clear()
            self._messages.clear()
            for queue in self._faults.values():
                queue.clear()
            self._requests.clear()
        self._repeatability.clear()

    # Request handling, called from the server's worker threads

    def _dispatch(self, method: str, target: str, headers, body: bytes) -> Response:
        path = urlsplit(target).path
        if path.startswith("/_emulator/"):
            return handle_control_request(self, method, path, body)

        try:
            response = self._serve_acs(method, target, headers, body)
        except AcsError as error:
            logger.info("Rejected request method=%s path=%s status=%d code=%s", method, path, error.status, error.code)
            response = Response.from_error(error)
        with self._lock:
            self._requests.append({"method": method, "path": path, "status": response.status})
        return response

    def _serve_acs(self, method: str, target: str, headers, body: bytes) -> Response:
        split = urlsplit(target)
        operation_match = _OPERATION_PATH.match(split.path)
        if not (split.path == "/emails:send" and method == "POST") and not (operation_match and method == "GET"):
            raise AcsError(404, "NotFound", f"No ACS Email route for {method} {split.path}.")

        check_authorization(method, target, headers, body, self._access_key_bytes)
        api_version = _api_version(split.query)
        if operation_match:
            return self._poll(operation_match["operation_id"])
        return self._send(headers, body, api_version)

    def _send(self, headers, body: bytes, api_version: str) -> Response:
        self._raise_next_fault("send")
        request_id, stored = self._repeatability.begin(headers, body)
        if stored is not None:
            return Response(stored.status, stored.body, dict(stored.headers))

        try:
            response = self._accept(headers, body, api_version)
        except AcsError as error:
            response = Response.from_error(error)
        if request_id is not None:
            self._repeatability.finish(request_id, StoredResponse(response.status, response.body, response.headers))
        return response

    def _accept(self, headers, body: bytes, api_version: str) -> Response:
        message = parse_send_payload(body, self.allowed_senders, self.linked_domains)
        operation_id = _operation_id(headers.get("Operation-Id"))
        message["operation_id"] = operation_id
        message["received_at"] = datetime.datetime.now(datetime.timezone.utc)

        with self._lock:
            if operation_id in self._operations:
                raise AcsError(
                    409, "Conflict",
                    f"Operation {operation_id} already exists: its message was accepted before and is not sent "
                    f"again. Poll /emails/operations/{operation_id} for its status.",
                )
            operation = _Operation(id=operation_id, message=message)
            self._operations[operation_id] = operation
            self._messages.append(message)
        message["eml_path"], message["html_path"] = write_message_files(self.outbox_dir, message)
        logger.info("Accepted message operation=%s recipients=%d", operation_id, _recipient_count(message))

        host = headers.get("Host") or f"{LOOPBACK_HOST}:{self.port}"
        location = f"https://{host}/emails/operations/{operation_id}?api-version={api_version}"
        return Response(
            202,
            {"id": operation_id, "status": operation.status},
            {"Operation-Location": location, "retry-after": str(self.poll_retry_after)},
        )

    def _poll(self, operation_id: str) -> Response:
        fault = self._take_fault("poll")
        with self._lock:
            operation = self._operations.get(operation_id)
            if operation is None:
                raise AcsError(404, "NotFound", f"Message not found. Operation {operation_id} is unknown.")
            if fault is not None and isinstance(fault.kind, int):
                raise fault.to_error(operation_id)
            if fault is not None:
                _end_operation(operation, STATUS_FAULTS[fault.kind])
            _advance(operation, self.polls_until_done)
            result = {"id": operation.id, "status": operation.status}
            if operation.error is not None:
                result["error"] = operation.error

        headers = {} if operation.status in TERMINAL_STATUSES else {"retry-after": str(self.poll_retry_after)}
        return Response(200, result, headers)

    def _raise_next_fault(self, route: str) -> None:
        fault = self._take_fault(route)
        if fault is not None:
            raise fault.to_error()

    def _take_fault(self, route: str) -> Fault | None:
        with self._lock:
            return self._faults[route].popleft() if self._faults[route] else None


def _advance(operation: _Operation, polls_until_done: int) -> None:
    if operation.status in TERMINAL_STATUSES:
        return
    operation.polls += 1
    if operation.polls > polls_until_done:
        operation.status = "Succeeded"


def _end_operation(operation: _Operation, status: str) -> None:
    operation.status = status
    if status == "Failed":
        # The code and message of the REST spec's example for a failed send.
        operation.error = {"code": "EmailDropped", "message": "Email was dropped after several attempts to deliver."}
    else:
        operation.error = {"code": "Canceled", "message": "The send operation was canceled."}


def _api_version(query: str) -> str:
    values = parse_qs(query).get("api-version")
    if not values:
        raise bad_request("The api-version query parameter is missing. Add ?api-version=2025-09-01.")
    if not _API_VERSION.match(values[0]):
        raise bad_request(f"api-version {values[0]!r} is not of the form YYYY-MM-DD or YYYY-MM-DD-preview.")
    return values[0]


def _operation_id(header_value: str | None) -> str:
    if header_value is None:
        return str(uuid.uuid4())
    # NOTE: the REST spec types Operation-Id as a UUID; whether ACS rejects other strings is not documented.
    try:
        uuid.UUID(header_value)
    except ValueError as exc:
        raise bad_request(f"Operation-Id {header_value!r} is not a UUID.") from exc
    return header_value


def _recipient_count(message: dict) -> int:
    return sum(len(addresses) for addresses in message["recipients"].values())

