"""App settings: the single list of what the app reads, and their validation when the app loads."""

from __future__ import annotations

import ipaddress
import os
import re
from dataclasses import dataclass, field
from typing import Any, Mapping
from urllib.parse import urlsplit

from shared.errors import SettingsError
from shared.names import VAULT_NAME_PATTERN

# Host suffixes of Key Vault in the public and sovereign clouds. A vault URL on one of these gets its
# vault name from the first label of the host.
KEY_VAULT_DNS_SUFFIXES = (
    ".vault.azure.net",
    ".vault.azure.cn",
    ".vault.usgovcloudapi.net",
    ".vault.microsoftazure.de",
)

RENEWAL_MODES = ("renew", "csr", "notify", "off")

# A plain address: dot-atom local part (RFC 5322 without quoted strings or comments) and a DNS domain with at
# least two labels. Stricter than RFC 5322 on purpose, so that nothing in an address can break out of a
# header or an HTML attribute.
EMAIL_ADDRESS_PATTERN = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
)
# RFC 5321 limits a forward path to 256 octets including the angle brackets, so an address to 254.
MAX_EMAIL_ADDRESS_LENGTH = 254


@dataclass(frozen=True)
class Setting:
    """One app setting that the code reads."""

    name: str
    description: str
    default: str | None = None
    # True when a deployment to Azure must set it. Local runs may leave it out.
    required: bool = False


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "CERTRENEW_VAULTS",
        "Key Vaults to manage, separated by spaces or commas. Each is a vault URL "
        "(https://contoso-certs.vault.azure.net) or NAME=URL when the URL's host does not contain "
        "the vault name, as with a local emulator.",
        required=True,
    ),
    Setting(
        "CERTRENEW_RENEWAL_WINDOW_DAYS",
        "Days before expiry at which a certificate becomes due for renewal. For short-lived "
        "certificates the window is capped at a third of the lifetime.",
        default="30",
    ),
    Setting(
        "CERTRENEW_REMINDER_DAYS",
        "Days before expiry at which a CSR waiting for signature or a manual renewal gets a reminder, "
        "separated by commas.",
        default="14,7,3,1",
    ),
    Setting("CERTRENEW_MODE_SELF_SIGNED", "Default mode for certificates issued by Self.", default="renew"),
    Setting(
        "CERTRENEW_MODE_INTEGRATED_CA",
        "Default mode for certificates issued through a DigiCert or GlobalSign issuer.",
        default="renew",
    ),
    Setting(
        "CERTRENEW_MODE_OTHER_CA",
        "Default mode for certificates of issuer Unknown, imported certificates included.",
        default="csr",
    ),
    Setting(
        "CERTRENEW_DRY_RUN",
        "When true, decide and log but change nothing in Key Vault and emit no notices.",
        default="false",
    ),
    Setting(
        "CERTRENEW_SWEEP_SCHEDULE",
        "NCRONTAB schedule (six fields, UTC) of the timer that checks operations and sweeps the vaults.",
        default="0 0 * * * *",
        required=True,
    ),
    Setting(
        "CERTRENEW_JOURNAL",
        "Where the renewal journal is kept: 'table' for the Table Storage of AzureWebJobsStorage, "
        "or 'sqlite:PATH' for a local file.",
        default="sqlite:.certrenew/journal.sqlite3",
        required=True,
    ),
    Setting(
        "CERTRENEW_JOURNAL_TABLE",
        "Name of the journal table when CERTRENEW_JOURNAL is 'table'.",
        default="certrenewjournal",
        required=True,
    ),
    Setting(
        "CERTRENEW_OUTBOX_DIR",
        "Folder that receives a readable copy of every notice, for local runs. Empty to turn it off.",
        default="",
    ),
    Setting(
        "CERTRENEW_KEYVAULT_CA_BUNDLE",
        "PEM bundle that verifies the TLS certificate of a local Key Vault emulator. Used only for vault "
        "URLs on a loopback address.",
        default="",
    ),
    Setting(
        "CERTRENEW_ACS_ENDPOINT",
        "Endpoint of the Azure Communication Services resource that sends the emails.",
        required=True,
    ),
    Setting(
        "CERTRENEW_EMAIL_SENDER",
        "Sender address of a domain linked to the Communication Services resource.",
        required=True,
    ),
    Setting(
        "CERTRENEW_EMAIL_RECIPIENTS",
        "Addresses that receive every notice, besides the vault's certificate contacts and the owners "
        "named in a certificate's tag, separated by commas.",
        default="",
    ),
    Setting(
        "CERTRENEW_EMAIL_FALLBACK",
        "Address that receives a notice when no other recipient is left.",
        default="",
    ),
    Setting(
        "CERTRENEW_ACS_CA_BUNDLE",
        "PEM bundle that verifies the TLS certificate of a local ACS Email emulator. Used only when the ACS "
        "endpoint is on a loopback address.",
        default="",
    ),
    Setting(
        "CERTRENEW_ACS_CONNECTION_STRING",
        "Connection string of a Communication Services resource (endpoint=https://...;accesskey=...), for local "
        "runs only. When set, it is used instead of CERTRENEW_ACS_ENDPOINT and the managed identity. Leave it "
        "unset in Azure.",
        default="",
    ),
)


@dataclass(frozen=True)
class VaultConfig:
    """A Key Vault the app manages: the name that events carry and the URL that requests go to."""

    name: str
    url: str

    @property
    def is_loopback(self) -> bool:
        """True for a vault served on a loopback address, which only a local emulator is."""
        return is_loopback_host(urlsplit(self.url).hostname or "")


@dataclass(frozen=True)
class Settings:
    """Validated app settings."""

    vaults: tuple[VaultConfig, ...]
    renewal_window_days: int = 30
    reminder_days: tuple[int, ...] = (14, 7, 3, 1)
    default_modes: Mapping[str, str] = field(
        default_factory=lambda: {"self-signed": "renew", "integrated-ca": "renew", "other-ca": "csr"}
    )
    dry_run: bool = False
    journal: str = "sqlite:.certrenew/journal.sqlite3"
    journal_table: str = "certrenewjournal"
    outbox_dir: str = ""
    keyvault_ca_bundle: str = ""
    acs_endpoint: str = ""
    email_sender: str = ""
    email_recipients: tuple[str, ...] = ()
    email_fallback: str = ""
    acs_ca_bundle: str = ""
    # A secret: kept out of repr() so that logging the settings never shows the access key.
    acs_connection_string: str = field(default="", repr=False)

    def vault_by_name(self, name: str) -> VaultConfig | None:
        """Return the configured vault of that name (Key Vault names are case-insensitive), or None."""
        wanted = name.lower()
        for vault in self.vaults:
            if vault.name.lower() == wanted:
                return vault
        return None


def is_loopback_host(host: str) -> bool:
    """Return True for 'localhost' and loopback IP addresses."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def parse_vault(entry: str) -> VaultConfig:
    """Parse one CERTRENEW_VAULTS entry: a vault URL, or NAME=URL."""
    name, separator, url = entry.partition("=")
    if not separator:
        name, url = "", entry
    url = url.strip().rstrip("/")

    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme != "https" or not host:
        raise SettingsError(
            "CERTRENEW_VAULTS",
            f"entry {entry!r} is not an https URL. Give the vault URL, for example "
            "https://contoso-certs.vault.azure.net",
        )
    if parts.path or parts.query or parts.fragment or parts.username:
        raise SettingsError(
            "CERTRENEW_VAULTS",
            f"entry {entry!r} has a path, query or user name. Give only https://HOST[:PORT], "
            "because the Key Vault SDK appends the API paths itself",
        )

    if not name:
        name = _vault_name_from_host(entry, host)
    name = name.strip()
    if not VAULT_NAME_PATTERN.fullmatch(name):
        raise SettingsError(
            "CERTRENEW_VAULTS",
            f"vault name {name!r} in entry {entry!r} is invalid: a Key Vault name has 3 to 24 letters, "
            "digits and hyphens, starts with a letter and does not end with a hyphen",
        )
    return VaultConfig(name=name, url=url)


def _vault_name_from_host(entry: str, host: str) -> str:
    lowered = host.lower()
    for suffix in KEY_VAULT_DNS_SUFFIXES:
        if lowered.endswith(suffix):
            return lowered[: -len(suffix)]
    raise SettingsError(
        "CERTRENEW_VAULTS",
        f"entry {entry!r} is not on a known Key Vault host ({', '.join(KEY_VAULT_DNS_SUFFIXES)}). "
        "Write it as NAME=URL to say which vault name its events carry",
    )


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read and validate the app settings.

    Raises SettingsError naming the first setting that is missing or invalid.
    """
    env = os.environ if environ is None else environ

    vaults = _parse_vaults(_get(env, "CERTRENEW_VAULTS"))
    window = _parse_int(env, "CERTRENEW_RENEWAL_WINDOW_DAYS", minimum=1, maximum=365)
    reminders = _parse_days_list(env, "CERTRENEW_REMINDER_DAYS")
    modes = {
        "self-signed": _parse_mode(env, "CERTRENEW_MODE_SELF_SIGNED"),
        "integrated-ca": _parse_mode(env, "CERTRENEW_MODE_INTEGRATED_CA"),
        "other-ca": _parse_mode(env, "CERTRENEW_MODE_OTHER_CA"),
    }
    journal = _parse_journal(env)
    ca_bundle = _get(env, "CERTRENEW_KEYVAULT_CA_BUNDLE")
    if ca_bundle and not os.path.isfile(ca_bundle):
        raise SettingsError(
            "CERTRENEW_KEYVAULT_CA_BUNDLE", f"file {ca_bundle!r} does not exist. Give the emulator's CA bundle path"
        )

    email = _parse_email_settings(env)

    return Settings(
        vaults=vaults,
        renewal_window_days=window,
        reminder_days=reminders,
        default_modes=modes,
        dry_run=_parse_bool(env, "CERTRENEW_DRY_RUN"),
        journal=journal,
        journal_table=_get(env, "CERTRENEW_JOURNAL_TABLE"),
        outbox_dir=_get(env, "CERTRENEW_OUTBOX_DIR"),
        keyvault_ca_bundle=ca_bundle,
        **email,
    )


def is_valid_email_address(address: str) -> bool:
    """Return True for a plain `local@domain.tld` address that ACS accepts in `to`, without a display name."""
    return len(address) <= MAX_EMAIL_ADDRESS_LENGTH and EMAIL_ADDRESS_PATTERN.fullmatch(address) is not None


_DEFAULTS = {setting.name: setting.default for setting in SETTINGS}


def _get(env: Mapping[str, str], name: str) -> str:
    value = env.get(name)
    if value is None or not value.strip():
        value = _DEFAULTS.get(name)
    return (value or "").strip()


def _parse_vaults(raw: str) -> tuple[VaultConfig, ...]:
    entries = [entry for entry in re.split(r"[\s,;]+", raw) if entry]
    if not entries:
        raise SettingsError(
            "CERTRENEW_VAULTS",
            "no vault is configured. Set it to one or more vault URLs, for example "
            "https://contoso-certs.vault.azure.net",
        )
    vaults = tuple(parse_vault(entry) for entry in entries)
    seen: set[str] = set()
    for vault in vaults:
        if vault.name.lower() in seen:
            raise SettingsError("CERTRENEW_VAULTS", f"vault {vault.name!r} is listed twice. Remove one entry")
        seen.add(vault.name.lower())
    return vaults


def _parse_int(env: Mapping[str, str], name: str, minimum: int, maximum: int) -> int:
    raw = _get(env, name)
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(name, f"{raw!r} is not a whole number of days") from None
    if not minimum <= value <= maximum:
        raise SettingsError(name, f"{value} is out of range. Use {minimum} to {maximum}")
    return value


def _parse_days_list(env: Mapping[str, str], name: str) -> tuple[int, ...]:
    raw = _get(env, name)
    days: set[int] = set()
    for part in re.split(r"[\s,;]+", raw):
        if not part:
            continue
        if not part.isdigit() or not 0 <= int(part) <= 365:
            raise SettingsError(name, f"{part!r} is not a number of days from 0 to 365. Example: 14,7,3,1")
        days.add(int(part))
    return tuple(sorted(days, reverse=True))


def _parse_mode(env: Mapping[str, str], name: str) -> str:
    value = _get(env, name).lower()
    if value not in RENEWAL_MODES:
        raise SettingsError(name, f"{value!r} is not a renewal mode. Use one of: {', '.join(RENEWAL_MODES)}")
    return value


def _parse_bool(env: Mapping[str, str], name: str) -> bool:
    value = _get(env, name).lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise SettingsError(name, f"{value!r} is not true or false")


def _parse_journal(env: Mapping[str, str]) -> str:
    value = _get(env, "CERTRENEW_JOURNAL")
    if value == "table" or (value.startswith("sqlite:") and len(value) > len("sqlite:")):
        return value
    raise SettingsError(
        "CERTRENEW_JOURNAL", f"{value!r} is not 'table' or 'sqlite:PATH'. Example: sqlite:.certrenew/journal.sqlite3"
    )


def _parse_email_settings(env: Mapping[str, str]) -> dict[str, Any]:
    """Read and check the settings of the email function.

    A missing endpoint or sender is reported when an email is sent, not here, so that the renewal functions
    still run while email is not set up.
    """
    endpoint = _get(env, "CERTRENEW_ACS_ENDPOINT")
    if endpoint:
        endpoint = parse_acs_endpoint("CERTRENEW_ACS_ENDPOINT", endpoint)
    connection_string = _get(env, "CERTRENEW_ACS_CONNECTION_STRING")
    if connection_string:
        parse_acs_connection_string(connection_string)

    sender = _get(env, "CERTRENEW_EMAIL_SENDER")
    if sender and not is_valid_email_address(sender):
        raise SettingsError(
            "CERTRENEW_EMAIL_SENDER",
            f"{sender!r} is not an email address. Give a MailFrom address of a domain linked to the "
            "Communication Services resource, for example DoNotReply@contoso.com",
        )
    recipients = tuple(dict.fromkeys(_parse_address_list(env, "CERTRENEW_EMAIL_RECIPIENTS")))
    fallback = _get(env, "CERTRENEW_EMAIL_FALLBACK")
    if fallback and not is_valid_email_address(fallback):
        raise SettingsError("CERTRENEW_EMAIL_FALLBACK", f"{fallback!r} is not an email address")

    ca_bundle = _get(env, "CERTRENEW_ACS_CA_BUNDLE")
    if ca_bundle and not os.path.isfile(ca_bundle):
        raise SettingsError(
            "CERTRENEW_ACS_CA_BUNDLE", f"file {ca_bundle!r} does not exist. Give the ACS emulator's CA bundle path"
        )
    return {
        "acs_endpoint": endpoint,
        "email_sender": sender,
        "email_recipients": recipients,
        "email_fallback": fallback,
        "acs_ca_bundle": ca_bundle,
        "acs_connection_string": connection_string,
    }


def parse_acs_endpoint(setting: str, value: str) -> str:
    """Check an ACS endpoint (https://NAME.communication.azure.com) and return it without a trailing slash."""
    endpoint = value.strip().rstrip("/")
    parts = urlsplit(endpoint)
    if parts.scheme != "https" or not parts.hostname:
        raise SettingsError(
            setting,
            f"endpoint {endpoint!r} is not an https URL. Give the Communication Services endpoint, for example "
            "https://contoso-certrenew.communication.azure.com",
        )
    if parts.path or parts.query or parts.fragment or parts.username:
        raise SettingsError(
            setting, f"endpoint {endpoint!r} has a path, query or user name. Give only https://HOST[:PORT]"
        )
    return endpoint


def parse_acs_connection_string(value: str) -> tuple[str, str]:
    """Split an ACS connection string into its endpoint and access key. Errors never show the key."""
    fields: dict[str, str] = {}
    for part in value.split(";"):
        name, separator, field_value = part.partition("=")
        if separator:
            fields[name.strip().lower()] = field_value.strip()
    endpoint, key = fields.get("endpoint", ""), fields.get("accesskey", "")
    if not endpoint or not key:
        raise SettingsError(
            "CERTRENEW_ACS_CONNECTION_STRING",
            "it lacks endpoint= or accesskey=. Copy it from the Keys page of the Communication Services resource",
        )
    return parse_acs_endpoint("CERTRENEW_ACS_CONNECTION_STRING", endpoint), key


def _parse_address_list(env: Mapping[str, str], name: str) -> list[str]:
    addresses = [address for address in re.split(r"[\s,;]+", _get(env, name)) if address]
    for address in addresses:
        if not is_valid_email_address(address):
            raise SettingsError(name, f"{address!r} is not an email address. Separate addresses with commas")
    return addresses
