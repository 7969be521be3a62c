"""Rendering of a notice into an email: subject, HTML and plain-text bodies, and the CSR attachment.

The bodies come from Jinja2 templates in `templates/`, one pair per notice kind. Autoescape is on for the HTML
templates, so every value from a certificate, a tag or an event is escaped there. The subject is built here and
has every control character (line breaks included) replaced, because it becomes a header.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from shared import notices as kinds
from shared.notices import Notice

TEMPLATES = Path(__file__).parent / "templates"

# Per notice kind: the tag that opens the subject and the accent colour of the HTML header.
TAGS = {
    kinds.RENEWAL_STARTED: ("Renewing", "#0f6cbd"),
    kinds.CSR_WAITING: ("Action needed", "#a4470a"),
    kinds.RENEWED: ("Renewed", "#107c10"),
    kinds.RENEWAL_FAILED: ("Failed", "#b10e1c"),
    kinds.MANUAL_RENEWAL_DUE: ("Action needed", "#a4470a"),
    kinds.REMINDER: ("Reminder", "#a4470a"),
    kinds.EXPIRED: ("Expired", "#b10e1c"),
}
CERTIFICATE_KINDS = {"self-signed": "self-signed", "integrated-ca": "integrated CA", "other-ca": "other CA"}
# ACS documents no subject limit; long subjects get cut by mail clients anyway, so the end is cut here.
MAX_SUBJECT_LENGTH = 200
# Control characters, line breaks included, and the Unicode line and paragraph separators.
_HEADER_UNSAFE = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]+")
_FILE_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9-]+")
CSR_CONTENT_TYPE = "application/pkcs10"
# Kinds whose notice requests a person to get a CSR signed. Other kinds (renewal-started for an integrated CA)
# may carry the operation's CSR too, but no person has to act on it, so it is not attached.
CSR_KINDS = (kinds.CSR_WAITING, kinds.REMINDER, kinds.EXPIRED)

_environment = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)


@dataclass(frozen=True)
class Attachment:
    """A file attached to the email."""

    name: str
    content_type: str
    content: bytes

    def to_acs(self) -> dict[str, str]:
        """Return the attachment object of the ACS send request."""
        return {
            "name": self.name,
            "contentType": self.content_type,
            "contentInBase64": base64.b64encode(self.content).decode("ascii"),
        }


@dataclass(frozen=True)
class RenderedEmail:
    """The content of one notice's email, the same for every recipient."""

    subject: str
    html: str
    plain_text: str
    attachments: tuple[Attachment, ...] = ()


def render_notice(notice: Notice) -> RenderedEmail:
    """Render the subject, both bodies and the attachments of a notice's email."""
    subject = build_subject(notice)
    context = _context(notice, subject)
    html = _environment.get_template(f"{notice.kind}.html").render(context)
    plain_text = _environment.get_template(f"{notice.kind}.txt").render(context)

    attachments: tuple[Attachment, ...] = ()
    if context["csr_pem"]:
        attachments = (Attachment(context["csr_file_name"], CSR_CONTENT_TYPE, context["csr_pem"].encode("ascii")),)
    return RenderedEmail(subject=subject, html=html, plain_text=plain_text, attachments=attachments)


def build_subject(notice: Notice) -> str:
    """Return the subject: a tag, then the certificate, the vault and the state.

    Example: `[Action needed] Get the CSR for web in contoso-certs signed: current version expires in 12 days`.
    """
    tag, _ = TAGS[notice.kind]
    prefix = "[Dry run] " if notice.dry_run else ""
    return single_line(f"{prefix}[{tag}] {headline(notice)}")[:MAX_SUBJECT_LENGTH]


def headline(notice: Notice) -> str:
    """Return the state of the certificate in one line, without the tag: the subject's main part."""
    certificate = notice.certificate
    where = f"{certificate.name} in {notice.vault_name}"
    expiry = expiry_phrase(certificate.days_left)
    if notice.kind == kinds.RENEWAL_STARTED:
        return f"Renewal of {where} has started: current version {expiry}"
    if notice.kind == kinds.CSR_WAITING:
        return f"Get the CSR for {where} signed: current version {expiry}"
    if notice.kind == kinds.RENEWED:
        new_expiry = notice.renewal.new_expires_on if notice.renewal else None
        return f"{where} was renewed: new version valid until {format_date(new_expiry or certificate.expires_on)}"
    if notice.kind == kinds.RENEWAL_FAILED:
        code = notice.error.code if notice.error and notice.error.code else "error"
        return f"Renewal of {where} failed ({code}): current version {expiry}"
    if notice.kind == kinds.MANUAL_RENEWAL_DUE:
        return f"Renew {where} by hand: it {expiry}"
    if notice.kind == kinds.REMINDER and csr_to_sign(notice):
        return f"The CSR for {where} is still not signed: current version {expiry}"
    if notice.kind == kinds.REMINDER:
        return f"Renew {where} by hand: it {expiry}"
    return f"{where} expired on {format_date(certificate.expires_on)}"


def expiry_phrase(days_left: int | None) -> str:
    """Describe days left until expiry: `expires in 12 days`, `expires today`, `expired 3 days ago`."""
    if days_left is None:
        return "has no known expiry"
    if days_left < 0:
        return f"expired {-days_left} day{'s' if days_left != -1 else ''} ago"
    if days_left == 0:
        return "expires today"
    return f"expires in {days_left} day{'s' if days_left != 1 else ''}"


def single_line(text: str) -> str:
    """Replace control characters and line breaks with a space and collapse runs of spaces."""
    return " ".join(_HEADER_UNSAFE.sub(" ", text).split())


def format_time(value: str | None) -> str:
    """Format a notice time (ISO 8601 UTC) as `2031-01-01 00:00 UTC`, or `unknown`."""
    moment = _parse_time(value)
    return f"{moment:%Y-%m-%d %H:%M} UTC" if moment else "unknown"


def format_date(value: str | None) -> str:
    """Format a notice time (ISO 8601 UTC) as `2031-01-01`, or `an unknown date`."""
    moment = _parse_time(value)
    return f"{moment:%Y-%m-%d}" if moment else "an unknown date"


def csr_to_sign(notice: Notice) -> str | None:
    """Return the CSR a person must get signed, or None when the notice requests no signature."""
    return notice.csr_pem if notice.kind in CSR_KINDS and notice.csr_pem else None


def csr_file_name(notice: Notice) -> str:
    """Return the attachment's file name: the certificate name with a `.csr` extension."""
    stem = _FILE_NAME_UNSAFE.sub("-", notice.certificate.name).strip("-") or "certificate"
    return f"{stem}.csr"


def _context(notice: Notice, subject: str) -> dict[str, Any]:
    tag, accent = TAGS[notice.kind]
    certificate = notice.certificate
    next_step = notice.next_step
    if notice.error and notice.error.remedy and next_step.startswith(notice.error.remedy):
        # The renewal service starts a failure's next step with the remedy, which the email shows on its own.
        next_step = next_step[len(notice.error.remedy) :].strip()
    return {
        "notice": notice,
        "certificate": certificate,
        "renewal": notice.renewal,
        "error": notice.error,
        "subject": subject,
        "headline": single_line(headline(notice)),
        "tag": tag,
        "accent": accent,
        "certificate_kind": CERTIFICATE_KINDS.get(certificate.kind, certificate.kind),
        "expiry": expiry_phrase(certificate.days_left),
        "next_step": next_step,
        "portal_url": certificate.portal_url if certificate.portal_url.startswith("https://") else "",
        "csr_pem": csr_to_sign(notice),
        "csr_file_name": csr_file_name(notice),
        "merge_command": f"certrenew merge --vault {notice.vault_name} {certificate.name} SIGNED.pem",
        "time": format_time,
        "date": format_date,
    }


def _parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
