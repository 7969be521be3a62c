"""Who gets a notice's email: contacts from the Key Vault emulator, owners, settings, dedupe, split and fallback."""

from __future__ import annotations

import logging

import pytest

from shared import notices as kinds
from shared.email.errors import NoRecipients
from shared.email.recipients import Contact, clean_display_name, resolve_recipients, split_into_messages

from email_support import load_notice


def test_contacts_owners_and_settings_all_receive(email_app):
    email_app.set_contacts(("pki-team@contoso.test", "PKI team"))
    notice = load_notice(kinds.CSR_WAITING, certificate={"owners": ["partner-team@contoso.test"]})

    poisoned = email_app.deliver(notice)

    assert poisoned is None
    [message] = email_app.acs.messages
    assert email_app.addresses(message) == ["pki-team@contoso.test", "partner-team@contoso.test", "ops@contoso.test"]
    assert message["recipients"]["to"][0]["displayName"] == "PKI team"
    assert message["sender"] == "DoNotReply@certrenew.test"


def test_duplicates_are_removed_ignoring_case(email_app):
    email_app.set_contacts(("PKI-Team@Contoso.test", "PKI team"), ("ops@contoso.test", "Ops"))
    notice = load_notice(kinds.RENEWED, certificate={"owners": ["pki-team@contoso.test", "OPS@CONTOSO.TEST"]})

    email_app.deliver(notice)

    [message] = email_app.acs.messages
    assert email_app.addresses(message) == ["PKI-Team@Contoso.test", "ops@contoso.test"]


def test_invalid_addresses_are_dropped_with_warning(email_app, caplog):
    email_app.set_contacts(("pki-team@contoso.test", "PKI team"))
    owners = ["not-an-address", "<script>@contoso.test", "a@b", "team@contoso.test\r\nBcc: x@evil.test", "dev@contoso.test"]
    notice = load_notice(kinds.RENEWED, certificate={"owners": owners})

    with caplog.at_level(logging.WARNING, logger="shared.email"):
        email_app.deliver(notice)

    [message] = email_app.acs.messages
    assert email_app.addresses(message) == ["pki-team@contoso.test", "dev@contoso.test", "ops@contoso.test"]
    dropped = [record.getMessage() for record in caplog.records if "dropped invalid address" in record.getMessage()]
    assert len(dropped) == 4
    assert all("from tag certrenew-owners" in line for line in dropped)
    assert not any("@" in line.split(":", 1)[1] for line in dropped), "addresses must not be logged"


def test_more_than_50_recipients_split_into_messages(email_app):
    owners = [f"owner{number:03d}@contoso.test" for number in range(120)]
    notice = load_notice(kinds.RENEWED, certificate={"owners": owners})

    email_app.deliver(notice)

    messages = email_app.acs.messages
    assert [len(message["recipients"]["to"]) for message in messages] == [50, 50, 21]
    sent = [address for message in messages for address in email_app.addresses(message)]
    assert sent == owners + ["ops@contoso.test"]
    assert len({message["operation_id"] for message in messages}) == 3
    entry = email_app.entry(notice)
    assert entry["state"] == "succeeded"
    assert [message["recipients"] for message in entry["messages"]] == [50, 50, 21]


def test_fallback_receives_when_nobody_is_left(email_app):
    email_app.use_settings(email_recipients=(), email_fallback="certificates@contoso.test")
    notice = load_notice(kinds.EXPIRED, certificate={"owners": ["broken"]})

    email_app.deliver(notice)

    [message] = email_app.acs.messages
    assert email_app.addresses(message) == ["certificates@contoso.test"]


def test_no_recipient_and_no_fallback_fails_loudly(email_app, caplog):
    email_app.use_settings(email_recipients=(), email_fallback="")
    notice = load_notice(kinds.EXPIRED, certificate={"owners": []})

    with caplog.at_level(logging.WARNING):
        with pytest.raises(NoRecipients, match="CERTRENEW_EMAIL_FALLBACK"):
            email_app.deliver(notice, dequeue_count=5)

    assert email_app.acs.messages == []
    assert email_app.entry(notice) == {}
    errors = [record for record in caplog.records if record.levelno == logging.ERROR]
    assert any("moves the notice to the poison queue" in record.getMessage() for record in errors)


def test_contacts_of_unconfigured_vault_are_not_read(email_app):
    email_app.set_contacts(("pki-team@contoso.test", "PKI team"))
    notice = load_notice(kinds.RENEWED, vault_name="other-vault", certificate={"owners": ["partner-team@contoso.test"]})

    email_app.deliver(notice)

    [message] = email_app.acs.messages
    assert email_app.addresses(message) == ["partner-team@contoso.test", "ops@contoso.test"]


def test_resolve_keeps_first_occurrence_and_display_name():
    contacts = [Contact("A@contoso.test", 'Team "A"\r\n<x>'), Contact(None, "no address")]

    recipients = resolve_recipients(contacts, ["a@contoso.test", "b@contoso.test"], ["B@CONTOSO.TEST"], "", "test")

    assert [(r.address, r.display_name, r.source) for r in recipients] == [
        ("A@contoso.test", "Team A x", "certificate contact"),
        ("b@contoso.test", "", "tag certrenew-owners"),
    ]


def test_split_keeps_order_and_size():
    recipients = resolve_recipients([], [f"u{n}@contoso.test" for n in range(101)], [], "", "test")

    groups = split_into_messages(recipients)

    assert [len(group) for group in groups] == [50, 50, 1]
    assert groups[2][0].address == "u100@contoso.test"


def test_display_name_is_cut_and_cleaned():
    assert clean_display_name("x" * 150) == "x" * 100
    assert clean_display_name(None) == ""
