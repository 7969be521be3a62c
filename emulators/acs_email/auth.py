"""Checks of the two ways ACS clients authenticate: HMAC-SHA256 with an access key, and a bearer token.

The HMAC scheme is the one that azure-communication-email 1.1 signs with (``_shared/policy.py``). The
string to sign is ``VERB\\n<path>?<query>\\n<x-ms-date>;<host>;<x-ms-content-sha256>``, with the values in
the order that ``SignedHeaders`` lists them. The host is as the client wrote it in the Host header, with
``:port`` when the port is not the default.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import email.utils
import hashlib
import hmac
from collections.abc import Mapping

from emulators.acs_email.errors import AcsError

# ACS rejects a request whose x-ms-date is more than 15 minutes away from the service clock.
MAX_CLOCK_SKEW = datetime.timedelta(minutes=15)
HMAC_SCHEME = "HMAC-SHA256"
# Headers that every HMAC signature must cover, or a replayed signature could carry another body or host.
REQUIRED_SIGNED_HEADERS = frozenset({"x-ms-date", "host", "x-ms-content-sha256"})
# NOTE: "Denied" is the code seen in client code that handles ACS 401 responses; the REST spec does not list it.
DENIED = "Denied"


def check_authorization(
    method: str, target: str, headers: Mapping[str, str], body: bytes, access_key: bytes
) -> str:
    """Check the Authorization header of a request and return the scheme used ("hmac" or "bearer").

    ``target`` is the request target as received (path and query). ``headers`` must be case-insensitive.
    Raises AcsError 401 when the header is missing, malformed, stale or does not match.
    """
    authorization = headers.get("Authorization", "")
    if not authorization:
        raise _denied("The Authorization header is missing. Sign the request with HMAC-SHA256 or send a bearer token.")

    scheme, _, parameters = authorization.partition(" ")
    if scheme.lower() == "bearer":
        if not parameters.strip():
            raise _denied("The bearer token is empty. Get a token for https://communication.azure.com//.default.")
        return "bearer"
    if scheme != HMAC_SCHEME:
        raise _denied(f"Authorization scheme {scheme!r} is not supported. Use {HMAC_SCHEME} or Bearer.")

    _check_hmac(method, target, headers, body, access_key, parameters)
    return "hmac"


def _check_hmac(
    method: str, target: str, headers: Mapping[str, str], body: bytes, access_key: bytes, parameters: str
) -> None:
    signed_headers, signature = _parse_hmac_parameters(parameters)

    missing = REQUIRED_SIGNED_HEADERS - set(signed_headers)
    if missing:
        raise _denied(f"SignedHeaders must include {', '.join(sorted(missing))}.")
    values = []
    for name in signed_headers:
        value = headers.get(name)
        if value is None:
            raise _denied(f"Header {name} is listed in SignedHeaders but missing from the request.")
        values.append(value)

    _check_date(headers["x-ms-date"])
    expected_hash = base64.b64encode(hashlib.sha256(body).digest()).decode()
    if not hmac.compare_digest(headers["x-ms-content-sha256"], expected_hash):
        raise _denied("x-ms-content-sha256 does not match the SHA-256 of the request body.")

    string_to_sign = f"{method.upper()}\n{target}\n{';'.join(values)}"
    expected_signature = hmac.new(access_key, string_to_sign.encode(), hashlib.sha256).digest()
    if not hmac.compare_digest(signature, expected_signature):
        raise _denied("The HMAC signature does not match. Check the access key in the connection string.")


def _parse_hmac_parameters(parameters: str) -> tuple[list[str], bytes]:
    fields = {}
    for field in parameters.strip().split("&"):
        name, separator, value = field.partition("=")
        if separator:
            fields[name.strip()] = value.strip()
    if "SignedHeaders" not in fields or "Signature" not in fields:
        raise _denied("The HMAC-SHA256 Authorization header must have SignedHeaders=...&Signature=....")

    signed_headers = [name.strip().lower() for name in fields["SignedHeaders"].split(";") if name.strip()]
    try:
        signature = base64.b64decode(fields["Signature"], validate=True)
    except binascii.Error as exc:
        raise _denied("The HMAC signature is not valid base64.") from exc
    return signed_headers, signature


def _check_date(value: str) -> None:
    try:
        sent_at = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError) as exc:
        raise _denied(f"x-ms-date {value!r} is not an RFC 1123 date.") from exc
    if sent_at.tzinfo is None:
        sent_at = sent_at.replace(tzinfo=datetime.timezone.utc)

    skew = abs(datetime.datetime.now(datetime.timezone.utc) - sent_at)
    if skew > MAX_CLOCK_SKEW:
        raise _denied(
            f"x-ms-date {value!r} is {int(skew.total_seconds())} s away from the server clock; "
            f"at most {int(MAX_CLOCK_SKEW.total_seconds())} s is accepted. Check the client clock."
        )


def _denied(message: str) -> AcsError:
    return AcsError(401, DENIED, message)
