"""Validation of an ``emails:send`` payload against the limits and rules ACS applies before accepting it."""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterable

from emulators.acs_email.errors import AcsError, bad_request

# Service limits of ACS Email: recipients in to, cc and bcc together, and the size of the whole request.
MAX_RECIPIENTS = 50
MAX_REQUEST_BYTES = 10 * 1024 * 1024
# A pragmatic address check: one @, no spaces or control characters, and a dotted domain. ACS is stricter
# about some forms (quoted local parts, IP literals), which renewal notices never use.
_ADDRESS = re.compile(r"^[^@\s\x00-\x1f\x7f]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)+$")
_HEADER_NAME = re.compile(r"^[!-9;-~]+$")
RECIPIENT_KINDS = ("to", "cc", "bcc")


def parse_send_payload(
    body: bytes, allowed_senders: Iterable[str], linked_domains: Iterable[str]
) -> dict:
    """Validate a send request body and return it normalized; raise AcsError for what ACS would reject.

    The returned dict has the keys ``sender``, ``recipients`` ({"to", "cc", "bcc"} lists of
    {"address", "displayName"}), ``reply_to``, ``subject``, ``plain_text``, ``html``, ``attachments``
    (dicts with ``name``, ``content_type``, ``content`` bytes, ``content_id``), ``headers`` and
    ``user_engagement_tracking_disabled``.
    """
    payload = _parse_json(body)
    sender = _check_sender(payload.get("senderAddress"), allowed_senders, linked_domains)
    subject, plain_text, html = _check_content(payload.get("content"))
    recipients = _check_recipients(payload.get("recipients"))
    reply_to = _check_address_list(payload.get("replyTo"), "replyTo")
    attachments = _check_attachments(payload.get("attachments"))
    headers = _check_headers(payload.get("headers"))

    tracking_disabled = payload.get("userEngagementTrackingDisabled")
    if tracking_disabled is not None and not isinstance(tracking_disabled, bool):
        raise bad_request("userEngagementTrackingDisabled must be true or false.")
    return {
        "sender": sender,
        "recipients": recipients,
        "reply_to": reply_to,
        "subject": subject,
        "plain_text": plain_text,
        "html": html,
        "attachments": attachments,
        "headers": headers,
        "user_engagement_tracking_disabled": bool(tracking_disabled),
    }


def is_valid_address(address: object) -> bool:
    """Tell whether ``address`` is a plain ``local@domain.tld`` email address."""
    return isinstance(address, str) and len(address) <= 320 and _ADDRESS.match(address) is not None


def _parse_json(body: bytes) -> dict:
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise bad_request(f"The request body is not valid JSON: {exc}.") from exc
    if not isinstance(payload, dict):
        raise bad_request("The request body must be a JSON object with senderAddress, content and recipients.")
    return payload


def _check_sender(sender: object, allowed_senders: Iterable[str], linked_domains: Iterable[str]) -> str:
    if not sender:
        raise bad_request("senderAddress is missing. Give a MailFrom address of a linked domain.")
    if not isinstance(sender, str) or not is_valid_address(sender):
        raise bad_request(f"senderAddress {sender!r} is not a valid email address.")

    domain = sender.rpartition("@")[2].lower()
    if domain not in {linked.lower() for linked in linked_domains}:
        # NOTE: code and message match what clients report from ACS; the status (404 here, 403 in
        # some reports) is not documented in the REST spec.
        raise AcsError(
            404,
            "DomainNotLinked",
            f"The specified sender domain has not been linked. Domain {domain!r} is not linked to this resource.",
        )
    if sender.lower() not in {allowed.lower() for allowed in allowed_senders}:
        raise AcsError(
            400,
            "InvalidSenderUserName",
            f"Invalid email sender username. {sender!r} is not a MailFrom address of domain {domain!r}.",
        )
    return sender


def _check_content(content: object) -> tuple[str, str, str]:
    if not isinstance(content, dict):
        raise bad_request("content is missing. Give content.subject and content.plainText or content.html.")
    subject = content.get("subject")
    plain_text = content.get("plainText") or ""
    html = content.get("html") or ""
    if not isinstance(subject, str) or not subject.strip():
        raise bad_request("content.subject is missing or empty.")
    if not isinstance(plain_text, str) or not isinstance(html, str):
        raise bad_request("content.plainText and content.html must be strings.")
    if not plain_text and not html:
        raise bad_request("The message has no body. Give content.plainText, content.html or both.")
    return subject, plain_text, html


def _check_recipients(recipients: object) -> dict[str, list[dict]]:
    if not isinstance(recipients, dict):
        raise bad_request("recipients is missing. Give recipients.to with at least one address.")
    checked = {kind: _check_address_list(recipients.get(kind), f"recipients.{kind}") for kind in RECIPIENT_KINDS}

    total = sum(len(addresses) for addresses in checked.values())
    if total == 0:
        raise bad_request("The message has no recipients. Give at least one address in recipients.to.")
    if total > MAX_RECIPIENTS:
        raise bad_request(
            f"The message has {total} recipients in to, cc and bcc; at most {MAX_RECIPIENTS} are allowed. "
            "Split it into several messages."
        )
    return checked


def _check_address_list(addresses: object, field: str) -> list[dict]:
    if addresses is None:
        return []
    if not isinstance(addresses, list):
        raise bad_request(f"{field} must be a list of {{address, displayName}} objects.")

    checked = []
    for index, entry in enumerate(addresses):
        address = entry.get("address") if isinstance(entry, dict) else None
        if not is_valid_address(address):
            raise bad_request(f"{field}[{index}].address {address!r} is not a valid email address.")
        display_name = entry.get("displayName")
        if display_name is not None and not isinstance(display_name, str):
            raise bad_request(f"{field}[{index}].displayName must be a string.")
        checked.append({"address": address, "displayName": display_name or ""})
    return checked


def _check_attachments(attachments: object) -> list[dict]:
    if attachments is None:
        return []
    if not isinstance(attachments, list):
        raise bad_request("attachments must be a list of {name, contentType, contentInBase64} objects.")

    checked = []
    for index, attachment in enumerate(attachments):
        if not isinstance(attachment, dict):
            raise bad_request(f"attachments[{index}] must be an object.")
        for field in ("name", "contentType", "contentInBase64"):
            if not isinstance(attachment.get(field), str) or not attachment[field]:
                raise bad_request(f"attachments[{index}].{field} is missing or empty.")
        try:
            content = base64.b64decode(attachment["contentInBase64"], validate=True)
        except binascii.Error as exc:
            raise bad_request(f"attachments[{index}].contentInBase64 is not valid base64: {exc}.") from exc
        content_id = attachment.get("contentId")
        if content_id is not None and not isinstance(content_id, str):
            raise bad_request(f"attachments[{index}].contentId must be a string.")
        checked.append(
            {
                "name": attachment["name"],
                "content_type": attachment["contentType"],
                "content": content,
                "content_id": content_id or "",
            }
        )
    return checked


def _check_headers(headers: object) -> dict[str, str]:
    if headers is None:
        return {}
    if not isinstance(headers, dict):
        raise bad_request("headers must be an object of header names to string values.")
    for name, value in headers.items():
        if not _HEADER_NAME.match(name):
            raise bad_request(f"Header name {name!r} is not a valid RFC 5322 field name.")
        if not isinstance(value, str):
            raise bad_request(f"Header {name!r} must have a string value.")
    return dict(headers)
