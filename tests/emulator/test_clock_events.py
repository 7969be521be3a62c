"""Emulator clock, events and AutoRenew, observed through the real SDK and the event sinks."""

from __future__ import annotations

import datetime as dt
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from azure.keyvault.certificates import CertificatePolicy, CertificatePolicyAction, LifetimeAction

from emulators.keyvault import KeyVaultEmulator

from .conftest import START
from .helpers import der, make_client, pfx_bytes, self_signed

NEAR = "Microsoft.KeyVault.CertificateNearExpiry"
EXPIRED = "Microsoft.KeyVault.CertificateExpired"
NEW = "Microsoft.KeyVault.CertificateNewVersionCreated"
DAY = 86400


def of_type(events: list[dict], event_type: str) -> list[dict]:
    return [e for e in events if e["eventType"] == event_type]


def create_self(client, name="web", months=1, **kwargs):
    policy = CertificatePolicy(issuer_name="Self", subject=f"CN={name}.contoso.test", validity_in_months=months, **kwargs)
    return client.begin_create_certificate(name, policy, _polling_interval=0).result()


def test_new_version_event_has_keyvault_fields(client, emulator):
    created = create_self(client, months=12)

    [event] = emulator.recorded.events
    base = emulator.vault_url("contoso-certs")
    assert event["eventType"] == NEW
    assert event["subject"] == "web"
    assert event["topic"].endswith("/providers/Microsoft.KeyVault/vaults/contoso-certs")
    assert event["eventTime"] == START.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    assert event["dataVersion"] == "1"
    assert event["metadataVersion"] == "1"
    assert event["data"] == {
        "Id": f"{base}/certificates/web/{created.properties.version}",
        "VaultName": "contoso-certs",
        "ObjectType": "Certificate",
        "ObjectName": "web",
        "Version": created.properties.version,
        "NBF": int(created.properties.not_before.timestamp()),
        "EXP": int(created.properties.expires_on.timestamp()),
    }
    assert emulator.events == emulator.recorded.events


def test_near_expiry_fires_once_at_30_days(client, emulator):
    # GIVEN a 12-month certificate
    created = create_self(client, months=12)
    expires = int(created.properties.expires_on.timestamp())
    window_opens = expires - 30 * DAY

    # WHEN the clock stops one second before the window, then crosses it, then moves on
    emulator.advance(seconds=window_opens - emulator.epoch() - 1)
    before = of_type(emulator.events, NEAR)
    emulator.advance(seconds=1)
    at_crossing = of_type(emulator.events, NEAR)
    emulator.advance(days=10)

    # THEN NearExpiry came exactly once, stamped with the crossing time
    assert before == []
    assert len(at_crossing) == 1
    assert of_type(emulator.events, NEAR) == at_crossing
    event_time = dt.datetime.fromisoformat(at_crossing[0]["eventTime"].replace("Z", "+00:00"))
    assert int(event_time.timestamp()) == window_opens
    assert at_crossing[0]["data"]["Version"] == created.properties.version


def test_expired_fires_when_clock_passes_expiry(client, emulator):
    created = create_self(client, months=1)
    expires = int(created.properties.expires_on.timestamp())

    emulator.advance(seconds=expires - emulator.epoch() - 1)
    assert of_type(emulator.events, EXPIRED) == []
    emulator.advance(days=400)

    expired = of_type(emulator.events, EXPIRED)
    assert len(expired) == 1
    assert expired[0]["eventTime"] == dt.datetime.fromtimestamp(expires, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    assert len(of_type(emulator.events, NEAR)) == 1


def test_version_inside_window_gets_near_expiry_at_once(client, emulator):
    certificate, key = self_signed("CN=short.contoso.test", emulator.now(), 10)

    client.import_certificate("short", pfx_bytes(certificate, key, None))

    assert [e["eventType"] for e in emulator.events] == [NEW, NEAR]


def test_events_fire_per_version(client, emulator):
    create_self(client, months=1)
    create_self(client, months=1)

    emulator.advance(days=40)

    assert len(of_type(emulator.events, EXPIRED)) == 2
    assert len({e["data"]["Version"] for e in of_type(emulator.events, NEAR)}) == 2


def test_disabled_version_gets_no_expiry_events(client, emulator):
    created = create_self(client, months=1)
    client.update_certificate_properties("web", created.properties.version, enabled=False)

    emulator.advance(days=40)

    assert of_type(emulator.events, NEAR) == []
    assert of_type(emulator.events, EXPIRED) == []


def test_new_version_event_on_merge_and_import(client, emulator):
    operation = client.begin_create_certificate("api", CertificatePolicy(issuer_name="Unknown", subject="CN=api")).result()
    assert emulator.events == []

    client.merge_certificate("api", [der(emulator.sign_csr(operation.csr))])
    certificate, key = self_signed("CN=imp", emulator.now(), 365)
    client.import_certificate("imp", pfx_bytes(certificate, key, None))

    assert [(e["eventType"], e["subject"]) for e in emulator.events] == [(NEW, "api"), (NEW, "imp")]


def test_auto_renew_fires_at_trigger_and_keeps_tags(client, emulator):
    # GIVEN a self-signed certificate that renews at 50 % of its lifetime, tagged on its version
    action = LifetimeAction(CertificatePolicyAction.auto_renew, lifetime_percentage=50)
    first = create_self(client, months=2, lifetime_actions=[action])
    client.update_certificate_properties("web", first.properties.version, tags={"owner": "team-a"})
    start, end = first.properties.not_before.timestamp(), first.properties.expires_on.timestamp()
    trigger = int(start + (end - start) * 50 // 100)

    # WHEN the clock stops just before the trigger, then passes it
    emulator.advance(seconds=trigger - emulator.epoch() - 1)
    unchanged = client.get_certificate("web")
    emulator.advance(seconds=2)

    # THEN a new version exists from the trigger time on, with the tags of the old one
    renewed = client.get_certificate("web")
    assert unchanged.properties.version == first.properties.version
    assert renewed.properties.version != first.properties.version
    assert renewed.properties.tags == {"owner": "team-a"}
    assert int(renewed.properties.not_before.timestamp()) == trigger
    assert len(of_type(emulator.events, NEW)) == 2


def test_auto_renew_repeats_over_a_long_advance(client, emulator):
    action = LifetimeAction(CertificatePolicyAction.auto_renew, days_before_expiry=10)
    create_self(client, months=1, lifetime_actions=[action])

    emulator.advance(days=100)

    versions = list(client.list_properties_of_certificate_versions("web"))
    assert len(versions) >= 4
    latest = client.get_certificate("web")
    assert latest.properties.expires_on > emulator.now() + dt.timedelta(days=9)


def test_auto_renew_through_integrated_ca(client, emulator):
    client.create_issuer("digicert-ov", "DigiCert")
    action = LifetimeAction(CertificatePolicyAction.auto_renew, days_before_expiry=15)
    policy = CertificatePolicy(issuer_name="digicert-ov", subject="CN=shop", validity_in_months=1, lifetime_actions=[action])
    first = client.begin_create_certificate("shop", policy, _polling_interval=0).result()

    emulator.advance(days=20)

    renewed = client.get_certificate("shop")
    assert renewed.properties.version != first.properties.version
    assert renewed.cer is not None


def test_unknown_issuer_never_auto_renews(client, emulator):
    action = LifetimeAction(CertificatePolicyAction.auto_renew, lifetime_percentage=50)
    policy = CertificatePolicy(issuer_name="Unknown", subject="CN=api", lifetime_actions=[action])
    operation = client.begin_create_certificate("api", policy).result()
    client.merge_certificate("api", [der(emulator.sign_csr(operation.csr, days=60))])

    emulator.advance(days=50)

    assert len(list(client.list_properties_of_certificate_versions("api"))) == 1


def test_clock_moves_only_forward(emulator):
    with pytest.raises(ValueError, match="forward"):
        emulator.advance(days=-1)
    assert emulator.now() == START


def test_jsonl_file_sink(tmp_path):
    path = tmp_path / "events.jsonl"
    with KeyVaultEmulator(vaults=["contoso-certs"], event_sink=str(path), start_time=START) as emulator:
        create_self(make_client(emulator), months=1)
        emulator.advance(days=40)

    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [e["eventType"] for e in lines] == [NEW, NEAR, EXPIRED]


class _Collector(BaseHTTPRequestHandler):
    received: list = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.received.append((self.headers["aeg-event-type"], self.headers["Content-Type"], body))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def collector():
    _Collector.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Collector)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/runtime/webhooks/EventGrid?functionName=on_event", _Collector.received
    server.shutdown()
    server.server_close()


def test_http_sink_posts_event_grid_arrays(collector):
    url, received = collector
    with KeyVaultEmulator(vaults=["contoso-certs"], event_sink=url, start_time=START) as emulator:
        create_self(make_client(emulator), months=12)

    [(event_type_header, content_type, body)] = received
    assert event_type_header == "Notification"
    assert content_type == "application/json"
    assert isinstance(body, list) and body[0]["eventType"] == NEW
    assert body[0]["data"]["VaultName"] == "contoso-certs"


def test_http_sink_sends_cloud_events(collector):
    url, received = collector
    with KeyVaultEmulator(vaults=["contoso-certs"], event_sink=url, start_time=START, cloud_events=True) as emulator:
        create_self(make_client(emulator), months=12)

    [(_, content_type, [event])] = received
    assert content_type == "application/cloudevents-batch+json"
    assert event["specversion"] == "1.0"
    assert event["type"] == NEW
    assert event["source"].endswith("/vaults/contoso-certs")
    assert event["subject"] == "web"
    assert event["time"] == START.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert event["data"]["ObjectName"] == "web"


def test_http_sink_rejects_other_hosts():
    with pytest.raises(ValueError, match="loopback"):
        KeyVaultEmulator(vaults=["contoso-certs"], event_sink="https://example.com/events")
