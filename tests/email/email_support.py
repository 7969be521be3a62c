"""Helpers for the email tests: sample notices, and the function app with the ACS Email emulator."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from azure.keyvault.certificates import CertificateContact

from emulators.acs_email import AcsEmailEmulator
from emulators.functions_host import deliver_queue_message
from shared.email.delivery import entry_key
from shared.email.handler import set_email_sender
from shared.email.sending import EmailSender
from shared.notices import Notice
from tests.support.harness import FAST_RETRY, AppHarness

SENDER = "DoNotReply@certrenew.test"
NOTICES = Path(__file__).parent / "notices"


def notice_dict(kind: str) -> dict[str, Any]:
    """Return the sample notice of a kind as a dict, to change before building the Notice."""
    return json.loads((NOTICES / f"{kind}.json").read_text(encoding="utf-8"))


def load_notice(kind: str, certificate: dict[str, Any] | None = None, **changes: Any) -> Notice:
    """Return the sample notice of a kind, with changed top-level fields and certificate fields."""
    body = notice_dict(kind)
    body.update(changes)
    body["certificate"].update(certificate or {})
    return Notice.from_json(json.dumps(body))


@dataclass
class EmailHarness:
    """The function app wired to the Key Vault and ACS Email emulators, driven through send_notice_email."""

    app: AppHarness
    acs: AcsEmailEmulator

    @property
    def settings(self):
        return self.app.runtime.settings

    def use_settings(self, **changes: Any) -> None:
        """Change the app's settings and use a new EmailSender built from them, with fast retries and polls."""
        self.app.runtime.settings = replace(self.app.runtime.settings, **changes)
        set_email_sender(EmailSender(self.app.runtime.settings, client_options=FAST_RETRY, polling_interval=0.01))

    def deliver(self, notice: Notice | str, dequeue_count: int = 1) -> str | None:
        """Deliver a notice (or a raw message) to the email function; return what it put on the poison queue."""
        body = notice if isinstance(notice, str) else notice.to_json()
        return deliver_queue_message(body, dequeue_count)

    def set_contacts(self, *contacts: tuple[str, str], vault: str = "contoso-certs") -> None:
        self.app.client(vault).set_contacts([CertificateContact(email=email, name=name) for email, name in contacts])

    def entry(self, notice: Notice) -> dict[str, Any]:
        """Return the journal entry of a notice's email, or an empty dict."""
        current = self.app.runtime.journal.read(notice.vault_name, entry_key(notice.id))
        return current[0] if current else {}

    def sends(self) -> list[dict]:
        """Return the send requests that reached the emulator, rejected ones included."""
        return [entry for entry in self.acs.request_log() if entry["method"] == "POST"]

    @staticmethod
    def addresses(message: dict) -> list[str]:
        return [recipient["address"] for recipient in message["recipients"]["to"]]
