"""The bodies of the functions in function_app.py, kept here so function_app.py stays wiring only."""

from __future__ import annotations

import logging
import os
from typing import Any, Iterable

from shared.errors import RejectedEvent, SettingsError
from shared.events import SUBSCRIPTIONS, envelope_fields, parse_certificate_event
from shared.keyvault import KeyVaultError
from shared.notices import NoticeSink
from shared.outcome import Outcome
from shared.runtime import get_runtime
from shared.settings import load_settings

logger = logging.getLogger(__name__)


def handle_grid_event(function_name: str, event: Any) -> list[str]:
    """Handle one event from the Event Grid trigger and return the notice queue messages.

    `event` is the trigger's azure.functions.EventGridEvent. An event that can never succeed is logged and
    acknowledged; a transient failure raises, so Event Grid delivers it again.
    """
    runtime = get_runtime()
    sink = NoticeSink(runtime.settings.outbox_dir)
    try:
        parsed = parse_certificate_event(
            event.id, event.event_type, event.get_json(), runtime.settings, SUBSCRIPTIONS[function_name]
        )
    except RejectedEvent as exc:
        logger.warning("Rejected event %s in %s: %s", exc.event_id, function_name, exc.reason)
        return []
    try:
        runtime.service(sink).handle_event(parsed)
    except KeyVaultError as exc:
        # Redelivering cannot fix a refused permission or a rejected request, so the event is acknowledged.
        # The timer's sweep looks at the certificate again once a person has fixed the cause.
        logger.error("Key Vault rejected the work for %s: %s", parsed.describe(), exc)
    return _queue_messages(runtime.settings.dry_run, sink)


def handle_event_dicts(events: Iterable[dict[str, Any]], function_name: str | None = None) -> tuple[Outcome, list[str]]:
    """Run event dicts (an event file or request body) through the same code as the Event Grid functions.

    Returns the combined outcome and one line per rejected event. With no function name, each event goes
    wherever its type is handled.
    """
    runtime = get_runtime()
    outcome = Outcome()
    rejected: list[str] = []
    for raw in events:
        sink = NoticeSink(runtime.settings.outbox_dir)
        try:
            event_id, event_type, data = envelope_fields(raw)
            handled = SUBSCRIPTIONS[function_name] if function_name else _all_handled_types()
            parsed = parse_certificate_event(event_id, event_type, data, runtime.settings, handled)
        except RejectedEvent as exc:
            logger.warning("Rejected event %s: %s", exc.event_id, exc.reason)
            rejected.append(f"{exc.event_id or '(no id)'}: {exc.reason}")
            continue
        outcome.extend(runtime.service(sink).handle_event(parsed))
    return outcome, rejected


def run_sweep() -> list[str]:
    """Run the timer's work: check open operations, then sweep every vault. Returns the queue messages."""
    runtime = get_runtime()
    sink = NoticeSink(runtime.settings.outbox_dir)
    runtime.service(sink).sweep()
    return _queue_messages(runtime.settings.dry_run, sink)


def log_invalid_settings() -> None:
    """Log an error when the app settings are invalid, so the host's start-up log names the setting to fix.

    It does not raise, because the host must still load the functions: each invocation then fails with the
    same message, and Event Grid and the queue deliver again once the setting is fixed. Outside a Functions
    host (FUNCTIONS_WORKER_RUNTIME unset), as in the tests, the demo and the CLI, it checks nothing, because
    those set their settings after loading the app.
    """
    if not os.environ.get("FUNCTIONS_WORKER_RUNTIME"):
        return
    try:
        load_settings()
    except SettingsError as exc:
        logger.error("%s The functions fail until it is fixed.", exc)


def _queue_messages(dry_run: bool, sink: NoticeSink) -> list[str]:
    """Return the messages for the notice queue: none in a dry run, which only logs what it would send.

    The journal already counts these notices as queued, and the host writes the output binding only after the
    function returns. If that write fails, the timer queues the notice again once it is overdue at the email
    function (RenewalService.resend_lost_notices).
    """
    if dry_run:
        for notice in sink.notices:
            logger.info("Dry run: would queue notice=%s kind=%s certificate=%s", notice.id, notice.kind,
                        notice.certificate.name)
        return []
    return sink.messages()


def _all_handled_types() -> tuple[str, ...]:
    return tuple(event_type for types in SUBSCRIPTIONS.values() for event_type in types)
