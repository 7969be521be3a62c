"""Reading and validating Key Vault events, before any request is made."""

from pathlib import Path

import pytest

from shared.errors import RejectedEvent
from shared.events import EXPIRED, NEAR_EXPIRY, NEW_VERSION_CREATED, SUBSCRIPTIONS, envelope_fields, load_event_file, parse_certificate_event
from shared.settings import load_settings

CASES = Path(__file__).parent / "cases" / "events"


@pytest.fixture
def settings():
    return load_settings({"CERTRENEW_VAULTS": "https://contoso-certs.vault.azure.net/"})


def parse_case(name, settings, handled=None):
    events = load_event_file((CASES / name).read_text())
    parsed = []
    for raw in events:
        event_id, event_type, data = envelope_fields(raw)
        kwargs = {"handled_types": handled} if handled else {}
        parsed.append(parse_certificate_event(event_id, event_type, data, settings, **kwargs))
    return parsed


def test_near_expiry_eventgrid_case_is_read(settings):
    [event] = parse_case("near-expiry.eventgrid.json", settings)

    assert event.event_type == NEAR_EXPIRY
    assert event.vault.name == "contoso-certs"
    assert event.certificate_name == "web-frontend"
    assert event.version == "4f0e5cbb8f2a4d0c9b7e2a1c3d5f6e70"
    assert int(event.expires_on.timestamp()) == 1797660000


def test_near_expiry_cloudevent_with_string_times_is_read(settings):
    [event] = parse_case("near-expiry.cloudevent.json", settings)

    assert event.event_type == NEAR_EXPIRY
    assert event.certificate_name == "partner-api"
    assert int(event.not_before.timestamp()) == 1734588000
    assert int(event.expires_on.timestamp()) == 1797746400


def test_expired_and_new_version_cases_keep_their_types(settings):
    [expired] = parse_case("expired.eventgrid.json", settings)
    [created] = parse_case("new-version-created.eventgrid.json", settings)

    assert expired.event_type == EXPIRED
    assert expired.certificate_name == "legacy-sftp"
    assert created.event_type == NEW_VERSION_CREATED
    assert created.version == "9a8b7c6d5e4f40312a1b2c3d4e5f6a7b"


def test_duplicate_delivery_case_holds_one_event_twice(settings):
    first, second = parse_case("duplicate-delivery.eventgrid.json", settings)

    assert first == second


def test_vault_not_allowed_is_rejected_naming_the_setting(settings):
    with pytest.raises(RejectedEvent, match="someone-elses-vault.*not configured.*CERTRENEW_VAULTS"):
        parse_case("vault-not-allowed.eventgrid.json", settings)


def test_forged_vault_host_is_rejected(settings):
    with pytest.raises(RejectedEvent, match="VaultName .* is not a valid Key Vault name"):
        parse_case("forged-vault-host.eventgrid.json", settings)


def test_id_on_other_host_is_rejected(settings):
    data = {
        "Id": "https://contoso-certs.vault.azure.net.attacker.example/certificates/web/0123456789abcdef0123456789abcdef",
        "VaultName": "contoso-certs",
        "ObjectType": "Certificate",
        "ObjectName": "web",
    }

    with pytest.raises(RejectedEvent, match="does not point at vault"):
        parse_certificate_event("e1", NEAR_EXPIRY, data, settings)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("ObjectType", "Secret", "not a certificate"),
        ("ObjectName", "web/../../keys", "not a valid certificate name"),
        ("Version", "latest?x=1", "not a Key Vault version"),
        ("EXP", "soon", "EXP 'soon' is not a Unix time"),
        ("NBF", True, "NBF True is not a Unix time"),
    ],
)
def test_invalid_data_field_is_rejected(settings, field, value, message):
    data = {"VaultName": "contoso-certs", "ObjectType": "Certificate", "ObjectName": "web", field: value}

    with pytest.raises(RejectedEvent, match=message):
        parse_certificate_event("e1", NEAR_EXPIRY, data, settings)


def test_event_type_of_other_function_is_rejected(settings):
    data = {"VaultName": "contoso-certs", "ObjectType": "Certificate", "ObjectName": "web"}

    with pytest.raises(RejectedEvent, match="not handled by this function"):
        parse_certificate_event("e1", NEW_VERSION_CREATED, data, settings, SUBSCRIPTIONS["on_certificate_expiring"])


def test_secret_event_type_is_rejected(settings):
    data = {"VaultName": "contoso-certs", "ObjectType": "Secret", "ObjectName": "web"}

    with pytest.raises(RejectedEvent, match="not handled"):
        parse_certificate_event("e1", "Microsoft.KeyVault.SecretNearExpiry", data, settings)


def test_untyped_cloudevent_gets_function_type(settings):
    data = {"VaultName": "contoso-certs", "ObjectType": "Certificate", "ObjectName": "web"}

    event = parse_certificate_event("e1", None, data, settings, SUBSCRIPTIONS["on_certificate_version_created"])

    assert event.event_type == NEW_VERSION_CREATED


@pytest.mark.parametrize("text", ["not json", "42", '[{"id": 1}, 2]'])
def test_malformed_payload_is_rejected(text):
    with pytest.raises(RejectedEvent):
        load_event_file(text)


def test_event_grid_event_without_required_fields_is_rejected():
    with pytest.raises(RejectedEvent, match="no id or eventType|malformed"):
        envelope_fields({"subject": "x"})
