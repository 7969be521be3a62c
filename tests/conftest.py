"""Shared fixtures: local emulators started on loopback for the tests that need them."""

import pytest

from emulators.azurite import start_azurite


@pytest.fixture(scope="session")
def azurite():
    """Azurite serving Table and Queue storage over HTTPS on 127.0.0.1, for the whole test session."""
    server = start_azurite()
    yield server
    server.stop()
