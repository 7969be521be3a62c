"""Injected faults and resends, seen through the real EmailClient and its retry and polling policies."""

from __future__ import annotations

import datetime
import email.utils
import uuid

import pytest
from azure.communication.email import EmailClient
from azure.core.exceptions import HttpResponseError, ResourceExistsError

from acs_email_support import FAST_POLLING, make_message


def _statuses(emulator, method: str) -> list[int]:
    return [entry["status"] for entry in emulator.request_log() if entry["method"] == method]


def test_throttled_send_is_retried_then_accepted(emulator, client):
    # GIVEN the next send is throttled with a Retry-After header
    emulator.inject_fault("send", 429, retry_after=0)

    # WHEN the SDK sends (it retries a POST only when Retry-After is present)
    result = client.begin_send(make_message(), polling_interval=FAST_POLLING).result()

    # THEN the retry is accepted and exactly one message exists
    assert result["status"] == "Succeeded"
    assert _statuses(emulator, "POST") == [429, 202]
    assert len(emulator.messages) == 1


def test_throttled_send_carries_retry_after(emulator):
    emulator.inject_fault("send", 429, retry_after=7)
    client = EmailClient.from_connection_string(emulator.connection_string, connection_verify=emulator.ca_bundle, retry_total=0)

    with pytest.raises(HttpResponseError) as raised:
        client.begin_send(make_message())

    assert raised.value.status_code == 429
    assert raised.value.response.headers["Retry-After"] == "7"
    assert emulator.messages == []


@pytest.mark.parametrize("status", [500, 503])
def test_server_error_on_send_is_retried(emulator, client, status):
    emulator.inject_fault("send", status)

    result = client.begin_send(make_message(), polling_interval=FAST_POLLING).result()

    assert result["status"] == "Succeeded"
    assert _statuses(emulator, "POST") == [status, 202]
    assert len(emulator.messages) == 1


def test_server_error_on_poll_is_retried(emulator, client):
    emulator.inject_fault("poll", 500)

    result = client.begin_send(make_message(), polling_interval=FAST_POLLING).result()

    assert result["status"] == "Succeeded"
    assert _statuses(emulator, "GET")[0] == 500


def test_persistent_poll_error_fails_after_acceptance(emulator):
    client = EmailClient.from_connection_string(emulator.connection_string, connection_verify=emulator.ca_bundle, retry_total=0)
    emulator.inject_fault("poll", 500, count=3)

    poller = client.begin_send(make_message(), polling_interval=FAST_POLLING)
    with pytest.raises(HttpResponseError) as raised:
        poller.result()

    assert raised.value.status_code == 500
    assert len(emulator.messages) == 1


def test_message_not_found_on_poll_keeps_message(emulator, client):
    # GIVEN the status service loses the operation after the send was accepted
    operation_id = str(uuid.uuid4())
    emulator.inject_fault("poll", 404)

    # WHEN the caller polls
    poller = client.begin_send(make_message(), operation_id=operation_id, polling_interval=FAST_POLLING)
    with pytest.raises(HttpResponseError) as raised:
        poller.result()

    # THEN the poll fails with 404, yet the message was accepted and is stored under the caller's id
    assert raised.value.status_code == 404
    assert "Message not found" in str(raised.value)
    assert [message["operation_id"] for message in emulator.messages] == [operation_id]


def test_failed_fault_ends_operation_failed(emulator, client):
    emulator.inject_fault("poll", "failed")

    poller = client.begin_send(make_message(), polling_interval=FAST_POLLING)
    with pytest.raises(HttpResponseError) as raised:
        poller.result()

    assert raised.value.error.code == "EmailDropped"
    assert poller.status() == "Failed"


def test_fault_count_is_consumed_in_order(emulator, client):
    emulator.inject_fault("send", 503, count=2)

    client.begin_send(make_message(), polling_interval=FAST_POLLING).result()
    client.begin_send(make_message(), polling_interval=FAST_POLLING).result()

    assert _statuses(emulator, "POST") == [503, 503, 202, 202]


@pytest.mark.parametrize(
    ("route", "kind"),
    [("send", 404), ("send", "failed"), ("poll", 418), ("status", 500)],
)
def test_unknown_fault_is_rejected(emulator, route, kind):
    with pytest.raises(ValueError, match="not"):
        emulator.inject_fault(route, kind)


def test_repeated_operation_id_is_not_sent_twice(emulator, client):
    operation_id = str(uuid.uuid4())
    client.begin_send(make_message(), operation_id=operation_id, polling_interval=FAST_POLLING).result()

    with pytest.raises(ResourceExistsError, match="not sent again") as raised:
        client.begin_send(make_message(), operation_id=operation_id)

    assert raised.value.status_code == 409
    assert len(emulator.messages) == 1


def _repeatability_headers(first_sent: datetime.datetime | None = None) -> dict[str, str]:
    sent_at = first_sent or datetime.datetime.now(datetime.timezone.utc)
    return {
        "Repeatability-Request-Id": str(uuid.uuid4()),
        "Repeatability-First-Sent": email.utils.format_datetime(sent_at, usegmt=True),
    }


def test_repeatable_resend_returns_first_answer(emulator, client):
    headers = _repeatability_headers()
    first = client.begin_send(make_message(), headers=headers, polling_interval=FAST_POLLING).result()

    second = client.begin_send(make_message(), headers=headers, polling_interval=FAST_POLLING).result()

    assert second["id"] == first["id"]
    assert len(emulator.messages) == 1


def test_repeatable_resend_with_other_body_is_rejected(emulator, client):
    headers = _repeatability_headers()
    client.begin_send(make_message(), headers=headers, polling_interval=FAST_POLLING).result()

    with pytest.raises(HttpResponseError, match="another body") as raised:
        client.begin_send(make_message(recipient_count=2), headers=headers)

    assert raised.value.status_code == 400
    assert len(emulator.messages) == 1


def test_repeatable_request_older_than_five_minutes_is_rejected(emulator, client):
    ten_minutes_ago = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=10)

    with pytest.raises(HttpResponseError) as raised:
        client.begin_send(make_message(), headers=_repeatability_headers(ten_minutes_ago))

    assert raised.value.status_code == 412
    assert emulator.messages == []
