"""Sending through the real EmailClient: authentication, the poll sequence and the outbox files."""

from __future__ import annotations

import base64
import datetime
import email
import email.policy
import email.utils

import pytest
from azure.communication.email import EmailClient
from azure.core.exceptions import ClientAuthenticationError, ServiceRequestError

from acs_email_support import FAST_POLLING, SENDER, StaticTokenCredential, make_message
from emulators.acs_email import AcsEmailEmulator


def test_connection_string_send_succeeds(emulator, client):
    # GIVEN the emulator returns Running to the first poll
    # WHEN a message is sent with HMAC authentication
    result = client.begin_send(make_message(), polling_interval=FAST_POLLING).result()

    # THEN the operation succeeds after one Running poll, and the message is stored
    assert result["status"] == "Succeeded"
    assert [(entry["method"], entry["status"]) for entry in emulator.request_log()] == [
        ("POST", 202),
        ("GET", 200),
        ("GET", 200),
    ]
    [message] = emulator.messages
    assert message["operation_id"] == result["id"]
    assert message["sender"] == SENDER
    assert message["recipients"]["to"] == [{"address": "owner0@contoso.test", "displayName": ""}]
    assert message["subject"] == "Certificate web-frontend renewed"


def test_token_credential_send_succeeds(emulator):
    credential = StaticTokenCredential()
    client = EmailClient(emulator.endpoint, credential, connection_verify=emulator.ca_bundle)

    result = client.begin_send(make_message(), polling_interval=FAST_POLLING).result()

    assert result["status"] == "Succeeded"
    assert credential.scopes[0] == "https://communication.azure.com//.default"
    assert len(emulator.messages) == 1


def test_polls_until_done_sets_running_polls(tmp_path):
    with AcsEmailEmulator(outbox_dir=str(tmp_path), polls_until_done=3, poll_retry_after=0) as emulator:
        client = EmailClient.from_connection_string(emulator.connection_string, connection_verify=emulator.ca_bundle)
        result = client.begin_send(make_message(), polling_interval=FAST_POLLING).result()
        polls = [entry for entry in emulator.request_log() if entry["method"] == "GET"]

    assert result["status"] == "Succeeded"
    assert len(polls) == 4


def test_wrong_access_key_is_rejected(emulator):
    wrong_key = base64.b64encode(b"not the emulator's key").decode()
    client = EmailClient.from_connection_string(
        f"endpoint={emulator.endpoint}/;accesskey={wrong_key}", connection_verify=emulator.ca_bundle
    )

    with pytest.raises(ClientAuthenticationError, match="signature does not match") as raised:
        client.begin_send(make_message())

    assert raised.value.status_code == 401
    assert raised.value.error.code == "Denied"
    assert emulator.messages == []


def _replace_body(request) -> None:
    http_request = request.http_request
    http_request.set_bytes_body(http_request.body.replace("renewed", "revoked").encode())


def _drop_authorization(request) -> None:
    del request.http_request.headers["Authorization"]


def _stale_date(request) -> None:
    an_hour_ago = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(hours=1)
    request.http_request.headers["x-ms-date"] = email.utils.format_datetime(an_hour_ago, usegmt=True)


@pytest.mark.parametrize(
    ("change_after_signing", "reason"),
    [
        (_replace_body, "x-ms-content-sha256 does not match"),
        (_drop_authorization, "Authorization header is missing"),
        (_stale_date, "Check the client clock"),
    ],
    ids=["tampered-body", "no-authorization", "stale-date"],
)
def test_request_changed_after_signing_is_rejected(emulator, change_after_signing, reason):
    # raw_request_hook runs after the SDK's HMAC policy has signed the request.
    client = EmailClient.from_connection_string(
        emulator.connection_string, connection_verify=emulator.ca_bundle, raw_request_hook=change_after_signing
    )

    with pytest.raises(ClientAuthenticationError, match=reason):
        client.begin_send(make_message())

    assert emulator.messages == []


def test_client_without_ca_bundle_fails_tls(emulator):
    client = EmailClient.from_connection_string(emulator.connection_string, retry_total=0)

    with pytest.raises(ServiceRequestError, match="CERTIFICATE_VERIFY_FAILED"):
        client.begin_send(make_message())


def test_eml_has_both_bodies_and_attachment(emulator, client):
    # GIVEN an attachment whose bytes cover every octet value
    attachment_bytes = bytes(range(256))
    message = make_message(
        attachments=[
            {
                "name": "web-frontend.csr",
                "contentType": "application/pkcs10",
                "contentInBase64": base64.b64encode(attachment_bytes).decode(),
            }
        ]
    )
    message["recipients"]["cc"] = [{"address": "team@contoso.test", "displayName": "Certificate team"}]

    # WHEN it is sent
    client.begin_send(message, polling_interval=FAST_POLLING).result()

    # THEN the .eml parses with text, HTML and the attachment intact
    [stored] = emulator.messages
    with open(stored["eml_path"], "rb") as file:
        parsed = email.message_from_binary_file(file, policy=email.policy.default)
    assert parsed["From"] == SENDER
    assert parsed["To"] == "owner0@contoso.test"
    assert parsed["Cc"] == "Certificate team <team@contoso.test>"
    assert parsed["Subject"] == "Certificate web-frontend renewed"
    assert parsed.get_body(("plain",)).get_content().strip() == "The certificate web-frontend was renewed."
    assert "<b>web-frontend</b>" in parsed.get_body(("html",)).get_content()
    [part] = list(parsed.iter_attachments())
    assert part.get_filename() == "web-frontend.csr"
    assert part.get_content_type() == "application/pkcs10"
    assert part.get_content() == attachment_bytes


def test_html_preview_is_the_html_body(emulator, client):
    client.begin_send(make_message(), polling_interval=FAST_POLLING).result()

    [stored] = emulator.messages
    with open(stored["html_path"], encoding="utf-8") as file:
        assert file.read() == "<p>The certificate <b>web-frontend</b> was renewed.</p>"
    assert stored["html_path"].endswith(f"-{stored['operation_id']}.html")
    assert stored["eml_path"].endswith(f"-{stored['operation_id']}.eml")


def test_line_break_in_subject_adds_no_header(emulator, client):
    message = make_message()
    message["content"]["subject"] = "Renewed\r\nBcc: attacker@evil.test"
    message["recipients"]["to"][0]["displayName"] = "Owner\nX-Injected: yes"

    client.begin_send(message, polling_interval=FAST_POLLING).result()

    [stored] = emulator.messages
    with open(stored["eml_path"], "rb") as file:
        parsed = email.message_from_binary_file(file, policy=email.policy.default)
    assert parsed["Bcc"] is None
    assert parsed["X-Injected"] is None
    assert parsed["Subject"] == "Renewed Bcc: attacker@evil.test"
