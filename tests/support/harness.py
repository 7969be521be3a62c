"""The function app wired to the Key Vault emulator, driven through the real function entry points."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Iterable

import azure.functions as func
from azure.keyvault.certificates import CertificateClient, CertificatePolicy

import function_app
from emulators.keyvault import EmulatorCredential, KeyVaultEmulator
from shared.events import EXPIRED, NEAR_EXPIRY, NEW_VERSION_CREATED
from shared.notices import Notice
from shared.runtime import Runtime

# Small backoff so retried requests do not slow the suite. The number of retries stays the SDK default.
FAST_RETRY = {"retry_backoff_factor": 0.01, "retry_backoff_max": 0.05}


class EventRecorder:
    """Event sink of the emulator: keeps every event, and hands out the ones not yet delivered."""

    def __init__(self) -> None:
        self.events: list[dict] = []
        self.delivered = 0

    def __call__(self, events: list[dict]) -> None:
        self.events.extend(events)

    def take_new(self) -> list[dict]:
        new = self.events[self.delivered :]
        self.delivered = len(self.events)
        return new

    def clear(self) -> None:
        self.events.clear()
        self.delivered = 0


class CapturedOutput(func.Out):
    """The queue output binding as the Functions host gives it: set() keeps what the function wrote."""

    def __init__(self) -> None:
        self.value: Any = None

    def set(self, val: Any) -> None:
        self.value = val

    def get(self) -> Any:
        return self.value


def grid_event(raw: dict) -> func.EventGridEvent:
    """Build the trigger's EventGridEvent from an Event Grid schema dict, as the Functions host does."""
    return func.EventGridEvent(
        id=raw["id"],
        data=raw["data"],
        topic=raw.get("topic"),
        subject=raw.get("subject"),
        event_type=raw.get("eventType"),
        event_time=None,
        data_version=raw.get("dataVersion", "1"),
    )


@dataclass
class AppHarness:
    """The function app with its runtime pointed at the emulator, and the emulator's events to deliver."""

    keyvault: KeyVaultEmulator
    recorder: EventRecorder
    runtime: Runtime
    queue: list[Notice] = field(default_factory=list)

    def client(self, vault: str = "contoso-certs") -> CertificateClient:
        """Return an SDK client for the test's own setup and checks (not the app's)."""
        return CertificateClient(
            self.keyvault.vault_url(vault), EmulatorCredential(), connection_verify=self.keyvault.ca_bundle,
            verify_challenge_resource=False, **FAST_RETRY,
        )

    def deliver(self, raw_events: Iterable[dict]) -> list[Notice]:
        """Deliver Event Grid schema events to the function subscribed to each type; return the notices queued."""
        notices: list[Notice] = []
        for raw in raw_events:
            output = CapturedOutput()
            if raw.get("eventType") in (NEAR_EXPIRY, EXPIRED):
                function_app.on_certificate_expiring(event=grid_event(raw), notices=output)
            elif raw.get("eventType") == NEW_VERSION_CREATED:
                function_app.on_certificate_version_created(event=grid_event(raw), notices=output)
            notices.extend(Notice.from_json(message) for message in output.value or [])
        self.queue.extend(notices)
        return notices

    def deliver_new_events(self) -> list[Notice]:
        """Deliver every event the emulator emitted since the last call."""
        return self.deliver(self.recorder.take_new())

    def run_timer(self) -> list[Notice]:
        """Run the timer function once and return the notices it queued."""
        output = CapturedOutput()
        function_app.sweep_vaults(timer=None, notices=output)
        notices = [Notice.from_json(message) for message in output.value or []]
        self.queue.extend(notices)
        return notices

    def advance(self, days: float) -> None:
        """Move the emulator's clock, which is also the app's clock."""
        self.keyvault.advance(days=days)

    def now(self) -> datetime:
        return self.keyvault.now()

    def app_requests(self, vault: str = "contoso-certs") -> list[dict]:
        """Return the requests logged by the emulator, without the unauthenticated challenge requests."""
        return [entry for entry in self.keyvault.request_log(vault) if entry["status"] != 401]


def self_signed_policy(months: int = 12, **kwargs: Any) -> CertificatePolicy:
    return CertificatePolicy(issuer_name="Self", subject="CN=web.contoso.test", san_dns_names=["web.contoso.test"],
                             validity_in_months=months, **kwargs)


def unknown_issuer_policy(months: int = 12, **kwargs: Any) -> CertificatePolicy:
    return CertificatePolicy(issuer_name="Unknown", subject="CN=partner.contoso.test",
                             san_dns_names=["partner.contoso.test"], validity_in_months=months, **kwargs)


def notice_kinds(notices: Iterable[Notice]) -> list[str]:
    return [notice.kind for notice in notices]


def dump(notices: Iterable[Notice]) -> str:
    return json.dumps([notice.kind + " " + notice.certificate.name for notice in notices])
