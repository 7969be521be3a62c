"""Fixtures of the emulator tests: one emulator for the session, reset before each test, and SDK clients."""

from __future__ import annotations

import datetime as dt

import pytest

from emulators.keyvault import KeyVaultEmulator

from .helpers import make_client

START = dt.datetime(2030, 1, 1, tzinfo=dt.timezone.utc)


class RecordingSink:
    """Event sink that keeps every batch it receives."""

    def __init__(self) -> None:
        self.events: list[dict] = []

    def __call__(self, events: list[dict]) -> None:
        self.events.extend(events)


@pytest.fixture(scope="session")
def session_emulator():
    sink = RecordingSink()
    with KeyVaultEmulator(vaults=["contoso-certs", "fabrikam-certs"], event_sink=sink, start_time=START) as emulator:
        emulator.recorded = sink
        yield emulator


@pytest.fixture
def emulator(session_emulator):
    session_emulator.reset()
    session_emulator.recorded.events.clear()
    return session_emulator


@pytest.fixture
def client(emulator):
    with make_client(emulator) as certificate_client:
        yield certificate_client
