"""Shared fixtures: local emulators started on loopback, and the function app wired to them."""

from datetime import datetime, timezone

import pytest

from emulators.azurite import start_azurite
from emulators.keyvault import KeyVaultEmulator
from azure.data.tables import TableServiceClient

from shared.journal import SqliteJournal, TableJournal
from shared.keyvault import VaultClients
from shared.runtime import Runtime, set_runtime
from shared.settings import Settings, VaultConfig
from emulators.functions_host import EventRecorder
from tests.support.harness import FAST_RETRY, AppHarness

# The emulator's clock starts here. It is the app's clock too, so tests move time for both at once.
START = datetime(2030, 1, 1, tzinfo=timezone.utc)
VAULTS = ("contoso-certs", "fabrikam-certs")


@pytest.fixture(scope="session")
def azurite():
    """Azurite serving Table and Queue storage over HTTPS on 127.0.0.1, for the whole test session."""
    server = start_azurite()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def keyvault_session():
    recorder = EventRecorder()
    with KeyVaultEmulator(vaults=list(VAULTS), event_sink=recorder, start_time=START, integrated_ca_checks=2) as emulator:
        emulator.recorder = recorder
        yield emulator


@pytest.fixture
def keyvault(keyvault_session):
    """The Key Vault emulator, emptied and its clock set back before each test."""
    keyvault_session.reset()
    keyvault_session.recorder.clear()
    yield keyvault_session
    assert keyvault_session.secret_reads == [], "the app tried to read a secret (a private key)"


def make_settings(keyvault, tmp_path, **overrides) -> Settings:
    values = dict(
        vaults=tuple(VaultConfig(name, keyvault.vault_url(name)) for name in VAULTS),
        journal=f"sqlite:{tmp_path / 'journal.sqlite3'}",
        outbox_dir=str(tmp_path / "outbox"),
        keyvault_ca_bundle=keyvault.ca_bundle,
    )
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def app(keyvault, tmp_path):
    """The function app pointed at the emulator, with a SQLite journal and the emulator's clock."""
    settings = make_settings(keyvault, tmp_path)
    yield from run_app(keyvault, settings, SqliteJournal(settings.journal.removeprefix("sqlite:")))


@pytest.fixture
def table_app(keyvault, tmp_path, azurite, request):
    """The function app with its journal in Table Storage on Azurite, as deployed in Azure."""
    settings = make_settings(keyvault, tmp_path, journal="table")
    service = TableServiceClient.from_connection_string(azurite.connection_string, connection_verify=azurite.ca_bundle)
    table = service.create_table_if_not_exists(f"journal{abs(hash(request.node.nodeid)) % 10**9}")
    yield from run_app(keyvault, settings, TableJournal(table))


def run_app(keyvault, settings, journal):
    runtime = Runtime(
        settings=settings,
        vaults=VaultClients(settings, client_options=FAST_RETRY),
        journal=journal,
        clock=keyvault.now,
    )
    set_runtime(runtime)
    yield AppHarness(keyvault, keyvault.recorder, runtime)
    set_runtime(None)
