"""The async EmailClient, the /_emulator/ control API and the command line."""

from __future__ import annotations

import asyncio
import json
import os
import ssl
import subprocess
import sys
import urllib.error
import urllib.request

from azure.communication.email import EmailClient
from azure.communication.email.aio import EmailClient as AsyncEmailClient

from acs_email_support import FAST_POLLING, make_message

REPOSITORY_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_async_client_send_succeeds(emulator):
    # The async client signs with the URL as yarl writes it for aiohttp; the signature must still match.
    async def send() -> dict:
        async with AsyncEmailClient.from_connection_string(
            emulator.connection_string, connection_verify=emulator.ca_bundle
        ) as client:
            poller = await client.begin_send(make_message(), polling_interval=FAST_POLLING)
            return await poller.result()

    result = asyncio.run(send())

    assert result["status"] == "Succeeded"
    assert len(emulator.messages) == 1


def _control(emulator, method: str, path: str, body: dict | None = None) -> tuple[int, dict | None]:
    context = ssl.create_default_context(cafile=emulator.ca_bundle)
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"{emulator.endpoint}{path}", data=data, method=method)
    with urllib.request.urlopen(request, context=context) as response:
        payload = response.read()
        return response.status, json.loads(payload) if payload else None


def test_control_api_injects_lists_and_resets(emulator, client):
    status, _ = _control(emulator, "POST", "/_emulator/faults", {"route": "send", "kind": 503})
    assert status == 201

    client.begin_send(make_message(), polling_interval=FAST_POLLING).result()

    _, requests = _control(emulator, "GET", "/_emulator/requests")
    assert [entry["status"] for entry in requests["value"] if entry["method"] == "POST"] == [503, 202]
    _, messages = _control(emulator, "GET", "/_emulator/messages")
    assert [message["subject"] for message in messages["value"]] == ["Certificate web-frontend renewed"]

    status, _ = _control(emulator, "POST", "/_emulator/reset")
    assert status == 204
    assert emulator.messages == []
    assert emulator.request_log() == []


def test_control_api_rejects_unknown_fault(emulator):
    try:
        _control(emulator, "POST", "/_emulator/faults", {"route": "send", "kind": 418})
    except urllib.error.HTTPError as error:
        assert error.code == 400
        assert "not available on route" in json.loads(error.read())["error"]["message"]
    else:
        raise AssertionError("a fault of kind 418 was accepted")


def test_command_line_serves_until_stopped(tmp_path):
    # GIVEN the emulator started as a person would start it
    outbox = tmp_path / "outbox"
    process = subprocess.Popen(
        [sys.executable, "-m", "emulators.acs_email", "--outbox", str(outbox), "--polls-until-done", "0"],
        cwd=REPOSITORY_ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    try:
        printed = {}
        for line in process.stdout:
            name, _, value = line.strip().partition(": ")
            printed[name] = value.strip()
            if name == "CA bundle":
                break

        # WHEN a client uses what it printed
        client = EmailClient.from_connection_string(printed["connection string"], connection_verify=printed["CA bundle"])
        result = client.begin_send(make_message(), polling_interval=FAST_POLLING).result()
    finally:
        process.terminate()
        process.wait(timeout=10)

    # THEN the message is in the outbox folder it was given
    assert result["status"] == "Succeeded"
    assert sorted(path.suffix for path in outbox.iterdir()) == [".eml", ".html"]
    assert process.returncode == 0
