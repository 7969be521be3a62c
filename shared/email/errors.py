"""Exceptions of the email function, split into those a redelivery may fix and those it never will."""

from __future__ import annotations

from shared.errors import CertRenewError


class EmailError(CertRenewError):
    """Base class of the email function's errors. `notice_id` names the notice the email was for."""

    def __init__(self, message: str, notice_id: str = "") -> None:
        super().__init__(message)
        self.notice_id = notice_id


class EmailUnavailable(EmailError):
    """ACS throttled, failed or did not respond after the SDK's retries: raise so the queue delivers again."""


class EmailRejected(EmailError):
    """ACS rejected the message for a reason no redelivery fixes, such as an unlinked sender domain.

    `setting` names the app setting to fix, when one is to blame. `code` and `status` are ACS's error code
    and HTTP status.
    """

    def __init__(
        self, message: str, notice_id: str = "", setting: str = "", code: str | None = None, status: int | None = None
    ) -> None:
        super().__init__(message, notice_id)
        self.setting = setting
        self.code = code
        self.status = status


class NoRecipients(EmailError):
    """No recipient is left for a notice and no fallback address is set. Raised so that the notice is not lost."""
