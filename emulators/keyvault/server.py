"""HTTPS listener of one vault: TLS, the bearer challenge, routing, faults, the request log and the control API."""

from __future__ import annotations

import json
import logging
import re
import socket
import ssl
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Callable
from urllib.parse import parse_qsl, urlsplit

from emulators.keyvault import certificates, issuers
from emulators.keyvault.errors import KeyVaultError, bad_parameter

if TYPE_CHECKING:
    from emulators.keyvault.emulator import KeyVaultEmulator
    from emulators.keyvault.store import Vault

logger = logging.getLogger(__name__)

# The challenge Key Vault sends to a request without a token. The SDK reads 'authorization' (the tenant's
# authority) and 'resource', and requests a token of scope resource + '/.default' from its credential.
CHALLENGE = (
    'Bearer authorization="https://login.microsoftonline.com/00000000-0000-0000-0000-000000000000", '
    'resource="https://vault.azure.net"'
)
OBJECT_NAME = re.compile(r"[0-9a-zA-Z-]{1,127}")
CONTROL_PREFIX = "/_emulator/"
# An idle keep-alive connection is closed after this many seconds, which frees its thread.
IDLE_TIMEOUT_SECONDS = 120
SERVICE_VERSION = "1.9.0.0"

Handler = Callable[["Vault", dict, dict, dict], tuple[int, dict | None]]


class VaultServer(ThreadingHTTPServer):
    """One vault's listener. The TLS handshake runs in the connection's own thread, not in accept()."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], emulator: "KeyVaultEmulator", vault: "Vault", context: ssl.SSLContext):
        self.emulator = emulator
        self.vault_name = vault.name
        self.tls_context = context
        self._thread: threading.Thread | None = None
        super().__init__(address, _RequestHandler)

    def start(self) -> None:
        """Serve in a daemon thread."""
        self._thread = threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.05}, name=f"kv-{self.vault_name}", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and close the listening socket."""
        self.shutdown()
        self.server_close()

    def finish_request(self, request: socket.socket, client_address: tuple) -> None:
        request.settimeout(IDLE_TIMEOUT_SECONDS)
        # Headers and body leave in separate writes. Without TCP_NODELAY, Nagle's algorithm and the
        # client's delayed ACK delay every response by about 40 ms.
        request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            connection = self.tls_context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as exc:
            logger.debug("TLS handshake failed: vault=%s client=%s error=%s", self.vault_name, client_address, exc)
            return
        try:
            self.RequestHandlerClass(connection, client_address, self)
        finally:
            connection.close()


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: VaultServer
    server_version = "KeyVaultEmulator"
    sys_version = ""

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self._handle()

    def do_POST(self) -> None:  # noqa: N802
        self._handle()

    def do_PUT(self) -> None:  # noqa: N802
        self._handle()

    def do_PATCH(self) -> None:  # noqa: N802
        self._handle()

    def do_DELETE(self) -> None:  # noqa: N802
        self._handle()

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - signature of http.server
        logger.debug("%s " + format, self.server.vault_name, *args)

    # ---- request flow --------------------------------------------------------------------------------------

    def _handle(self) -> None:
        emulator = self.server.emulator
        parts = urlsplit(self.path)
        path = parts.path
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        raw_body = self._read_body()
        if path.startswith(CONTROL_PREFIX):
            self._handle_control(path[len(CONTROL_PREFIX) :], raw_body)
            return

        # Each request is logged before its response leaves, so a client that has the response finds it in the log.
        route, handler, params = match_route(self.command, path)
        entry = {"vault": self.server.vault_name, "method": self.command, "route": route, "path": path, "status": 0}
        if not self._authorized():
            entry["status"] = 401
            emulator.log_request(entry)
            self._send(401, {"error": {"code": "Unauthorized", "message": "AKV10000: Request is missing a Bearer or PoP token."}},
                       extra_headers={"WWW-Authenticate": CHALLENGE})
            return

        fault = emulator.take_fault(self.server.vault_name, route)
        if fault is not None and self._apply_fault(fault, entry):
            return

        status, body, headers = self._dispatch(route, handler, params, query, raw_body)
        entry["status"] = status
        emulator.log_request(entry)
        self._send(status, body, extra_headers=headers)

    def _dispatch(self, route, handler, params, query, raw_body) -> tuple[int, dict | None, dict]:
        emulator = self.server.emulator
        try:
            if handler is None:
                raise _route_error(self.command, self.urlpath)
            if "api-version" not in query:
                raise bad_parameter("The api-version query parameter is missing. Add ?api-version=7.6 or later.")
            for key in ("name", "issuer"):
                if key in params and not OBJECT_NAME.fullmatch(params[key]):
                    raise bad_parameter(
                        f"The request URI contains an invalid name: {params[key]!r}. Names have 1 to 127 letters, "
                        "digits and hyphens."
                    )
            body = _parse_json(raw_body)
            with emulator.transaction():
                vault = emulator.vaults[self.server.vault_name]
                status, answer = handler(vault, params, query, body)
        except KeyVaultError as exc:
            logger.debug(
                "Key Vault error response: vault=%s route=%s status=%s code=%s message=%s",
                self.server.vault_name, route, exc.status, exc.code, exc.message,
            )
            return exc.status, exc.body(), {}
        headers = {}
        if route == "POST /certificates/{name}/create" and status == 202:
            headers["Location"] = f"{vault.base_url}/certificates/{params['name']}/pending?api-version={query['api-version']}&request_id={answer['request_id']}"
        return status, answer, headers

    @property
    def urlpath(self) -> str:
        return urlsplit(self.path).path

    def _apply_fault(self, fault: dict, entry: dict) -> bool:
        """Carry out a fault and log it. Return False for a delay, after which the request proceeds."""
        kind = fault["kind"]
        if kind == "delay":
            time.sleep(float(fault["delay"]))
            return False
        if kind == "drop":
            self.close_connection = True
            entry["status"] = "dropped"
            self.server.emulator.log_request(entry)
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return True
        status = int(kind)
        headers = {}
        if status == 429:
            code, message = "Throttled", "Request was not processed because too many requests were received. Reason: VaultRequestTypeLimitReached"
            if fault.get("retry_after") is not None:
                headers["Retry-After"] = str(fault["retry_after"])
        elif status == 503:
            code, message = "ServiceUnavailable", "The service is temporarily unavailable. Try again later."
        else:
            code, message = "InternalServerError", "An internal server error occurred. Try again later."
        entry["status"] = status
        self.server.emulator.log_request(entry)
        self._send(status, {"error": {"code": code, "message": message}}, extra_headers=headers)
        return True

    def _authorized(self) -> bool:
        value = self.headers.get("Authorization", "")
        return value.startswith("Bearer ") and len(value) > len("Bearer ")

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(self, status: int, body: dict | None, extra_headers: dict | None = None) -> None:
        payload = b"" if body is None else json.dumps(body, separators=(",", ":")).encode()
        self.send_response(status)
        if body is not None:
            self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("x-ms-request-id", str(uuid.uuid4()))
        self.send_header("x-ms-keyvault-service-version", SERVICE_VERSION)
        self.send_header("x-ms-keyvault-region", "emulator")
        for name, value in (extra_headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if payload:
            self.wfile.write(payload)

    # ---- control API ---------------------------------------------------------------------------------------

    def _handle_control(self, action: str, raw_body: bytes) -> None:
        emulator = self.server.emulator
        try:
            body = _parse_json(raw_body)
            status, answer = _control(emulator, self.server.vault_name, self.command, action.rstrip("/"), body)
        except KeyVaultError as exc:
            status, answer = exc.status, exc.body()
        except (ValueError, KeyError, TypeError) as exc:
            logger.warning("Invalid control request: vault=%s action=%s error=%r", self.server.vault_name, action, exc)
            status, answer = 400, {"error": {"code": "BadParameter", "message": f"Invalid control request: {exc!r}."}}
        self._send(status, answer)


def _control(emulator: "KeyVaultEmulator", vault: str, method: str, action: str, body: dict) -> tuple[int, dict | None]:
    if action == "clock":
        if method == "POST":
            emulator.advance(days=float(body.get("advance_days", 0)), seconds=float(body.get("advance_seconds", 0)))
        elif method != "GET":
            raise KeyVaultError(405, "MethodNotAllowed", "Use GET or POST on /_emulator/clock.")
        return 200, {"now": emulator.epoch(), "iso": emulator.now().isoformat().replace("+00:00", "Z")}
    if action == "faults" and method == "POST":
        emulator.inject_fault(
            body.get("vault", vault), body["route"], str(body["kind"]), int(body.get("count", 1)),
            body.get("retry_after"), body.get("delay"),
        )
        return 200, {"ok": True}
    if action == "requests" and method == "GET":
        return 200, {"value": emulator.request_log()}
    if action == "requests" and method == "DELETE":
        emulator.clear_request_log()
        return 200, {"ok": True}
    if action == "reset" and method == "POST":
        emulator.reset()
        return 200, {"ok": True}
    if action == "events" and method == "GET":
        return 200, {"value": list(emulator.events)}
    if action == "secret-reads" and method == "GET":
        return 200, {"value": list(emulator.secret_reads)}
    raise KeyVaultError(404, "NotFound", f"No emulator control route {method} /_emulator/{action}.")


# ---- routes ---------------------------------------------------------------------------------------------------


def _answer(status: int) -> Callable:
    def wrap(function: Callable) -> Handler:
        def handler(vault, params, query, body):
            return status, function(vault, params, query, body)

        return handler

    return wrap


def _secret_read(vault: "Vault", params: dict, query: dict, body: dict) -> tuple[int, dict]:
    vault.emulator.record_secret_read(vault.name, params["name"], params.get("version", ""))
    raise KeyVaultError(
        403,
        "Forbidden",
        f"The caller does not have secrets get permission on key vault '{vault.name}'. The emulator answers every "
        "secret read with 403, because the certificate renewal app must never read a private key.",
        inner_code="AccessDenied",
    )


def _purge(vault, params, query, body):
    certificates.purge(vault, params["name"])
    return 204, None


ROUTES: list[tuple[str, str, Handler]] = [
    ("GET", "/certificates", _answer(200)(lambda v, p, q, b: certificates.list_certificates(v, q))),
    ("GET", "/certificates/contacts", _answer(200)(lambda v, p, q, b: issuers.get_contacts(v))),
    ("PUT", "/certificates/contacts", _answer(200)(lambda v, p, q, b: issuers.set_contacts(v, b))),
    ("DELETE", "/certificates/contacts", _answer(200)(lambda v, p, q, b: issuers.delete_contacts(v))),
    ("GET", "/certificates/issuers", _answer(200)(lambda v, p, q, b: issuers.list_issuers(v, q))),
    ("GET", "/certificates/issuers/{issuer}", _answer(200)(lambda v, p, q, b: issuers.get_issuer(v, p["issuer"]))),
    ("PUT", "/certificates/issuers/{issuer}", _answer(200)(lambda v, p, q, b: issuers.set_issuer(v, p["issuer"], b))),
    ("PATCH", "/certificates/issuers/{issuer}", _answer(200)(lambda v, p, q, b: issuers.update_issuer(v, p["issuer"], b))),
    ("DELETE", "/certificates/issuers/{issuer}", _answer(200)(lambda v, p, q, b: issuers.delete_issuer(v, p["issuer"]))),
    ("POST", "/certificates/{name}/create", _answer(202)(lambda v, p, q, b: certificates.create(v, p["name"], b))),
    ("POST", "/certificates/{name}/import", _answer(200)(lambda v, p, q, b: certificates.import_certificate(v, p["name"], b))),
    ("GET", "/certificates/{name}/versions", _answer(200)(lambda v, p, q, b: certificates.list_versions(v, p["name"], q))),
    ("GET", "/certificates/{name}/policy", _answer(200)(lambda v, p, q, b: certificates.get_policy(v, p["name"]))),
    ("PATCH", "/certificates/{name}/policy", _answer(200)(lambda v, p, q, b: certificates.update_policy(v, p["name"], b))),
    ("GET", "/certificates/{name}/pending", _answer(200)(lambda v, p, q, b: certificates.get_operation(v, p["name"]))),
    ("PATCH", "/certificates/{name}/pending", _answer(200)(lambda v, p, q, b: certificates.cancel_operation(v, p["name"], b))),
    ("DELETE", "/certificates/{name}/pending", _answer(200)(lambda v, p, q, b: certificates.delete_operation(v, p["name"]))),
    ("POST", "/certificates/{name}/pending/merge", _answer(201)(lambda v, p, q, b: certificates.merge(v, p["name"], b))),
    ("DELETE", "/certificates/{name}", _answer(200)(lambda v, p, q, b: certificates.delete(v, p["name"]))),
    ("GET", "/certificates/{name}/{version}", _answer(200)(lambda v, p, q, b: certificates.get(v, p["name"], p.get("version", "")))),
    ("PATCH", "/certificates/{name}/{version}", _answer(200)(lambda v, p, q, b: certificates.update(v, p["name"], p.get("version", ""), b))),
    ("GET", "/deletedcertificates", _answer(200)(lambda v, p, q, b: certificates.list_deleted(v, q))),
    ("GET", "/deletedcertificates/{name}", _answer(200)(lambda v, p, q, b: certificates.get_deleted(v, p["name"]))),
    ("DELETE", "/deletedcertificates/{name}", _purge),
    ("POST", "/deletedcertificates/{name}/recover", _answer(200)(lambda v, p, q, b: certificates.recover(v, p["name"]))),
    ("GET", "/secrets/{name}/{version}", _secret_read),
]

_PATTERNS = [
    (method, template, re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]*)", template) + "$"), handler)
    for method, template, handler in ROUTES
]


def match_route(method: str, path: str) -> tuple[str | None, Handler | None, dict]:
    """Return the route template, its handler and the path parameters, or (None, None, {}) when none matches.

    GET and PATCH of '/certificates/{name}' and '/certificates/{name}/' mean the latest version, and
    '/secrets/{name}' is a secret read, so those paths get the '{version}' template with an empty version.
    """
    candidates = [path]
    if path.count("/") == 2 and path.startswith(("/certificates/", "/secrets/")):
        candidates.append(path + "/")
    for candidate in candidates:
        for route_method, template, pattern, handler in _PATTERNS:
            if route_method != method:
                continue
            found = pattern.match(candidate)
            if found:
                return f"{method} {template}", handler, found.groupdict()
    return None, None, {}


def _route_error(method: str, path: str) -> KeyVaultError:
    return KeyVaultError(404, "NotFound", f"No Key Vault route matches {method} {path}. See the Key Vault certificates REST reference.")


def _parse_json(raw: bytes) -> dict:
    if not raw:
        return {}
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise bad_parameter(f"The request body is not valid JSON: {exc}.") from exc
    if not isinstance(body, dict):
        raise bad_parameter("The request body must be a JSON object.")
    return body
