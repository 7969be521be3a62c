"""Sending through Azure Communication Services Email with the SDK's `EmailClient`, and what its errors mean.

Retries of 429 and 5xx responses are the SDK's: azure-core's `RetryPolicy` (azure-core 1.41) retries a POST on
500, 503 and 504, and on any error response that carries Retry-After, which ACS sends with 429. It waits for the
time in Retry-After, otherwise it backs off exponentially, and it retries three times by default. After that the error reaches
this module, which raises `EmailUnavailable` so that the queue delivers the notice again later.
"""

from __future__ import annotations

import logging
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any, Mapping
from urllib.parse import urlsplit

from azure.communication.email import EmailClient
from azure.core.credentials import TokenCredential
from azure.core.exceptions import (
    HttpResponseError,
    ResourceExistsError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.core.polling.base_polling import OperationFailed

from shared.email.errors import EmailRejected, EmailUnavailable
from shared.keyvault import StaticTokenCredential
from shared.settings import Settings, is_loopback_host, parse_acs_connection_string

logger = logging.getLogger(__name__)

# ACS usually reports a message's final status within seconds. Waiting longer keeps the function busy for
# nothing: the message was accepted and is never sent again, whatever its status.
POLL_TIMEOUT_SECONDS = 120
# Operation ids are UUIDs derived from the notice id and the message's position, so that a resend after a
# crash carries the same Operation-Id and ACS refuses it as a repeat (409) instead of sending it twice.
OPERATION_NAMESPACE = uuid.UUID("6f1d3a52-9c0e-4b7a-8d2f-2c4e5b6a7d80")
# Header that makes ACS drop an attachment of a type it does not allow instead of rejecting the whole message.
# The CSR is also in the body, so the email stays useful without it.
SUPPRESS_INVALID_ATTACHMENT = "x-ms-acsemail-suppress-invalid-attachment"
# Final statuses of an ACS send operation. UNKNOWN means the status could not be read, not that sending failed.
SUCCEEDED, FAILED, CANCELED, UNKNOWN = "Succeeded", "Failed", "Canceled", "unknown"


def operation_id_for(notice_id: str, message_index: int) -> str:
    """Return the Operation-Id of one message of a notice: the same on every delivery of that notice."""
    return str(uuid.uuid5(OPERATION_NAMESPACE, f"{notice_id}/{message_index}"))


@dataclass
class EmailSender:
    """Sends messages with one `EmailClient`, built on first use and kept for the process.

    In Azure the client signs in with the app's managed identity at `CERTRENEW_ACS_ENDPOINT`. A loopback
    endpoint (the local emulator) gets a static token and the CA bundle of `CERTRENEW_ACS_CA_BUNDLE`. A
    connection string, for local runs, replaces both.
    """

    settings: Settings
    credential: TokenCredential | None = None
    client_options: Mapping[str, Any] = field(default_factory=dict)
    # Seconds between status polls; None follows the Retry-After of ACS's responses.
    polling_interval: float | None = None
    poll_timeout: float = POLL_TIMEOUT_SECONDS
    _client: EmailClient | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def client(self) -> EmailClient:
        """Return the process's EmailClient, building it on first use."""
        with self._lock:
            if self._client is None:
                self._client = self._build()
            return self._client

    def begin(self, message: dict[str, Any], operation_id: str, notice_id: str) -> Any:
        """Send one message and return the SDK's poller, or None when ACS already accepted this operation id.

        Raises EmailUnavailable when a later try may succeed, and EmailRejected when none will.
        """
        options: dict[str, Any] = {"operation_id": operation_id}
        if self.polling_interval is not None:
            options["polling_interval"] = self.polling_interval
        try:
            return self.client().begin_send(message, **options)
        except ResourceExistsError:
            logger.info("notice=%s operation=%s: ACS accepted this message before", notice_id, operation_id)
            return None
        except (ServiceRequestError, ServiceResponseError) as exc:
            raise EmailUnavailable(f"ACS did not respond to the send of notice {notice_id}: {exc}", notice_id) from exc
        except HttpResponseError as exc:
            raise classify_send_error(exc, self.settings, notice_id) from exc

    def wait(self, poller: Any, notice_id: str) -> str:
        """Wait for an accepted message's final status. Returns SUCCEEDED, FAILED, CANCELED or UNKNOWN."""
        try:
            poller.result(timeout=self.poll_timeout)
        except HttpResponseError as exc:
            # azure-core reports a final Failed or Canceled as OperationFailed. Any other error, such as a 404
            # "message not found" on a poll, gives no information about the message, which ACS may have delivered.
            if isinstance(exc.__cause__, OperationFailed):
                status = str(poller.status())
                return status if status in (FAILED, CANCELED) else FAILED
            logger.warning("notice=%s: reading the send status failed (%s): %s", notice_id, exc.status_code, exc.message)
            return UNKNOWN
        if not poller.done():
            logger.warning("notice=%s: no final send status after %s s", notice_id, self.poll_timeout)
            return UNKNOWN
        status = str(poller.status())
        return status if status in (SUCCEEDED, FAILED, CANCELED) else UNKNOWN

    def _build(self) -> EmailClient:
        options: dict[str, Any] = dict(self.client_options)
        if self.settings.acs_connection_string:
            endpoint, _ = parse_acs_connection_string(self.settings.acs_connection_string)
            self._trust_local_ca(endpoint, options)
            return EmailClient.from_connection_string(self.settings.acs_connection_string, **options)

        endpoint = self.settings.acs_endpoint
        if not endpoint:
            raise EmailRejected(
                "App setting CERTRENEW_ACS_ENDPOINT is missing. Set it to the endpoint of the Communication "
                "Services resource, for example https://contoso-certrenew.communication.azure.com.",
                setting="CERTRENEW_ACS_ENDPOINT",
            )
        if self._trust_local_ca(endpoint, options):
            # A local emulator accepts any bearer token, and this one never leaves the machine.
            return EmailClient(endpoint, StaticTokenCredential(), **options)
        return EmailClient(endpoint, self.credential or self._default_credential(), **options)

    def _trust_local_ca(self, endpoint: str, options: dict[str, Any]) -> bool:
        loopback = is_loopback_host(urlsplit(endpoint).hostname or "")
        if loopback and self.settings.acs_ca_bundle:
            options["connection_verify"] = self.settings.acs_ca_bundle
        return loopback

    def _default_credential(self) -> TokenCredential:
        from azure.identity import DefaultAzureCredential  # noqa: PLC0415 - slow import, not needed locally

        # In Azure this resolves to the app's managed identity (AZURE_CLIENT_ID names a user-assigned one).
        self.credential = DefaultAzureCredential()
        return self.credential


def classify_send_error(exc: HttpResponseError, settings: Settings, notice_id: str) -> Exception:
    """Map an error response to a send into EmailUnavailable (worth a redelivery) or EmailRejected (not)."""
    status = exc.status_code
    code = getattr(exc.error, "code", None) if exc.error else None
    detail = (getattr(exc.error, "message", None) if exc.error else None) or exc.reason or ""
    if status is None or status in (408, 429) or status >= 500:
        return EmailUnavailable(
            f"ACS responded {status} ({code}) to the send of notice {notice_id} after the SDK's retries.", notice_id
        )
    sender = settings.email_sender
    domain = sender.rpartition("@")[2]
    if code == "DomainNotLinked" or status == 404:
        return EmailRejected(
            f"ACS rejected the sender {sender}: domain {domain} is not linked to the Communication Services "
            "resource (DomainNotLinked). Link the domain in the resource's Email > Domains page, or set "
            "CERTRENEW_EMAIL_SENDER to an address of a linked domain.",
            notice_id, "CERTRENEW_EMAIL_SENDER", code, status,
        )
    if code == "InvalidSenderUserName":
        return EmailRejected(
            f"ACS rejected the sender {sender}: it is not a MailFrom address of domain {domain} "
            "(InvalidSenderUserName). Add it as a sender username of the domain, or set CERTRENEW_EMAIL_SENDER "
            "to an existing one, such as DoNotReply@" + domain + ".",
            notice_id, "CERTRENEW_EMAIL_SENDER", code, status,
        )
    if status in (401, 403):
        return EmailRejected(
            f"ACS denied the send of notice {notice_id} ({status} {code}). Give the app's managed identity the "
            "CertRenew Email Sender role on the Communication Services resource, and check that "
            "CERTRENEW_ACS_ENDPOINT names that resource. A role assigned in the last minutes may not be in "
            "effect yet.",
            notice_id, "CERTRENEW_ACS_ENDPOINT", code, status,
        )
    return EmailRejected(
        f"ACS rejected the message of notice {notice_id} ({status} {code}): {detail[:300]}", notice_id, "", code, status
    )
