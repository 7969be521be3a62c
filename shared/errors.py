"""Exceptions of the renewal service, split into those worth retrying and those that never succeed."""

from __future__ import annotations


class CertRenewError(Exception):
    """Base class of the errors this package raises on purpose."""


class SettingsError(CertRenewError):
    """An app setting is missing or invalid."""

    def __init__(self, setting: str, problem: str) -> None:
        super().__init__(f"App setting {setting} is invalid: {problem}.")
        self.setting = setting
        self.problem = problem


class RejectedEvent(CertRenewError):
    """An event that can never succeed: it is logged and acknowledged, never retried."""

    def __init__(self, reason: str, event_id: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.event_id = event_id


class JournalConflict(CertRenewError):
    """Another delivery already claimed the same journal entry."""
