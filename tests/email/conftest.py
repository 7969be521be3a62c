"""Fixtures for the email function: the ACS Email emulator, and the function app pointed at it and at Key Vault."""

from __future__ import annotations

import pytest

from emulators.acs_email import AcsEmailEmulator
from shared.email.handler import set_email_sender

from email_support import SENDER, EmailHarness


@pytest.fixture(scope="session")
def acs_session(tmp_path_factory):
    outbox = tmp_path_factory.mktemp("acs-outbox")
    with AcsEmailEmulator(outbox_dir=str(outbox), allowed_senders=(SENDER,), poll_retry_after=0) as emulator:
        yield emulator


@pytest.fixture
def acs(acs_session):
    """The ACS Email emulator with no messages, faults or logged requests."""
    acs_session.reset()
    return acs_session


@pytest.fixture
def email_app(app, acs):
    """The function app with its email settings pointed at the ACS emulator."""
    harness = EmailHarness(app, acs)
    harness.use_settings(
        acs_endpoint=acs.endpoint, acs_ca_bundle=acs.ca_bundle, email_sender=SENDER, email_recipients=("ops@contoso.test",)
    )
    yield harness
    set_email_sender(None)


