"""The email function's settings: parsed with the others, with errors that name the setting."""

from __future__ import annotations

import pytest

from shared.errors import SettingsError
from shared.settings import load_settings

VAULTS = {"CERTRENEW_VAULTS": "https://a-vault.vault.azure.net"}


def test_email_settings_are_read():
    settings = load_settings({
        **VAULTS,
        "CERTRENEW_ACS_ENDPOINT": "https://contoso.communication.azure.com/",
        "CERTRENEW_EMAIL_SENDER": "DoNotReply@contoso.com",
        "CERTRENEW_EMAIL_RECIPIENTS": "ops@contoso.com; pki@contoso.com, ops@contoso.com",
        "CERTRENEW_EMAIL_FALLBACK": "certificates@contoso.com",
    })

    assert settings.acs_endpoint == "https://contoso.communication.azure.com"
    assert settings.email_sender == "DoNotReply@contoso.com"
    assert settings.email_recipients == ("ops@contoso.com", "pki@contoso.com")
    assert settings.email_fallback == "certificates@contoso.com"
    assert settings.acs_connection_string == ""


def test_email_settings_may_be_missing_for_renewals():
    settings = load_settings(VAULTS)

    assert settings.acs_endpoint == ""
    assert settings.email_sender == ""
    assert settings.email_recipients == ()


def test_connection_string_is_kept_out_of_repr():
    settings = load_settings({**VAULTS, "CERTRENEW_ACS_CONNECTION_STRING": "endpoint=https://127.0.0.1:1/;accesskey=c2VjcmV0"})

    assert settings.acs_connection_string.endswith("accesskey=c2VjcmV0")
    assert "c2VjcmV0" not in repr(settings)


@pytest.mark.parametrize(
    ("environ", "setting", "message"),
    [
        ({"CERTRENEW_ACS_ENDPOINT": "http://contoso.communication.azure.com"}, "CERTRENEW_ACS_ENDPOINT", "not an https URL"),
        ({"CERTRENEW_ACS_ENDPOINT": "https://contoso.communication.azure.com/emails"}, "CERTRENEW_ACS_ENDPOINT", "has a path"),
        ({"CERTRENEW_EMAIL_SENDER": "DoNotReply"}, "CERTRENEW_EMAIL_SENDER", "not an email address"),
        ({"CERTRENEW_EMAIL_RECIPIENTS": "ops@contoso.com, <script>@x.com"}, "CERTRENEW_EMAIL_RECIPIENTS", "'<script>@x.com' is not"),
        ({"CERTRENEW_EMAIL_FALLBACK": "nobody"}, "CERTRENEW_EMAIL_FALLBACK", "not an email address"),
        ({"CERTRENEW_ACS_CA_BUNDLE": "/nonexistent/ca.pem"}, "CERTRENEW_ACS_CA_BUNDLE", "does not exist"),
        ({"CERTRENEW_ACS_CONNECTION_STRING": "accesskey=c2VjcmV0"}, "CERTRENEW_ACS_CONNECTION_STRING", "lacks endpoint"),
    ],
)
def test_invalid_email_setting_is_named(environ, setting, message):
    with pytest.raises(SettingsError, match=message) as caught:
        load_settings({**VAULTS, **environ})

    assert caught.value.setting == setting
    assert "c2VjcmV0" not in str(caught.value)


def test_host_json_sets_five_tries():
    from shared.email.handler import max_dequeue_count

    assert max_dequeue_count() == 5
