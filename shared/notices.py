"""Notices: the versioned JSON messages that tell people what happened to a certificate.

The renewal functions put each notice on the storage queue `certrenew-notices`, and the email function turns it
into an email. The contract is `certrenew.notice/v1`, documented in docs/notices.md. A consumer rejects any other
schema value, and v1 only ever gains optional fields.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import quote

logger = logging.getLogger(__name__)

SCHEMA = "certrenew.notice/v1"
NOTICE_QUEUE = "certrenew-notices"

RENEWAL_STARTED = "renewal-started"
CSR_WAITING = "csr-waiting"
RENEWED = "renewed"
RENEWAL_FAILED = "renewal-failed"
EXPIRED = "expired"
MANUAL_RENEWAL_DUE = "manual-renewal-due"
REMINDER = "reminder"
KINDS = (RENEWAL_STARTED, CSR_WAITING, RENEWED, RENEWAL_FAILED, EXPIRED, MANUAL_RENEWAL_DUE, REMINDER)


class InvalidNotice(ValueError):
    """A queue message that is not a v1 notice."""


@dataclass(frozen=True)
class CertificateInfo:
    """The certificate a notice is about, as it was when the notice was made."""

    name: str
    version: str
    kind: str
    issuer: str
    mode: str
    subject: str | None
    dns_names: list[str]
    enabled: bool
    expires_on: str | None
    days_left: int | None
    thumbprint: str | None
    certificate_id: str
    portal_url: str
    owners: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class RenewalInfo:
    """Known facts of the renewal: who started it, the operation, and the versions before and after."""

    started_by: str
    operation_status: str | None = None
    request_id: str | None = None
    autorenew_missed: bool = False
    previous_version: str | None = None
    previous_expires_on: str | None = None
    previous_thumbprint: str | None = None
    new_version: str | None = None
    new_expires_on: str | None = None
    new_thumbprint: str | None = None


@dataclass(frozen=True)
class ErrorInfo:
    """The cause of a failed renewal, as Key Vault or the CA reported it, and the remedy for a person."""

    code: str | None
    message: str | None
    remedy: str


@dataclass(frozen=True)
class Notice:
    """One notice, serialised as a queue message."""

    id: str
    kind: str
    created: str
    vault_name: str
    vault_url: str
    certificate: CertificateInfo
    summary: str
    next_step: str
    renewal: RenewalInfo | None = None
    error: ErrorInfo | None = None
    csr_pem: str | None = None
    next_reminder: str | None = None
    dry_run: bool = False
    schema: str = SCHEMA

    def to_json(self) -> str:
        """Serialise the notice as its queue message."""
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "Notice":
        """Read a queue message, rejecting anything that is not a v1 notice."""
        try:
            body = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InvalidNotice(f"The notice is not JSON: {exc}.") from exc
        if not isinstance(body, dict) or body.get("schema") != SCHEMA:
            raise InvalidNotice(f"The message is not a {SCHEMA} notice.")
        if body.get("kind") not in KINDS:
            raise InvalidNotice(f"Notice kind {body.get('kind')!r} is unknown.")
        try:
            known = {name for name in cls.__dataclass_fields__}
            values = {key: value for key, value in body.items() if key in known}
            values["certificate"] = _build(CertificateInfo, values["certificate"])
            if values.get("renewal") is not None:
                values["renewal"] = _build(RenewalInfo, values["renewal"])
            if values.get("error") is not None:
                values["error"] = _build(ErrorInfo, values["error"])
            return cls(**values)
        except (KeyError, TypeError) as exc:
            raise InvalidNotice(f"The notice misses a required field: {exc}.") from exc


def _build(model: type, values: Mapping[str, Any]) -> Any:
    known = set(model.__dataclass_fields__)
    return model(**{key: value for key, value in values.items() if key in known})


def notice_id(*parts: str) -> str:
    """Return a stable id for a notice, so that the same notice made twice has the same id."""
    return hashlib.sha256("|".join(parts).encode("utf-8")).hexdigest()[:32]


def portal_url(certificate_id: str) -> str:
    """Return the Azure portal link to a certificate version."""
    return "https://portal.azure.com/#@/asset/Microsoft_Azure_KeyVault/Certificate/" + quote(certificate_id, safe="")


def iso(moment: datetime | None) -> str | None:
    """Format a time for a notice: ISO 8601 in UTC, or None."""
    return moment.isoformat().replace("+00:00", "Z") if moment else None


class NoticeSink:
    """Collects the notices of one invocation for the queue output binding, and copies them to an outbox folder."""

    def __init__(self, outbox_dir: str = "") -> None:
        self.outbox_dir = outbox_dir
        self.notices: list[Notice] = []

    def emit(self, notice: Notice) -> None:
        """Queue one notice, and write its readable copy when an outbox folder is set."""
        self.notices.append(notice)
        logger.info(
            "notice=%s kind=%s vault=%s certificate=%s: %s",
            notice.id,
            notice.kind,
            notice.vault_name,
            notice.certificate.name,
            notice.summary,
        )
        if self.outbox_dir:
            self._write_outbox(notice)

    def messages(self) -> list[str]:
        """Return the queue messages of every notice emitted so far."""
        return [notice.to_json() for notice in self.notices]

    def _write_outbox(self, notice: Notice) -> None:
        folder = Path(self.outbox_dir)
        folder.mkdir(parents=True, exist_ok=True)
        stamp = re.sub(r"[^0-9T]", "", notice.created)[:15]
        safe_name = re.sub(r"[^A-Za-z0-9-]", "_", f"{notice.vault_name}-{notice.certificate.name}")
        path = folder / f"{stamp}-{notice.kind}-{safe_name}-{notice.id[:8]}.json"
        path.write_text(json.dumps(asdict(notice), indent=2, sort_keys=True) + os.linesep, encoding="utf-8")
