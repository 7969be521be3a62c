"""certrenew contacts and history."""

import json

from shared.cli import EXIT_OK, EXIT_USAGE
from tests.support.harness import self_signed_policy


def emails(app, vault="contoso-certs"):
    return [contact.email for contact in app.client(vault).get_contacts()]


def test_contacts_set_in_hook_form(app, certrenew):
    # The form infra/hooks/postprovision.sh runs: the vault, then one address per argument.
    result = certrenew("contacts", "set", "contoso-certs", "ops@contoso.com", "pki@contoso.com")

    assert result.code == EXIT_OK, result.err
    assert emails(app) == ["ops@contoso.com", "pki@contoso.com"]
    assert emails(app, "fabrikam-certs") == []


def test_contacts_add_keeps_existing(app, certrenew):
    certrenew("contacts", "set", "contoso-certs", "ops@contoso.com")

    certrenew("contacts", "add", "contoso-certs", "pki@contoso.com", "OPS@contoso.com")

    assert emails(app) == ["ops@contoso.com", "pki@contoso.com"]


def test_contacts_remove_last_leaves_none(app, certrenew):
    certrenew("contacts", "set", "contoso-certs", "ops@contoso.com", "pki@contoso.com")

    certrenew("contacts", "remove", "contoso-certs", "ops@contoso.com")
    assert emails(app) == ["pki@contoso.com"]
    certrenew("contacts", "remove", "contoso-certs", "pki@contoso.com")
    assert emails(app) == []


def test_contacts_remove_absent_is_noted(app, certrenew):
    certrenew("contacts", "set", "contoso-certs", "ops@contoso.com")

    result = certrenew("contacts", "remove", "contoso-certs", "nobody@contoso.com")

    assert result.code == EXIT_OK
    assert "Not a contact of contoso-certs" in result.out
    assert emails(app) == ["ops@contoso.com"]


def test_contacts_list_every_vault(app, certrenew):
    certrenew("contacts", "set", "fabrikam-certs", "pki@fabrikam.com")

    result = certrenew("contacts", "list")

    assert result.out.splitlines() == ["contoso-certs: no certificate contacts", "fabrikam-certs: pki@fabrikam.com"]


def test_contacts_set_rejects_invalid_email(app, certrenew):
    app.keyvault.clear_request_log()

    result = certrenew("contacts", "set", "contoso-certs", "ops@contoso.com,pki@contoso.com")

    assert result.code == EXIT_USAGE
    assert "one address per argument" in result.err
    assert app.keyvault.request_log() == []


def test_history_is_empty_at_first(app, certrenew):
    result = certrenew("history")

    assert result.code == EXIT_OK
    assert result.out == "The journal has no entries.\n"


def test_history_shows_renewal_newest_first(app, certrenew):
    app.client().begin_create_certificate("web", self_signed_policy()).result()
    certrenew("renew", "--vault", "contoso-certs", "web", "--force")
    app.advance(days=1)
    app.run_timer()
    app.deliver_new_events()

    table = certrenew("history", "web", "--vault", "contoso-certs")
    entries = json.loads(certrenew("history", "web", "--json").out)

    assert [entry["action"] for entry in entries] == ["renewed", "renewal-started"]
    assert entries[1]["detail"].startswith("an operator forced the renewal")
    assert table.out.splitlines()[0].split() == ["WHEN", "(UTC)", "VAULT", "CERTIFICATE", "ACTION", "DETAIL"]
    assert "2030-01-02" in table.out.splitlines()[1]
