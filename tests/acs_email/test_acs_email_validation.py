"""Payload rules the emulator enforces before accepting a message, seen through the real EmailClient."""

from __future__ import annotations

import base64

import pytest
from azure.communication.email import EmailClient
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from acs_email_support import FAST_POLLING, make_message
from emulators.acs_email import AcsEmailEmulator


def test_fifty_recipients_are_accepted(emulator, client):
    message = make_message(recipient_count=30)
    message["recipients"]["cc"] = [{"address": f"cc{index}@contoso.test"} for index in range(10)]
    message["recipients"]["bcc"] = [{"address": f"bcc{index}@contoso.test"} for index in range(10)]

    result = client.begin_send(message, polling_interval=FAST_POLLING).result()

    assert result["status"] == "Succeeded"
    assert len(emulator.messages[0]["recipients"]["bcc"]) == 10


def test_fifty_one_recipients_are_rejected(emulator, client):
    message = make_message(recipient_count=50)
    message["recipients"]["bcc"] = [{"address": "one-too-many@contoso.test"}]

    with pytest.raises(HttpResponseError, match="51 recipients") as raised:
        client.begin_send(message)

    assert raised.value.status_code == 400
    assert emulator.messages == []


def test_unlinked_sender_domain_is_rejected(emulator, client):
    with pytest.raises(ResourceNotFoundError) as raised:
        client.begin_send(make_message(senderAddress="DoNotReply@elsewhere.test"))

    assert raised.value.status_code == 404
    assert raised.value.error.code == "DomainNotLinked"
    assert raised.value.response.headers["x-ms-error-code"] == "DomainNotLinked"


def test_unknown_sender_on_linked_domain_is_rejected(emulator, client):
    with pytest.raises(HttpResponseError) as raised:
        client.begin_send(make_message(senderAddress="alerts@certrenew.test"))

    assert raised.value.status_code == 400
    assert raised.value.error.code == "InvalidSenderUserName"


def test_linked_domains_can_be_set_apart_from_senders(tmp_path):
    with AcsEmailEmulator(
        outbox_dir=str(tmp_path),
        allowed_senders=("notices@contoso.test",),
        linked_domains=("contoso.test", "fabrikam.test"),
        poll_retry_after=0,
    ) as emulator:
        client = EmailClient.from_connection_string(emulator.connection_string, connection_verify=emulator.ca_bundle)

        with pytest.raises(HttpResponseError) as raised:
            client.begin_send(make_message(senderAddress="DoNotReply@fabrikam.test"))
        result = client.begin_send(
            make_message(senderAddress="notices@contoso.test"), polling_interval=FAST_POLLING
        ).result()

    assert raised.value.error.code == "InvalidSenderUserName"
    assert result["status"] == "Succeeded"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda message: message["content"].pop("subject"), "content.subject is missing"),
        (lambda message: message["content"].update(plainText="", html=""), "no body"),
        (lambda message: message.pop("content"), "content is missing"),
        (lambda message: message["recipients"].update(to=[]), "no recipients"),
        (lambda message: message["recipients"]["to"].append({"address": "not-an-address"}), "not a valid email"),
        (lambda message: message.update(replyTo=[{"address": "two@@contoso.test"}]), "replyTo"),
        (lambda message: message.update(headers={"Bad Name": "x"}), "field name"),
    ],
    ids=["no-subject", "no-body", "no-content", "no-recipients", "bad-recipient", "bad-reply-to", "bad-header"],
)
def test_invalid_payload_is_rejected(emulator, client, change, reason):
    message = make_message()
    change(message)

    with pytest.raises(HttpResponseError, match=reason) as raised:
        client.begin_send(message)

    assert raised.value.status_code == 400
    assert emulator.messages == []


@pytest.mark.parametrize(
    ("attachment", "reason"),
    [
        ({"name": "a.txt", "contentType": "text/plain", "contentInBase64": "not base64!"}, "not valid base64"),
        ({"name": "a.txt", "contentInBase64": "YWJj"}, "contentType is missing"),
        ({"contentType": "text/plain", "contentInBase64": "YWJj"}, "name is missing"),
    ],
    ids=["bad-base64", "no-content-type", "no-name"],
)
def test_invalid_attachment_is_rejected(emulator, client, attachment, reason):
    with pytest.raises(HttpResponseError, match=reason) as raised:
        client.begin_send(make_message(attachments=[attachment]))

    assert raised.value.status_code == 400


def test_request_over_ten_megabytes_is_rejected(emulator, client):
    over_ten_megabytes = base64.b64encode(b"\0" * (8 * 1024 * 1024)).decode()
    attachment = {"name": "big.bin", "contentType": "application/octet-stream", "contentInBase64": over_ten_megabytes}

    with pytest.raises(HttpResponseError, match="at most 10485760 bytes") as raised:
        client.begin_send(make_message(attachments=[attachment]))

    assert raised.value.status_code == 413
    assert emulator.messages == []


def test_operation_id_must_be_uuid(emulator, client):
    with pytest.raises(HttpResponseError, match="not a UUID") as raised:
        client.begin_send(make_message(), operation_id="certificate-web-frontend")

    assert raised.value.status_code == 400
