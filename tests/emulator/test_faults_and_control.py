"""Injected faults retried by the SDK, secret reads, and the HTTP control API."""

from __future__ import annotations

import pytest
from azure.core.exceptions import HttpResponseError
from azure.core.rest import HttpRequest
from azure.keyvault.certificates import CertificatePolicy

from .conftest import START

CREATE = "POST /certificates/{name}/create"
GET = "GET /certificates/{name}/{version}"


def answered(emulator, route: str) -> list[int]:
    """Return the statuses of the authorized requests to route, in order."""
    return [e["status"] for e in emulator.request_log("contoso-certs") if e["route"] == route and e["status"] != 401]


@pytest.fixture
def existing(client):
    client.begin_create_certificate("web", CertificatePolicy.get_default(), _polling_interval=0).result()
    return "web"


def test_two_503_then_success(client, emulator):
    emulator.inject_fault("contoso-certs", CREATE, "503", count=2)

    client.begin_create_certificate("web", CertificatePolicy.get_default(), _polling_interval=0).result()

    assert answered(emulator, CREATE) == [503, 503, 202]


def test_429_with_retry_after_is_retried(client, emulator, existing):
    emulator.clear_request_log()
    emulator.inject_fault("contoso-certs", GET, "429", retry_after=1)

    assert client.get_certificate(existing).name == "web"

    assert answered(emulator, GET) == [429, 200]


def test_429_without_retry_after_on_get_is_retried(client, emulator, existing):
    emulator.clear_request_log()
    emulator.inject_fault("contoso-certs", GET, "429")

    client.get_certificate(existing)

    assert answered(emulator, GET) == [429, 200]


def test_429_error_body_is_keyvault_shaped(emulator, existing):
    from .helpers import make_client

    emulator.inject_fault("contoso-certs", GET, "429", count=10)
    with make_client(emulator, retry_total=0) as no_retry:
        with pytest.raises(HttpResponseError) as caught:
            no_retry.get_certificate(existing)
    assert caught.value.status_code == 429
    assert caught.value.error.code == "Throttled"


def test_500_is_retried(client, emulator, existing):
    emulator.clear_request_log()
    emulator.inject_fault("contoso-certs", "*", "500")

    client.get_certificate(existing)

    assert answered(emulator, GET) == [500, 200]


def test_dropped_connection_is_retried(client, emulator, existing):
    emulator.clear_request_log()
    emulator.inject_fault("contoso-certs", GET, "drop")

    assert client.get_certificate(existing).name == "web"

    assert answered(emulator, GET) == ["dropped", 200]


def test_delay_then_normal_answer(client, emulator, existing):
    emulator.clear_request_log()
    emulator.inject_fault("contoso-certs", GET, "delay", delay=0.2)

    assert client.get_certificate(existing).name == "web"
    assert answered(emulator, GET) == [200]


def test_fault_hits_only_its_vault(emulator, existing):
    from .helpers import make_client

    emulator.inject_fault("fabrikam-certs", "*", "503", count=5)
    with make_client(emulator, "contoso-certs") as contoso:
        contoso.get_certificate(existing)
    assert answered(emulator, GET)[-1] == 200


def test_unknown_fault_kind_is_rejected(emulator):
    with pytest.raises(ValueError, match="unknown"):
        emulator.inject_fault("contoso-certs", "*", "418")


def test_first_request_is_challenged():
    # A fresh emulator has a port the SDK's process-wide challenge cache has not seen.
    from emulators.keyvault import KeyVaultEmulator

    from .helpers import make_client

    with KeyVaultEmulator(vaults=["contoso-certs"], start_time=START) as fresh:
        with make_client(fresh) as fresh_client:
            assert list(fresh_client.list_properties_of_certificates()) == []
        log = fresh.request_log()

    assert [e["status"] for e in log] == [401, 200]


def test_secret_read_is_recorded_and_forbidden(client, emulator, existing):
    answer = client.send_request(HttpRequest("GET", "/secrets/web/?api-version=7.6"))

    assert answer.status_code == 403
    assert answer.json()["error"]["code"] == "Forbidden"
    assert [(r["vault"], r["name"]) for r in emulator.secret_reads] == [("contoso-certs", "web")]
    assert any(e["route"] == "GET /secrets/{name}/{version}" for e in emulator.request_log())


def control(client, method: str, action: str, body: dict | None = None):
    return client.send_request(HttpRequest(method, f"/_emulator/{action}", json=body))


def test_control_api_moves_clock(client, emulator):
    before = control(client, "GET", "clock").json()
    after = control(client, "POST", "clock", {"advance_days": 2}).json()

    assert before["now"] == int(START.timestamp())
    assert after["now"] == before["now"] + 2 * 86400
    assert after["iso"] == "2030-01-03T00:00:00Z"
    assert emulator.epoch() == after["now"]


def test_control_api_faults_and_logs(client, emulator, existing):
    control(client, "DELETE", "requests")
    control(client, "POST", "faults", {"route": GET, "kind": "503", "count": 1})

    client.get_certificate(existing)

    log = control(client, "GET", "requests").json()["value"]
    assert [e["status"] for e in log if e["route"] == GET] == [503, 200]
    events = control(client, "GET", "events").json()["value"]
    assert events[0]["eventType"] == "Microsoft.KeyVault.CertificateNewVersionCreated"
    assert control(client, "GET", "secret-reads").json()["value"] == []


def test_control_api_reset_forgets_certificates(client, emulator, existing):
    assert control(client, "POST", "reset").status_code == 200

    assert list(client.list_properties_of_certificates()) == []
    assert emulator.events == []
