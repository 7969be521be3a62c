"""HTTPS transport of the emulator: a threading HTTP/1.1 server that hands each request to one function."""

from __future__ import annotations

import json
import logging
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from emulators.acs_email.errors import AcsError
from emulators.acs_email.validation import MAX_REQUEST_BYTES

logger = logging.getLogger(__name__)

# A client that opens a connection and sends nothing must not hold a worker thread for ever.
CONNECTION_TIMEOUT_SECONDS = 30
# Bodies over the 10 MB limit but under this size are read and dropped; larger ones end the connection.
_MAX_DRAINED_BYTES = 64 * 1024 * 1024


@dataclass
class Response:
    """Status, JSON body (None for an empty body) and extra headers of one response."""

    status: int
    body: dict | None = None
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_error(cls, error: AcsError) -> Response:
        """Build the response to an AcsError, with the ``x-ms-error-code`` header that ACS adds."""
        return cls(error.status, error.body(), {"x-ms-error-code": error.code, **error.headers})


Dispatch = Callable[[str, str, object, bytes], Response]


class EmulatorHttpServer(ThreadingHTTPServer):
    """ThreadingHTTPServer that does the TLS handshake in each worker thread, not in the accept loop."""

    daemon_threads = True
    block_on_close = False

    def __init__(self, address: tuple[str, int], context: ssl.SSLContext, dispatch: Dispatch) -> None:
        self.ssl_context = context
        self.dispatch = dispatch
        super().__init__(address, _RequestHandler)

    def finish_request(self, request: socket.socket, client_address) -> None:
        request.settimeout(CONNECTION_TIMEOUT_SECONDS)
        # Headers and body go out in separate writes; without this, Nagle and delayed ACK add ~40 ms each.
        request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            tls_socket = self.ssl_context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as exc:
            # Clients that do not trust the CA end up here; that is worth a line at debug level only.
            logger.debug("TLS handshake failed client=%s error=%s", client_address, exc)
            return
        # wrap_socket detached ``request``, so the server's own shutdown_request cannot close this one.
        try:
            self.RequestHandlerClass(tls_socket, client_address, self)
        finally:
            tls_socket.close()


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: EmulatorHttpServer

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def do_PATCH(self) -> None:
        self._handle()

    def log_message(self, format: str, *args: object) -> None:
        logger.debug("%s " + format, self.address_string(), *args)

    def _handle(self) -> None:
        body = self._read_body()
        if body is None:
            return
        try:
            response = self.server.dispatch(self.command, self.path, self.headers, body)
        except Exception:
            logger.exception("Request failed inside the emulator method=%s path=%s", self.command, self.path)
            response = Response.from_error(AcsError(500, "InternalServerError", "The emulator failed; see its log."))
        self._send(response)

    def _read_body(self) -> bytes | None:
        """Read the body by Content-Length; respond 411 or 413 and return None when it cannot be read."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self.close_connection = True
            self._send(Response.from_error(AcsError(411, "LengthRequired", "Send the body with Content-Length.")))
            return None
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0:
            self.close_connection = True
            self._send(Response.from_error(AcsError(400, "BadRequest", "Content-Length is not a whole number.")))
            return None
        if length > MAX_REQUEST_BYTES:
            # Clients write the whole body before they read the response, so the body is read and dropped.
            # Closing at once would make them see a broken connection instead of the 413.
            if length <= _MAX_DRAINED_BYTES:
                self._discard(length)
            else:
                self.close_connection = True
            # NOTE: the status and code ACS uses for a request over 10 MB are not documented in the REST spec.
            message = f"The request is {length} bytes; at most {MAX_REQUEST_BYTES} bytes (10 MB) are accepted."
            self._send(Response.from_error(AcsError(413, "RequestEntityTooLarge", message)))
            return None
        return self.rfile.read(length)

    def _discard(self, length: int) -> None:
        while length > 0:
            chunk = self.rfile.read(min(length, 1024 * 1024))
            if not chunk:
                break
            length -= len(chunk)

    def _send(self, response: Response) -> None:
        payload = b"" if response.body is None else json.dumps(response.body).encode()
        self.send_response(response.status)
        if response.body is not None:
            self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in response.headers.items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(payload)
