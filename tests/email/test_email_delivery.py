"""One email per notice through send_notice_email, the real EmailClient and the ACS Email emulator."""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from datetime import timedelta

import pytest
from azure.communication.email import EmailClient
from azure.data.tables import TableServiceClient
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from shared import notices as kinds
from shared.email.delivery import NoticeMailer, build_message, entry_key
from shared.email.errors import EmailUnavailable
from shared.email.handler import email_sender, max_dequeue_count
from shared.email.recipients import Recipient
from shared.email.render import render_notice
from shared.email.sending import operation_id_for
from shared.journal import TableJournal
from tests.support.harness import unknown_issuer_policy

from email_support import load_notice

# Requests for one send when every try fails with 500: the first and the SDK's three retries (retry_status=3).
SDK_TRIES = 4


def test_real_csr_notice_is_emailed_with_its_csr(email_app):
    # GIVEN a certificate of an outside CA whose renewal waits for a signature
    app = email_app.app
    email_app.set_contacts(("pki-team@contoso.test", "PKI team"))
    client = app.client()
    client.begin_create_certificate("partner", unknown_issuer_policy(), tags={"certrenew-owners": "partner@contoso.test"})
    signed = app.keyvault.sign_csr(client.get_certificate_operation("partner").csr, days=365)
    client.merge_certificate("partner", [signed.public_bytes(Encoding.DER)])
    app.deliver_new_events()
    app.advance(days=345)
    [notice] = [n for n in app.deliver_new_events() if n.kind == kinds.CSR_WAITING]

    # WHEN the notice reaches the email function
    poisoned = email_app.deliver(notice)

    # THEN one email goes out, with the pending operation's CSR attached
    assert poisoned is None
    [message] = email_app.acs.messages
    assert email_app.addresses(message) == ["pki-team@contoso.test", "partner@contoso.test", "ops@contoso.test"]
    assert message["subject"].startswith("[Action needed] Get the CSR for partner in contoso-certs signed")
    [attachment] = message["attachments"]
    assert attachment["name"] == "partner.csr"
    csr = x509.load_pem_x509_csr(attachment["content"])
    assert csr.public_bytes(Encoding.DER) == bytes(client.get_certificate_operation("partner").csr)
    assert message["user_engagement_tracking_disabled"] is True
    assert message["headers"] == {"x-ms-acsemail-suppress-invalid-attachment": "true"}
    assert email_app.entry(notice)["state"] == "succeeded"


def test_duplicate_delivery_sends_once(email_app):
    notice = load_notice(kinds.RENEWED)

    first = email_app.deliver(notice, dequeue_count=1)
    second = email_app.deliver(notice, dequeue_count=1)

    assert first is None
    assert second is None
    assert len(email_app.acs.messages) == 1
    assert len(email_app.sends()) == 1
    contact_reads = [entry for entry in email_app.app.app_requests() if "contacts" in entry["route"]]
    assert len(contact_reads) == 1, "a duplicate delivery reads nothing from Key Vault"
    history = email_app.app.runtime.journal.history("contoso-certs", "web-frontend")
    assert [record["action"] for record in history] == ["email-succeeded"]


def test_concurrent_deliveries_send_once(email_app):
    notice = load_notice(kinds.RENEWAL_FAILED)
    errors: list[BaseException] = []

    def deliver():
        try:
            email_app.deliver(notice)
        except BaseException as exc:  # noqa: BLE001 - reported by the assert below
            errors.append(exc)

    threads = [threading.Thread(target=deliver) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert len(email_app.acs.messages) == 1
    assert email_app.entry(notice)["attempts"] == 1


def test_concurrent_deliveries_on_table_storage_send_once(email_app, azurite):
    # GIVEN the journal in Table Storage, as in Azure, where claims are etag-checked replaces
    service = TableServiceClient.from_connection_string(azurite.connection_string, connection_verify=azurite.ca_bundle)
    email_app.app.runtime.journal = TableJournal(service.create_table_if_not_exists(f"email{uuid.uuid4().hex[:12]}"))
    notice = load_notice(kinds.CSR_WAITING)
    results: list[str | None] = []

    # WHEN four deliveries of the notice run at once
    threads = [threading.Thread(target=lambda: results.append(email_app.deliver(notice))) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # THEN ACS gets one message
    assert results == [None] * 4
    assert len(email_app.acs.messages) == 1
    assert len(email_app.sends()) == 1
    assert email_app.entry(notice)["state"] == "succeeded"


def test_failed_send_raises_then_retry_sends_once(email_app):
    notice = load_notice(kinds.CSR_WAITING)
    email_app.acs.inject_fault("send", 500, count=SDK_TRIES)

    with pytest.raises(EmailUnavailable, match="ACS responded 500"):
        email_app.deliver(notice, dequeue_count=1)

    assert [entry["status"] for entry in email_app.sends()] == [500] * SDK_TRIES
    assert email_app.acs.messages == []
    assert email_app.entry(notice)["state"] == "retrying"
    assert email_app.entry(notice)["messages"] == []

    assert email_app.deliver(notice, dequeue_count=2) is None

    assert len(email_app.acs.messages) == 1
    assert email_app.entry(notice)["state"] == "succeeded"
    assert email_app.entry(notice)["attempts"] == 2


def test_fifth_failure_records_nothing_sent(email_app, caplog):
    notice = load_notice(kinds.EXPIRED)
    tries = max_dequeue_count()
    email_app.acs.inject_fault("send", 500, count=SDK_TRIES * tries)

    for dequeue_count in range(1, tries + 1):
        with pytest.raises(EmailUnavailable):
            email_app.deliver(notice, dequeue_count=dequeue_count)

    assert tries == 5
    assert email_app.acs.messages == []
    entry = email_app.entry(notice)
    assert entry["state"] == "retrying"
    assert entry["messages"] == []
    assert entry["attempts"] == tries
    last = [record for record in caplog.records if record.levelno == logging.ERROR]
    assert len(last) == 1
    assert "try 5 of 5 failed; the queue moves the notice to the poison queue" in last[0].getMessage()


def test_poll_failure_after_acceptance_is_not_resent(email_app, caplog):
    notice = load_notice(kinds.MANUAL_RENEWAL_DUE)
    email_app.acs.inject_fault("poll", 404, count=10)

    with caplog.at_level(logging.WARNING):
        assert email_app.deliver(notice) is None

    entry = email_app.entry(notice)
    assert entry["state"] == "accepted"
    [message] = entry["messages"]
    assert message["operation_id"] == operation_id_for(notice.id, 0)
    assert message["status"] == "unknown"
    assert any("reading the send status failed (404)" in record.getMessage() for record in caplog.records)

    email_app.deliver(notice, dequeue_count=2)

    assert len(email_app.sends()) == 1
    assert len(email_app.acs.messages) == 1


def test_delivery_failure_reported_by_acs_is_not_resent(email_app, caplog):
    notice = load_notice(kinds.REMINDER)
    email_app.acs.inject_fault("poll", "failed")

    assert email_app.deliver(notice) is None
    email_app.deliver(notice, dequeue_count=2)

    assert email_app.entry(notice)["state"] == "failed"
    assert len(email_app.sends()) == 1
    assert any("reported that it failed" in record.getMessage() for record in caplog.records if record.levelno == logging.ERROR)


def test_throttled_send_waits_for_retry_after(email_app):
    notice = load_notice(kinds.RENEWAL_STARTED)
    email_app.acs.inject_fault("send", 429, retry_after=1)

    started = time.monotonic()
    email_app.deliver(notice)
    elapsed = time.monotonic() - started

    assert [entry["status"] for entry in email_app.sends()] == [429, 202]
    assert len(email_app.acs.messages) == 1
    assert elapsed >= 1.0, "the SDK must wait the Retry-After seconds, not its 0.01 s backoff"


def test_throttling_beyond_retries_raises_for_redelivery(email_app):
    notice = load_notice(kinds.RENEWAL_STARTED)
    email_app.acs.inject_fault("send", 429, count=SDK_TRIES, retry_after=0)

    with pytest.raises(EmailUnavailable, match="429"):
        email_app.deliver(notice)

    assert email_app.acs.messages == []
    assert email_app.entry(notice)["state"] == "retrying"


def test_crash_after_acceptance_sends_once(email_app):
    # GIVEN a delivery that got the 202 and died before it recorded the operation
    notice = load_notice(kinds.RENEWED)
    settings = email_app.settings
    recipients = [Recipient("ops@contoso.test")]
    client = EmailClient.from_connection_string(email_app.acs.connection_string, connection_verify=email_app.acs.ca_bundle)
    client.begin_send(build_message(settings.email_sender, render_notice(notice), recipients),
                      operation_id=operation_id_for(notice.id, 0), polling=False)
    journal = email_app.app.runtime.journal
    expired_lease = (email_app.app.now() - timedelta(minutes=1)).isoformat()
    journal.insert("contoso-certs", entry_key(notice.id),
                   {"state": "claimed", "claim": "dead", "lease_until": expired_lease, "attempts": 1, "messages": []})

    # WHEN the queue delivers the notice again
    email_app.deliver(notice, dequeue_count=2)

    # THEN ACS refuses the repeated operation id and the entry records it as accepted
    assert [entry["status"] for entry in email_app.sends()] == [202, 409]
    assert len(email_app.acs.messages) == 1
    entry = email_app.entry(notice)
    assert entry["state"] == "accepted"
    assert entry["messages"][0]["operation_id"] == operation_id_for(notice.id, 0)


def test_delivery_waits_for_fresh_claim_then_raises(email_app):
    notice = load_notice(kinds.RENEWED)
    runtime = email_app.app.runtime
    fresh_lease = (email_app.app.now() + timedelta(minutes=5)).isoformat()
    runtime.journal.insert("contoso-certs", entry_key(notice.id),
                           {"state": "claimed", "claim": "other", "lease_until": fresh_lease, "attempts": 1, "messages": []})
    mailer = NoticeMailer(runtime.settings, runtime.vaults, runtime.journal, email_sender(runtime), clock=runtime.clock,
                          wait_for_other_seconds=1.0)

    with pytest.raises(EmailUnavailable, match="Another delivery of notice"):
        mailer.deliver(notice)

    assert email_app.sends() == []


@pytest.mark.parametrize(
    ("sender", "code"),
    [("DoNotReply@unlinked.test", "DomainNotLinked"), ("someone@certrenew.test", "InvalidSenderUserName")],
)
def test_sender_error_goes_to_poison_naming_the_setting(email_app, caplog, sender, code):
    notice = load_notice(kinds.RENEWED)
    email_app.use_settings(email_sender=sender)

    poisoned = email_app.deliver(notice)

    assert poisoned == notice.to_json()
    assert len(email_app.sends()) == 1, "no pointless retries"
    assert email_app.entry(notice)["state"] == "rejected"
    [error] = [record for record in caplog.records if record.levelno == logging.ERROR]
    assert "CERTRENEW_EMAIL_SENDER" in error.getMessage()
    assert code in error.getMessage()

    # WHEN the sender is fixed and the message comes back from the poison queue
    email_app.use_settings(email_sender="DoNotReply@certrenew.test")
    assert email_app.deliver(poisoned) is None

    assert len(email_app.acs.messages) == 1


def test_missing_endpoint_goes_to_poison_naming_the_setting(email_app, caplog):
    email_app.use_settings(acs_endpoint="")

    poisoned = email_app.deliver(load_notice(kinds.RENEWED))

    assert poisoned is not None
    assert "CERTRENEW_ACS_ENDPOINT is missing" in caplog.text
    assert email_app.sends() == []


def test_invalid_message_goes_to_poison(email_app, caplog):
    body = json.dumps({"schema": "something/v9"})

    assert email_app.deliver(body) == body
    assert "not a notice" in caplog.text


def test_connection_string_signs_requests(email_app):
    email_app.use_settings(acs_endpoint="", acs_connection_string=email_app.acs.connection_string)

    email_app.deliver(load_notice(kinds.RENEWED))

    assert len(email_app.acs.messages) == 1
    assert "accesskey" not in repr(email_app.settings).lower()


def test_outbox_gets_eml_and_html_preview(email_app):
    email_app.deliver(load_notice(kinds.CSR_WAITING))

    [message] = email_app.acs.messages
    with open(message["eml_path"], encoding="utf-8") as eml:
        text = eml.read()
    assert "Subject: [Action needed]" in text
    assert 'filename="partner-api.csr"' in text
    with open(message["html_path"], encoding="utf-8") as html:
        assert "<h1" in html.read()
