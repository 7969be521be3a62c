"""Azure Functions entry points. Wiring only: the logic is in the shared package."""

import azure.functions as func

from shared import handlers
from shared.email import handler as email_handler
from shared.notices import NOTICE_QUEUE

app = func.FunctionApp()
handlers.log_invalid_settings()


@app.event_grid_trigger(arg_name="event")
@app.queue_output(arg_name="notices", queue_name=NOTICE_QUEUE, connection="AzureWebJobsStorage")
def on_certificate_expiring(event: func.EventGridEvent, notices: func.Out[list[str]]) -> None:
    """Start renewals on CertificateNearExpiry and CertificateExpired."""
    messages = handlers.handle_grid_event("on_certificate_expiring", event)
    if messages:
        notices.set(messages)


@app.event_grid_trigger(arg_name="event")
@app.queue_output(arg_name="notices", queue_name=NOTICE_QUEUE, connection="AzureWebJobsStorage")
def on_certificate_version_created(event: func.EventGridEvent, notices: func.Out[list[str]]) -> None:
    """Confirm renewals on CertificateNewVersionCreated, made by this app, by Key Vault or by a person."""
    messages = handlers.handle_grid_event("on_certificate_version_created", event)
    if messages:
        notices.set(messages)


@app.timer_trigger(arg_name="timer", schedule="%CERTRENEW_SWEEP_SCHEDULE%", run_on_startup=False)
@app.queue_output(arg_name="notices", queue_name=NOTICE_QUEUE, connection="AzureWebJobsStorage")
def sweep_vaults(timer: func.TimerRequest, notices: func.Out[list[str]]) -> None:
    """Check certificate operations still running, and renew certificates that are due but got no event."""
    messages = handlers.run_sweep()
    if messages:
        notices.set(messages)


@app.queue_trigger(arg_name="msg", queue_name=NOTICE_QUEUE, connection="AzureWebJobsStorage")
@app.queue_output(arg_name="poison", queue_name=NOTICE_QUEUE + "-poison", connection="AzureWebJobsStorage")
def send_notice_email(msg: func.QueueMessage, poison: func.Out[str]) -> None:
    """Email a notice to the certificate's people once, however often the queue delivers it."""
    rejected = email_handler.handle_notice_message(msg.get_body().decode("utf-8"), msg.dequeue_count)
    if rejected is not None:
        poison.set(rejected)
