"""Writing of accepted messages as RFC 5322 ``.eml`` files and ``.html`` previews that a person can open."""

from __future__ import annotations

import datetime
import email.policy
import email.utils
import html as html_escaping
import os
import re
from email.headerregistry import Address
from email.message import EmailMessage

# Headers the emulator writes itself; a custom header of the same name from the request is left out so a
# caller cannot forge them.
_RESERVED_HEADERS = frozenset(
    {"from", "to", "cc", "bcc", "reply-to", "subject", "date", "message-id", "mime-version", "content-type",
     "content-transfer-encoding", "content-disposition", "sender", "return-path"}
)
_LINE_BREAKS = re.compile(r"[\r\n]+")
_UNSAFE_FILE_CHARACTERS = re.compile(r"[^A-Za-z0-9._-]")


def write_message_files(outbox_dir: str, message: dict) -> tuple[str, str]:
    """Write ``message`` (as stored in ``AcsEmailEmulator.messages``) to ``outbox_dir``; return the two paths."""
    os.makedirs(outbox_dir, exist_ok=True)
    stem = _file_stem(message["received_at"], message["operation_id"])
    eml_path = os.path.join(outbox_dir, f"{stem}.eml")
    html_path = os.path.join(outbox_dir, f"{stem}.html")

    with open(eml_path, "wb") as file:
        file.write(build_rfc5322_message(message).as_bytes(policy=email.policy.SMTP))
    with open(html_path, "w", encoding="utf-8") as file:
        file.write(_html_preview(message))
    return eml_path, html_path


def build_rfc5322_message(message: dict) -> EmailMessage:
    """Build the MIME message: text and HTML as multipart/alternative, attachments beside them."""
    mime = EmailMessage(policy=email.policy.default)
    mime["From"] = _address_header([{"address": message["sender"], "displayName": ""}])
    recipients = message["recipients"]
    mime["To"] = _address_header(recipients["to"]) if recipients["to"] else "undisclosed-recipients:;"
    if recipients["cc"]:
        mime["Cc"] = _address_header(recipients["cc"])
    if message["reply_to"]:
        mime["Reply-To"] = _address_header(message["reply_to"])
    mime["Subject"] = _single_line(message["subject"])
    mime["Date"] = email.utils.format_datetime(message["received_at"])
    sender_domain = message["sender"].rpartition("@")[2]
    mime["Message-ID"] = f"<{message['operation_id']}@{sender_domain}>"
    for name, value in message["headers"].items():
        if name.lower() not in _RESERVED_HEADERS:
            mime[name] = _single_line(value)

    _set_body(mime, message["plain_text"], message["html"])
    for attachment in message["attachments"]:
        _add_attachment(mime, attachment)
    return mime


def _set_body(mime: EmailMessage, plain_text: str, html: str) -> None:
    if plain_text and html:
        mime.set_content(plain_text)
        mime.add_alternative(html, subtype="html")
    elif html:
        mime.set_content(html, subtype="html")
    else:
        mime.set_content(plain_text)


def _add_attachment(mime: EmailMessage, attachment: dict) -> None:
    maintype, _, subtype = attachment["content_type"].partition("/")
    if not maintype or not subtype or "/" in subtype:
        maintype, subtype = "application", "octet-stream"
    filename = _single_line(attachment["name"])
    if attachment["content_id"]:
        mime.add_attachment(
            attachment["content"], maintype=maintype, subtype=subtype, filename=filename,
            disposition="inline", cid=f"<{_single_line(attachment['content_id'])}>",
        )
    else:
        mime.add_attachment(attachment["content"], maintype=maintype, subtype=subtype, filename=filename)


def _address_header(addresses: list[dict]) -> str:
    # Address objects quote display names and reject line breaks, so a recipient's name cannot add headers.
    return ", ".join(
        str(Address(display_name=_single_line(entry["displayName"]), addr_spec=entry["address"]))
        for entry in addresses
    )


def _single_line(value: str) -> str:
    """Replace line breaks with a space: email.policy.default rejects them, and they could inject headers."""
    return _LINE_BREAKS.sub(" ", value)


def _html_preview(message: dict) -> str:
    if message["html"]:
        return message["html"]
    subject = html_escaping.escape(message["subject"])
    body = html_escaping.escape(message["plain_text"])
    return (
        f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{subject}</title></head>\n"
        f"<body><pre>{body}</pre></body></html>\n"
    )


def _file_stem(received_at: datetime.datetime, operation_id: str) -> str:
    timestamp = received_at.astimezone(datetime.timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    return f"{timestamp}-{_UNSAFE_FILE_CHARACTERS.sub('_', operation_id)}"
