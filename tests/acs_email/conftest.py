"""Fixtures for the ACS Email emulator tests: a running emulator and an EmailClient that trusts its CA."""

from __future__ import annotations

import pytest
from azure.communication.email import EmailClient

from emulators.acs_email import AcsEmailEmulator


@pytest.fixture
def emulator(tmp_path):
    with AcsEmailEmulator(outbox_dir=str(tmp_path / "outbox"), poll_retry_after=0) as running:
        yield running


@pytest.fixture
def client(emulator) -> EmailClient:
    """EmailClient authenticated with the emulator's connection string (HMAC-SHA256), retrying fast."""
    return EmailClient.from_connection_string(
        emulator.connection_string, connection_verify=emulator.ca_bundle, retry_backoff_factor=0.01
    )
