"""certrenew renew, csr and cancel, and how a command chooses its vault."""

import json

import pytest
from azure.core.exceptions import ResourceNotFoundError
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from shared import notices as kinds
from shared.cli import EXIT_FAILED, EXIT_OK, EXIT_USAGE, EXIT_WARNING, main
from shared.cli.common import CommandError
from tests.support.harness import notice_kinds, self_signed_policy, unknown_issuer_policy


def test_renew_force_starts_before_window(app, certrenew):
    client = app.client()
    client.begin_create_certificate("web", self_signed_policy()).result()
    before = client.get_certificate("web").properties.version

    result = certrenew("renew", "--vault", "contoso-certs", "web", "--force")

    assert result.code == EXIT_OK, result.err
    assert "an operator forced the renewal" in result.out
    app.run_timer()
    assert client.get_certificate("web").properties.version != before


def test_renew_before_window_starts_nothing(app, certrenew):
    app.client().begin_create_certificate("web", self_signed_policy()).result()
    app.keyvault.clear_request_log()

    result = certrenew("renew", "--vault", "contoso-certs", "web")

    assert result.code == EXIT_WARNING
    assert "not due until" in result.out
    assert "--force" in result.out
    assert [entry for entry in app.app_requests() if entry["method"] != "GET"] == []


def test_renew_of_unknown_certificate_fails(app, certrenew):
    result = certrenew("renew", "--vault", "contoso-certs", "nothing-here")

    assert result.code == EXIT_FAILED
    assert "nothing-here was not found in vault contoso-certs" in result.err


def test_renew_other_ca_prints_csr_next_step(app, certrenew):
    client = app.client()
    client.begin_create_certificate("partner", unknown_issuer_policy())
    signed = app.keyvault.sign_csr(client.get_certificate_operation("partner").csr)
    client.merge_certificate("partner", [signed.public_bytes(Encoding.DER)])

    result = certrenew("renew", "--vault", "contoso-certs", "partner", "--force")

    assert result.code == EXIT_OK
    assert "waiting for your CA's signature" in result.out
    assert client.get_certificate_operation("partner").status == "inProgress"


def test_csr_writes_pem_of_pending_operation(app, certrenew, tmp_path):
    client = app.client()
    client.begin_create_certificate("partner", unknown_issuer_policy())
    target = tmp_path / "partner.csr"

    result = certrenew("csr", "--vault", "contoso-certs", "partner", "-o", str(target))

    assert result.code == EXIT_OK
    request = x509.load_pem_x509_csr(target.read_bytes())
    assert request.public_bytes(Encoding.DER) == client.get_certificate_operation("partner").csr
    assert request.subject.rfc4514_string() == "CN=partner.contoso.test"
    assert "certrenew merge --vault contoso-certs partner" in result.err


def test_csr_to_stdout_is_only_pem(app, certrenew):
    app.client().begin_create_certificate("partner", unknown_issuer_policy())

    result = certrenew("csr", "--vault", "contoso-certs", "partner")

    assert result.out.startswith("-----BEGIN CERTIFICATE REQUEST-----\n")
    assert result.out.endswith("-----END CERTIFICATE REQUEST-----\n")
    x509.load_pem_x509_csr(result.out.encode())


def test_csr_without_operation_says_how_to_start(app, certrenew):
    app.client().begin_create_certificate("web", self_signed_policy()).result()

    result = certrenew("csr", "--vault", "contoso-certs", "web")

    assert result.code == EXIT_FAILED
    assert "is completed, so no CSR waits for a signature" in result.err
    assert "certrenew renew --vault contoso-certs web --force" in result.err


def test_cancel_deletes_operation_and_closes_renewal(app, certrenew):
    # GIVEN a renewal the app started, waiting for a CSR to be signed
    client = app.client()
    client.begin_create_certificate("partner", unknown_issuer_policy())
    signed = app.keyvault.sign_csr(client.get_certificate_operation("partner").csr)
    client.merge_certificate("partner", [signed.public_bytes(Encoding.DER)])
    certrenew("renew", "--vault", "contoso-certs", "partner", "--force")

    # WHEN the operator cancels it
    result = certrenew("cancel", "--vault", "contoso-certs", "partner", "--yes")

    # THEN the operation is gone, the history records it, and the timer reports no failure
    assert result.code == EXIT_OK, result.err
    with pytest.raises(ResourceNotFoundError):
        client.get_certificate_operation("partner")
    history = json.loads(certrenew("history", "partner", "--json").out)
    assert history[0]["action"] == "operation-cancelled"
    assert kinds.RENEWAL_FAILED not in notice_kinds(app.run_timer())


def test_cancel_without_terminal_needs_yes(app, certrenew, monkeypatch):
    client = app.client()
    client.begin_create_certificate("partner", unknown_issuer_policy())
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)

    result = certrenew("cancel", "--vault", "contoso-certs", "partner")

    assert result.code == EXIT_USAGE
    assert "add --yes" in result.err
    assert client.get_certificate_operation("partner").status == "inProgress"


def test_cancel_declined_changes_nothing(app, certrenew, monkeypatch):
    client = app.client()
    client.begin_create_certificate("partner", unknown_issuer_policy())
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    monkeypatch.setattr("builtins.input", lambda prompt: "n")

    result = certrenew("cancel", "--vault", "contoso-certs", "partner")

    assert result.code == EXIT_OK
    assert "Nothing was changed" in result.out
    assert client.get_certificate_operation("partner").status == "inProgress"


def test_command_without_vault_when_several_configured(app, certrenew):
    result = certrenew("csr", "partner")

    assert result.code == EXIT_USAGE
    assert "Several vaults are configured (contoso-certs, fabrikam-certs)" in result.err
    assert "--vault" in result.err


def test_vault_by_url_works(app, certrenew):
    app.client().begin_create_certificate("partner", unknown_issuer_policy())

    result = certrenew("csr", "--vault", app.keyvault.vault_url("contoso-certs") + "/", "partner")

    assert result.code == EXIT_OK
    assert "BEGIN CERTIFICATE REQUEST" in result.out


def test_invalid_certificate_name_is_usage_error(app, certrenew):
    result = certrenew("csr", "--vault", "contoso-certs", "../secrets")

    assert result.code == EXIT_USAGE
    assert "is not a certificate name" in result.err
    assert app.keyvault.request_log() == []


def test_debug_shows_traceback(app):
    with pytest.raises(CommandError, match="Several vaults"):
        main(["--debug", "csr", "partner"])

