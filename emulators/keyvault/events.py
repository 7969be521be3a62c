"""Key Vault certificate events in the Event Grid schema, and their delivery to a callable, a file or a URL."""

from __future__ import annotations

import datetime as dt
import json
import logging
import ssl
import threading
import urllib.request
import uuid
from pathlib import Path
from typing import Callable
from urllib.parse import urlsplit

from azure.core.messaging import CloudEvent
from azure.eventgrid import EventGridEvent

logger = logging.getLogger(__name__)

NEW_VERSION_CREATED = "Microsoft.KeyVault.CertificateNewVersionCreated"
NEAR_EXPIRY = "Microsoft.KeyVault.CertificateNearExpiry"
EXPIRED = "Microsoft.KeyVault.CertificateExpired"

# Key Vault sends NearExpiry 30 days before expiry; the service does not let anyone change it.
NEAR_EXPIRY_SECONDS = 30 * 86400
TOPIC_TEMPLATE = (
    "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/emulator/providers/"
    "Microsoft.KeyVault/vaults/{vault}"
)
# Event Grid waits 30 seconds for a webhook's response.
DELIVERY_TIMEOUT_SECONDS = 30
LOOPBACK_HOSTS = ("127.0.0.1", "::1", "localhost")

EventSink = Callable[[list[dict]], None]


def certificate_event(
    event_type: str, vault_name: str, certificate_name: str, version: str, version_url: str,
    nbf: int | None, exp: int | None, at: dt.datetime,
) -> dict:
    """Build one certificate event with the EventGridEvent model and return it in the Event Grid schema."""
    data = {
        "Id": version_url,
        "VaultName": vault_name,
        "ObjectType": "Certificate",
        "ObjectName": certificate_name,
        "Version": version,
        "NBF": nbf,
        "EXP": exp,
    }
    event = EventGridEvent(
        subject=certificate_name,
        event_type=event_type,
        data=data,
        data_version="1",
        topic=TOPIC_TEMPLATE.format(vault=vault_name),
        event_time=at,
        id=str(uuid.uuid4()),
    )
    body = event.serialize(keep_readonly=True)
    # metadataVersion is read-only in the model, so Event Grid stamps it on delivery; the emulator does the same.
    body["metadataVersion"] = "1"
    return body


def to_cloud_event(event: dict) -> dict:
    """Convert an Event Grid schema event into the CloudEvents 1.0 schema, through azure-core's CloudEvent."""
    cloud_event = CloudEvent(
        source=event["topic"],
        type=event["eventType"],
        data=event["data"],
        subject=event["subject"],
        time=dt.datetime.fromisoformat(event["eventTime"].replace("Z", "+00:00")),
        id=event["id"],
    )
    return {
        "specversion": cloud_event.specversion,
        "id": cloud_event.id,
        "source": cloud_event.source,
        "subject": cloud_event.subject,
        "type": cloud_event.type,
        "time": cloud_event.time.isoformat().replace("+00:00", "Z"),
        "data": cloud_event.data,
    }


def make_sink(target: object, cloud_events: bool = False) -> EventSink | None:
    """Return a delivery function for a callable, a JSON lines file path, or a loopback http(s) URL."""
    if target is None:
        return None
    if callable(target):
        return _convert(target, cloud_events)
    text = str(target)
    if text.startswith(("http://", "https://")):
        host = urlsplit(text).hostname or ""
        if host not in LOOPBACK_HOSTS:
            raise ValueError(
                f"Event sink URL {text!r} is not on a loopback address. Give an http(s)://127.0.0.1 URL, "
                "because the emulator only talks to this machine."
            )
        return _convert(_HttpSink(text, cloud_events), cloud_events)
    return _convert(_FileSink(Path(text)), cloud_events)


def _convert(sink: Callable[[list[dict]], None], cloud_events: bool) -> EventSink:
    if not cloud_events:
        return sink
    return lambda events: sink([to_cloud_event(event) for event in events])


class _FileSink:
    """Appends one event per line to a JSON lines file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)

    def __call__(self, events: list[dict]) -> None:
        lines = "".join(json.dumps(event) + "\n" for event in events)
        with self._lock, self.path.open("a", encoding="utf-8") as file:
            file.write(lines)


class _HttpSink:
    """Posts each event as a one-element array, as an Event Grid webhook subscription does by default."""

    def __init__(self, url: str, cloud_events: bool) -> None:
        self.url = url
        self.content_type = "application/cloudevents-batch+json" if cloud_events else "application/json"

    def __call__(self, events: list[dict]) -> None:
        for event in events:
            request = urllib.request.Request(
                self.url,
                data=json.dumps([event]).encode(),
                method="POST",
                headers={"Content-Type": self.content_type, "aeg-event-type": "Notification"},
            )
            try:
                context = ssl.create_default_context() if self.url.startswith("https") else None
                with urllib.request.urlopen(request, timeout=DELIVERY_TIMEOUT_SECONDS, context=context) as answer:
                    answer.read()
            except OSError as exc:
                # Event Grid would retry for a day; the emulator tries once, so a missing event shows in a test at once.
                logger.warning("Event delivery failed: url=%s event_id=%s error=%s", self.url, event.get("id"), exc)
