"""Helpers shared by the ACS Email emulator tests: payloads and a fixed token credential."""

from __future__ import annotations

import time

from azure.core.credentials import AccessToken

SENDER = "DoNotReply@certrenew.test"
# Polling interval for begin_send. The emulator under test sends retry-after: 0, which the SDK reads as
# "no hint" and replaces with this interval (30 s by default).
FAST_POLLING = 0.01


class StaticTokenCredential:
    """Token credential that returns a fixed token and records the scopes it was asked for."""

    def __init__(self, token: str = "test-token") -> None:
        self.token = token
        self.scopes: list[str] = []

    def get_token(self, *scopes: str, **kwargs: object) -> AccessToken:
        self.scopes.extend(scopes)
        return AccessToken(self.token, int(time.time()) + 3600)


def make_message(recipient_count: int = 1, **overrides: object) -> dict:
    """Build a minimal valid send payload; keyword arguments replace top-level fields."""
    message = {
        "senderAddress": SENDER,
        "recipients": {"to": [{"address": f"owner{index}@contoso.test"} for index in range(recipient_count)]},
        "content": {
            "subject": "Certificate web-frontend renewed",
            "plainText": "The certificate web-frontend was renewed.",
            "html": "<p>The certificate <b>web-frontend</b> was renewed.</p>",
        },
    }
    message.update(overrides)
    return message
