"""certrenew status: every certificate, most urgent first, with an exit code for monitoring."""

import json

from azure.keyvault.certificates import CertificatePolicy
from cryptography.hazmat.primitives.serialization import Encoding

from shared.cli import EXIT_CRITICAL, EXIT_OK, EXIT_USAGE, EXIT_WARNING
from tests.support.harness import self_signed_policy, unknown_issuer_policy


def create_mix(app):
    """Three certificates: one expired, one waiting for a signed certificate, one fine."""
    client = app.client()
    client.begin_create_certificate("short-lived", self_signed_policy(months=1)).result()
    app.advance(days=40)
    client.begin_create_certificate("web", self_signed_policy()).result()
    client.begin_create_certificate("partner", unknown_issuer_policy())
    return client


def test_status_lists_most_urgent_first(app, certrenew):
    create_mix(app)

    result = certrenew("status", "--vault", "contoso-certs")

    names = [line.split()[0] for line in result.out.splitlines()[1:]]
    assert names == ["short-lived", "partner", "web"]
    lines = {line.split()[0]: line for line in result.out.splitlines()[1:]}
    assert "expired" in lines["short-lived"]
    assert "csr-waiting" in lines["partner"]
    assert "CSR waiting" in lines["partner"]
    assert " ok " in lines["web"]
    assert "self-signed" in lines["web"]


def test_status_exits_5_when_expired(app, certrenew):
    create_mix(app)

    assert certrenew("status").code == EXIT_CRITICAL


def test_status_exits_4_when_csr_waits(app, certrenew):
    app.client().begin_create_certificate("partner", unknown_issuer_policy())

    assert certrenew("status").code == EXIT_WARNING


def test_status_exits_0_when_all_fine(app, certrenew):
    app.client().begin_create_certificate("web", self_signed_policy()).result()

    result = certrenew("status")

    assert result.code == EXIT_OK
    assert "web" in result.out
    assert result.err == ""


def test_status_exits_5_when_operation_failed(app, certrenew):
    client = app.client()
    client.create_issuer("contoso-digicert", "DigiCert", account_id="acct", password="not-a-real-password")
    app.keyvault.fail_next_issuance("contoso-certs", "shop", "CertificateRequestRejected", "Validation failed.")
    policy = CertificatePolicy(issuer_name="contoso-digicert", subject="CN=shop.contoso.test",
                               san_dns_names=["shop.contoso.test"], validity_in_months=12)
    client.begin_create_certificate("shop", policy, _polling_interval=0).wait()

    result = certrenew("status", "--json")

    [row] = json.loads(result.out)["certificates"]
    assert result.code == EXIT_CRITICAL
    assert row["state"] == "failed"
    assert row["kind"] == "integrated-ca"
    assert row["operation"]["error_code"] == "CertificateRequestRejected"


def test_status_json_parses_with_fields(app, certrenew):
    create_mix(app)

    result = certrenew("status", "--json", "--vault", "contoso-certs")

    document = json.loads(result.out)
    rows = {row["name"]: row for row in document["certificates"]}
    assert document["exit_code"] == result.code == EXIT_CRITICAL
    assert document["vaults"] == ["contoso-certs"]
    assert rows["web"]["kind"] == "self-signed"
    assert rows["web"]["mode"] == "renew"
    assert rows["web"]["days_left"] == 365
    assert rows["partner"]["kind"] == "other-ca"
    assert rows["partner"]["mode"] == "csr"
    assert rows["partner"]["operation"]["status"] == "inProgress"
    assert rows["short-lived"]["severity"] == "critical"
    assert rows["short-lived"]["expires_on"].endswith("Z")


def test_status_due_shows_only_due(app, certrenew):
    client = app.client()
    client.begin_create_certificate("soon", self_signed_policy(months=1)).result()
    client.begin_create_certificate("later", self_signed_policy(months=12)).result()
    app.advance(days=25)

    result = certrenew("status", "--due", "--json")

    names = [row["name"] for row in json.loads(result.out)["certificates"]]
    assert names == ["soon"]


def test_status_shows_version_in_use_during_renewal(app, certrenew):
    # GIVEN a certificate of issuer Unknown with a merged version, and a renewal waiting for its CSR
    client = app.client()
    client.begin_create_certificate("partner", unknown_issuer_policy())
    signed = app.keyvault.sign_csr(client.get_certificate_operation("partner").csr, days=365)
    client.merge_certificate("partner", [signed.public_bytes(Encoding.DER)])
    app.advance(days=340)
    certrenew("renew", "--vault", "contoso-certs", "partner")

    # WHEN status runs
    result = certrenew("status", "--json", "--vault", "contoso-certs")

    # THEN it shows the expiry of the version in use, the waiting operation and the app's last action
    [row] = json.loads(result.out)["certificates"]
    assert row["state"] == "csr-waiting"
    assert row["days_left"] == 25
    assert row["last_action"]["action"] == "renewal-started"


def test_status_respects_no_color(app, certrenew, monkeypatch):
    create_mix(app)
    monkeypatch.setenv("NO_COLOR", "1")

    assert "\x1b[" not in certrenew("status").out
    assert "\x1b[" in certrenew("status", "--color", "always").out


def test_status_request_cost(app, certrenew):
    # GIVEN 30 certificates (two list pages of 25) and one whose first version waits for a CSR
    app.keyvault.seed_certificates("contoso-certs", 30, expires_in_days=200)
    # NOTE: named to sort onto the first page, because the emulator's nextLink drops includePending.
    app.client().begin_create_certificate("api-partner", unknown_issuer_policy())
    app.keyvault.clear_request_log()

    certrenew("status", "--vault", "contoso-certs")

    # THEN it costs 2 list pages, 31 policy reads, and for the pending one an operation read and a version list
    routes = [entry["route"] for entry in app.app_requests()]
    assert routes.count("GET /certificates") == 2
    assert routes.count("GET /certificates/{name}/policy") == 31
    assert routes.count("GET /certificates/{name}/pending") == 1
    assert routes.count("GET /certificates/{name}/versions") == 1
    assert len(routes) == 35


def test_status_of_unknown_vault_names_configured(app, certrenew):
    result = certrenew("status", "--vault", "nobody-certs")

    assert result.code == EXIT_USAGE
    assert "contoso-certs, fabrikam-certs" in result.err
    assert app.keyvault.request_log() == []

