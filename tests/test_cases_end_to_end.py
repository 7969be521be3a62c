"""Every event case from the field, delivered against the Key Vault emulator, with the outcome it must have."""

import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from shared import notices as kinds
from shared.handlers import handle_event_dicts
from tests.support.harness import notice_kinds, self_signed_policy, unknown_issuer_policy

CASES = Path(__file__).parent / "cases" / "events"


def load_case(name):
    payload = json.loads((CASES / name).read_text())
    return payload if isinstance(payload, list) else [payload]


@pytest.fixture
def vault(app):
    """contoso-certs with the certificates the cases name, all inside the renewal window but legacy-sftp expired."""
    client = app.client()
    client.begin_create_certificate("web-frontend", self_signed_policy(months=12)).result()
    client.begin_create_certificate("legacy-sftp", self_signed_policy(months=1)).result()
    client.begin_create_certificate("partner-api", unknown_issuer_policy(months=12))
    signed = app.keyvault.sign_csr(client.get_certificate_operation("partner-api").csr, days=360)
    client.merge_certificate("partner-api", [signed.public_bytes(Encoding.DER)])
    app.advance(days=345)
    app.recorder.take_new()
    app.keyvault.clear_request_log()
    return client


def creates(app):
    return [r for r in app.app_requests() if r["route"] == "POST /certificates/{name}/create"]


def test_near_expiry_case_starts_renewal(app, vault):
    notices = app.deliver(load_case("near-expiry.eventgrid.json"))

    assert [(n.kind, n.certificate.name) for n in notices] == [(kinds.RENEWAL_STARTED, "web-frontend")]
    assert len(creates(app)) == 1


def test_cloudevent_case_sends_csr_for_other_ca(app, vault):
    outcome, rejected = handle_event_dicts(load_case("near-expiry.cloudevent.json"))

    assert rejected == []
    assert [(n.kind, n.certificate.name) for n in outcome.notices] == [(kinds.CSR_WAITING, "partner-api")]
    assert outcome.notices[0].csr_pem.startswith("-----BEGIN CERTIFICATE REQUEST-----")


def test_expired_case_announces_expiry_and_renews(app, vault):
    notices = app.deliver(load_case("expired.eventgrid.json"))

    assert notice_kinds(notices) == [kinds.EXPIRED, kinds.RENEWAL_STARTED]
    assert all(n.certificate.name == "legacy-sftp" for n in notices)


def test_new_version_case_confirms_renewal_made_outside(app, vault):
    vault.begin_create_certificate("web-frontend", vault.get_certificate_policy("web-frontend")).result()
    app.recorder.take_new()

    notices = app.deliver(load_case("new-version-created.eventgrid.json"))

    [notice] = notices
    assert notice.kind == kinds.RENEWED
    assert notice.renewal.started_by == "other"
    assert notice.renewal.previous_version != notice.renewal.new_version


def test_duplicate_delivery_case_renews_once(app, vault):
    notices = app.deliver(load_case("duplicate-delivery.eventgrid.json"))

    assert notice_kinds(notices) == [kinds.RENEWAL_STARTED]
    assert len(creates(app)) == 1


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("vault-not-allowed.eventgrid.json", "Vault 'someone-elses-vault' is not configured"),
        ("forged-vault-host.eventgrid.json", "is not a valid Key Vault name"),
    ],
)
def test_rejected_case_makes_no_request_and_logs_why(app, vault, caplog, case, reason):
    notices = app.deliver(load_case(case))
    outcome, rejected = handle_event_dicts(load_case(case))

    assert notices == []
    assert outcome.notices == []
    assert len(rejected) == 1
    assert reason in rejected[0]
    assert reason in caplog.text
    assert app.keyvault.request_log() == []
