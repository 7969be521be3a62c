"""The function app wired to the Key Vault emulator, driven through the real function entry points."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Iterable

from azure.keyvault.certificates import CertificateClient, CertificatePolicy

from emulators.functions_host import EventRecorder, deliver_events, run_timer
from emulators.keyvault import EmulatorCredential, KeyVaultEmulator
from shared.notices import Notice
from shared.runtime import Runtime

# Small backoff so retried requests do not slow the suite. The number of retries stays the SDK default.
FAST_RETRY = {"retry_backoff_factor": 0.01, "retry_backoff_max": 0.05}


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
        notices = deliver_events(raw_events)
        self.queue.extend(notices)
        return notices

    def deliver_new_events(self) -> list[Notice]:
        """Deliver every event the emulator emitted since the last call."""
        return self.deliver(self.recorder.take_new())

    def run_timer(self) -> list[Notice]:
        """Run the timer function once and return the notices it queued."""
        notices = run_timer()
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
