"""Key Vault certificate events as Event Grid delivers them, read and validated before any request.

Event Grid posts Key Vault events in the Event Grid schema or as CloudEvents 1.0. The vault and certificate
are always taken from `data`, because the Functions trigger leaves the envelope fields empty for CloudEvents.
Field reference: https://learn.microsoft.com/azure/event-grid/event-schema-key-vault
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Iterable
from urllib.parse import urlsplit

from azure.core.messaging import CloudEvent
from azure.eventgrid import EventGridEvent, SystemEventNames

from shared.errors import RejectedEvent
from shared.names import is_object_name, is_vault_name, is_version
from shared.settings import KEY_VAULT_DNS_SUFFIXES, Settings, VaultConfig

logger = logging.getLogger(__name__)

NEAR_EXPIRY = SystemEventNames.KeyVaultCertificateNearExpiryEventName.value
EXPIRED = SystemEventNames.KeyVaultCertificateExpiredEventName.value
NEW_VERSION_CREATED = SystemEventNames.KeyVaultCertificateNewVersionCreatedEventName.value
SUBSCRIPTION_VALIDATION = SystemEventNames.EventGridSubscriptionValidationEventName.value

CERTIFICATE_EVENT_TYPES = (NEAR_EXPIRY, EXPIRED, NEW_VERSION_CREATED)

# Event types each Event Grid function handles, by function name. The Event Grid subscriptions in infra/
# filter on these, so a function only receives the events it handles.
SUBSCRIPTIONS: dict[str, tuple[str, ...]] = {
    "on_certificate_expiring": (NEAR_EXPIRY, EXPIRED),
    "on_certificate_version_created": (NEW_VERSION_CREATED,),
}


@dataclass(frozen=True)
class CertificateEvent:
    """A validated Key Vault certificate event. Every field has passed Key Vault's naming rules."""

    event_id: str
    event_type: str
    vault: VaultConfig
    certificate_name: str
    # Version the event is about. Older payloads have none; then it comes from `Id`, or stays None.
    version: str | None
    not_before: datetime | None
    expires_on: datetime | None

    def describe(self) -> str:
        """Return the identifiers for log lines."""
        return (
            f"event={self.event_id} type={self.event_type} vault={self.vault.name} "
            f"certificate={self.certificate_name} version={self.version}"
        )


def load_event_file(text: str) -> list[dict[str, Any]]:
    """Parse the JSON of an event file or request body: one event or an array of them."""
    try:
        payload = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RejectedEvent(f"The event payload is not valid JSON: {exc}.") from exc
    if isinstance(payload, dict):
        return [payload]
    if isinstance(payload, list) and all(isinstance(item, dict) for item in payload):
        return payload
    raise RejectedEvent("The event payload must be a JSON object or an array of objects.")


def envelope_fields(raw: dict[str, Any]) -> tuple[str, str | None, Any]:
    """Read id, event type and data from an Event Grid schema or CloudEvents 1.0 envelope.

    The Event Grid schema goes through azure-eventgrid's EventGridEvent model and CloudEvents through
    azure-core's CloudEvent, so both are read the way the SDKs read them.
    """
    if "specversion" in raw:
        try:
            cloud_event = CloudEvent.from_dict(raw)
        except (ValueError, TypeError, KeyError) as exc:
            raise RejectedEvent(f"The CloudEvent is malformed: {exc}.", raw.get("id")) from exc
        return str(cloud_event.id), cloud_event.type, cloud_event.data

    try:
        grid_event = EventGridEvent.from_dict(raw)
    except (ValueError, TypeError, KeyError) as exc:
        raise RejectedEvent(f"The Event Grid event is malformed: {exc}.", raw.get("id")) from exc
    if grid_event.id is None or grid_event.event_type is None:
        raise RejectedEvent("The Event Grid event has no id or eventType.", raw.get("id"))
    return str(grid_event.id), grid_event.event_type, grid_event.data


def parse_certificate_event(
    event_id: str | None,
    event_type: str | None,
    data: Any,
    settings: Settings,
    handled_types: Iterable[str] = CERTIFICATE_EVENT_TYPES,
) -> CertificateEvent:
    """Validate one event's data against the configured vaults and Key Vault's naming rules.

    Raises RejectedEvent for anything that can never succeed: an event type this function does not handle,
    a secret or key event, malformed data, a vault that is not configured, or an `Id` that points elsewhere.
    No request is made, so nothing from a rejected event reaches a URL.
    """
    event_id = event_id or "(no id)"
    handled = tuple(handled_types)
    if event_type is None and len(handled) == 1:
        # A CloudEvent through the Functions trigger arrives without its type, but the subscription
        # filter lets through only this function's one type.
        event_type = handled[0]
    if event_type == SUBSCRIPTION_VALIDATION:
        raise RejectedEvent("Subscription validation events are handled by the Functions host.", event_id)
    if event_type is not None and event_type not in handled:
        raise RejectedEvent(f"Event type {event_type!r} is not handled by this function.", event_id)
    if not isinstance(data, dict):
        raise RejectedEvent("The event data is not a JSON object.", event_id)

    object_type = data.get("ObjectType")
    if object_type != "Certificate":
        raise RejectedEvent(f"ObjectType {object_type!r} is not a certificate; only certificates are renewed.", event_id)

    vault_name = data.get("VaultName")
    if not is_vault_name(vault_name):
        raise RejectedEvent(f"VaultName {vault_name!r} is not a valid Key Vault name.", event_id)
    vault = settings.vault_by_name(vault_name)
    if vault is None:
        raise RejectedEvent(
            f"Vault {vault_name!r} is not configured. Add it to CERTRENEW_VAULTS if this app should manage it.",
            event_id,
        )

    id_name, id_version = _parse_object_id(data.get("Id"), vault, event_id)
    certificate_name = data.get("ObjectName", id_name)
    if not is_object_name(certificate_name):
        raise RejectedEvent(f"ObjectName {certificate_name!r} is not a valid certificate name.", event_id)
    if id_name is not None and id_name != certificate_name:
        raise RejectedEvent(f"Id names certificate {id_name!r} but ObjectName is {certificate_name!r}.", event_id)

    version = data.get("Version", id_version)
    if version is not None and not is_version(version):
        raise RejectedEvent(f"Version {version!r} is not a Key Vault version.", event_id)
    if id_version is not None and version is not None and id_version.lower() != version.lower():
        raise RejectedEvent(f"Id names version {id_version!r} but Version is {version!r}.", event_id)

    if event_type is None:
        # A CloudEvent to a function that handles several types: the subscription filter guarantees
        # one of them, and the renewal decision reads the real state from Key Vault anyway.
        event_type = handled[0]
    return CertificateEvent(
        event_id=event_id,
        event_type=event_type,
        vault=vault,
        certificate_name=certificate_name,
        version=version.lower() if version else None,
        not_before=_parse_unix_time(data.get("NBF"), "NBF", event_id),
        expires_on=_parse_unix_time(data.get("EXP"), "EXP", event_id),
    )


def _parse_object_id(raw: Any, vault: VaultConfig, event_id: str) -> tuple[str | None, str | None]:
    """Check that `Id` points at the configured vault and return the certificate name and version in it."""
    if raw is None:
        return None, None
    if not isinstance(raw, str):
        raise RejectedEvent("Id is not a string.", event_id)
    parts = urlsplit(raw)
    if parts.scheme != "https" or parts.query or parts.fragment or parts.username or parts.password:
        raise RejectedEvent(f"Id {raw!r} is not a plain https URL.", event_id)
    if not _is_host_of_vault(parts.netloc.lower(), vault):
        raise RejectedEvent(f"Id {raw!r} does not point at vault {vault.name!r}.", event_id)

    segments = parts.path.split("/")
    if len(segments) not in (3, 4) or segments[0] != "" or segments[1] != "certificates":
        raise RejectedEvent(f"Id {raw!r} is not a certificate URL.", event_id)
    name = segments[2]
    version = segments[3] if len(segments) == 4 else None
    if not is_object_name(name) or (version is not None and not is_version(version)):
        raise RejectedEvent(f"Id {raw!r} has an invalid certificate name or version.", event_id)
    return name, version


def _is_host_of_vault(netloc: str, vault: VaultConfig) -> bool:
    """Accept the configured vault's own host, or the vault's name on a Key Vault domain."""
    if netloc == urlsplit(vault.url).netloc.lower():
        return True
    return any(netloc == vault.name.lower() + suffix for suffix in KEY_VAULT_DNS_SUFFIXES)


def _parse_unix_time(raw: Any, field: str, event_id: str) -> datetime | None:
    """Read NBF or EXP, which Key Vault sends as Unix seconds, as a number or a string of digits."""
    if raw is None:
        return None
    if isinstance(raw, bool):
        raise RejectedEvent(f"{field} {raw!r} is not a Unix time.", event_id)
    if isinstance(raw, str) and raw.strip().isdigit():
        raw = int(raw.strip())
    if not isinstance(raw, (int, float)) or not 0 <= raw < 253402300800:
        raise RejectedEvent(f"{field} {raw!r} is not a Unix time.", event_id)
    return datetime.fromtimestamp(raw, tz=timezone.utc)
