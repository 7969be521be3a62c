"""Deliver events and timer ticks to the decorated functions of function_app.py, as the Functions host does.

The Functions host and Core Tools cannot run here, so the tests and the demo call the decorated functions
directly (azure-functions 1.21 and later allow it) with the trigger and output binding objects the host
would pass.
"""

from __future__ import annotations

from typing import Any, Iterable

import azure.functions as func
from azure.functions.queue import QueueMessage

import function_app
from shared.events import SUBSCRIPTIONS
from shared.notices import Notice


class EventRecorder:
    """An event sink for the Key Vault emulator: keeps every event and hands out those not yet delivered."""

    def __init__(self) -> None:
        self.events: list[dict] = []
        self.delivered = 0

    def __call__(self, events: list[dict]) -> None:
        self.events.extend(events)

    def take_new(self) -> list[dict]:
        """Return the events received since the last call."""
        new = self.events[self.delivered :]
        self.delivered = len(self.events)
        return new

    def clear(self) -> None:
        self.events.clear()
        self.delivered = 0


class CapturedOutput(func.Out):
    """An output binding: keeps what the function set, as the host does before writing it to the queue."""

    def __init__(self) -> None:
        self.value: Any = None

    def set(self, val: Any) -> None:
        self.value = val

    def get(self) -> Any:
        return self.value


def to_trigger_event(raw: dict) -> func.EventGridEvent:
    """Build the Event Grid trigger's argument from an Event Grid schema event."""
    return func.EventGridEvent(
        id=raw["id"],
        data=raw["data"],
        topic=raw.get("topic"),
        subject=raw.get("subject"),
        event_type=raw.get("eventType"),
        event_time=None,
        data_version=raw.get("dataVersion", "1"),
    )


def deliver_events(raw_events: Iterable[dict]) -> list[Notice]:
    """Deliver each event to the function subscribed to its type and return the notices the functions queued."""
    notices: list[Notice] = []
    for raw in raw_events:
        for function_name, event_types in SUBSCRIPTIONS.items():
            if raw.get("eventType") in event_types:
                output = CapturedOutput()
                getattr(function_app, function_name)(event=to_trigger_event(raw), notices=output)
                notices.extend(Notice.from_json(message) for message in output.value or [])
    return notices


def run_timer() -> list[Notice]:
    """Run the timer function once and return the notices it queued."""
    output = CapturedOutput()
    function_app.sweep_vaults(timer=None, notices=output)
    return [Notice.from_json(message) for message in output.value or []]


def deliver_queue_message(body: str, dequeue_count: int = 1) -> str | None:
    """Deliver one notice queue message to the email function; return what it put on the poison queue, if anything.

    An exception from the function propagates, as it would reach the host, which then delivers the message again.
    """
    poison = CapturedOutput()
    # azure.functions.queue.QueueMessage is the class the host builds, the one that carries the dequeue count.
    message = QueueMessage(id=f"delivery-{dequeue_count}", body=body.encode("utf-8"), dequeue_count=dequeue_count)
    function_app.send_notice_email(msg=message, poison=poison)
    return poison.value
