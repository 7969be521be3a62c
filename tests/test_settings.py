"""App settings: parsed when the app loads, with errors that name the setting."""

from pathlib import Path

import pytest

from shared.errors import SettingsError
from shared.handlers import log_invalid_settings
from shared.settings import SETTINGS, load_settings


def test_vault_urls_give_names_from_host():
    settings = load_settings({"CERTRENEW_VAULTS": "https://Contoso-Certs.vault.azure.net/, https://gov-certs.vault.usgovcloudapi.net"})

    assert [vault.name for vault in settings.vaults] == ["contoso-certs", "gov-certs"]
    assert settings.vaults[0].url == "https://Contoso-Certs.vault.azure.net"
    assert settings.vault_by_name("CONTOSO-CERTS") is settings.vaults[0]


def test_named_loopback_vault_is_accepted():
    settings = load_settings({"CERTRENEW_VAULTS": "contoso-certs=https://127.0.0.1:8443"})

    assert settings.vaults[0].name == "contoso-certs"
    assert settings.vaults[0].is_loopback


def test_defaults_apply_when_settings_are_missing():
    settings = load_settings({"CERTRENEW_VAULTS": "https://a-vault.vault.azure.net"})

    assert settings.renewal_window_days == 30
    assert settings.reminder_days == (14, 7, 3, 1)
    assert settings.default_modes == {"self-signed": "renew", "integrated-ca": "renew", "other-ca": "csr"}
    assert settings.dry_run is False


def test_missing_vaults_setting_is_named():
    with pytest.raises(SettingsError, match="no vault is configured") as caught:
        load_settings({})

    assert caught.value.setting == "CERTRENEW_VAULTS"


@pytest.mark.parametrize(
    ("environ", "setting", "message"),
    [
        ({"CERTRENEW_VAULTS": "http://a-vault.vault.azure.net"}, "CERTRENEW_VAULTS", "not an https URL"),
        ({"CERTRENEW_VAULTS": "https://example.com"}, "CERTRENEW_VAULTS", "not on a known Key Vault host"),
        ({"CERTRENEW_VAULTS": "https://a-vault.vault.azure.net/keys"}, "CERTRENEW_VAULTS", "has a path"),
        ({"CERTRENEW_VAULTS": "x=https://127.0.0.1:1"}, "CERTRENEW_VAULTS", "vault name 'x'"),
        ({"CERTRENEW_VAULTS": "https://a-vault.vault.azure.net https://A-VAULT.vault.azure.net"}, "CERTRENEW_VAULTS", "listed twice"),
        ({"CERTRENEW_RENEWAL_WINDOW_DAYS": "thirty"}, "CERTRENEW_RENEWAL_WINDOW_DAYS", "not a whole number"),
        ({"CERTRENEW_RENEWAL_WINDOW_DAYS": "0"}, "CERTRENEW_RENEWAL_WINDOW_DAYS", "out of range"),
        ({"CERTRENEW_REMINDER_DAYS": "7,-1"}, "CERTRENEW_REMINDER_DAYS", "'-1' is not a number of days"),
        ({"CERTRENEW_MODE_OTHER_CA": "auto"}, "CERTRENEW_MODE_OTHER_CA", "not a renewal mode"),
        ({"CERTRENEW_DRY_RUN": "maybe"}, "CERTRENEW_DRY_RUN", "not true or false"),
        ({"CERTRENEW_JOURNAL": "postgres"}, "CERTRENEW_JOURNAL", "not 'table' or 'sqlite:PATH'"),
    ],
)
def test_invalid_setting_is_named_in_error(environ, setting, message):
    environ = {"CERTRENEW_VAULTS": "https://a-vault.vault.azure.net", **environ}

    with pytest.raises(SettingsError, match=message) as caught:
        load_settings(environ)

    assert caught.value.setting == setting
    assert setting in str(caught.value)


def test_every_setting_is_documented_once():
    names = [setting.name for setting in SETTINGS]

    assert len(names) == len(set(names))
    assert all(setting.description.endswith(".") for setting in SETTINGS)


def test_readme_documents_every_setting():
    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")

    missing = [setting.name for setting in SETTINGS if f"`{setting.name}`" not in readme]

    assert missing == []


def test_invalid_setting_is_logged_when_app_loads(monkeypatch, caplog):
    monkeypatch.setenv("FUNCTIONS_WORKER_RUNTIME", "python")
    monkeypatch.setenv("CERTRENEW_VAULTS", "https://a-vault.vault.azure.net")
    monkeypatch.setenv("CERTRENEW_REMINDER_DAYS", "x")

    log_invalid_settings()

    assert "CERTRENEW_REMINDER_DAYS is invalid" in caplog.text
