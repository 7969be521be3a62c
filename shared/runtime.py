"""The process-wide objects the functions share: settings, Key Vault clients and the journal, built once."""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Callable

from shared.journal import DryRunJournal, Journal, SqliteJournal, TableJournal
from shared.keyvault import VaultClients
from shared.notices import NoticeSink
from shared.renewal import RenewalService, utc_now
from shared.settings import Settings, load_settings

logger = logging.getLogger(__name__)


@dataclass
class Runtime:
    """Everything a function invocation needs apart from its input."""

    settings: Settings
    vaults: VaultClients
    journal: Journal
    clock: Callable[[], datetime] = utc_now

    def service(self, sink: NoticeSink | None = None) -> RenewalService:
        """Return a renewal service whose notices go to sink (a new one per invocation)."""
        sink = sink or NoticeSink(self.settings.outbox_dir)
        return RenewalService(self.settings, self.vaults, self.journal, sink, clock=self.clock)


_runtime: Runtime | None = None
_lock = threading.Lock()


def build_runtime(settings: Settings, clock: Callable[[], datetime] = utc_now) -> Runtime:
    """Build the clients and the journal that the settings name."""
    return Runtime(settings=settings, vaults=VaultClients(settings), journal=open_journal(settings), clock=clock)


def open_journal(settings: Settings) -> Journal:
    """Open the journal that CERTRENEW_JOURNAL names, read-only underneath when CERTRENEW_DRY_RUN is set."""
    if settings.journal == "table":
        journal: Journal = TableJournal.from_settings(settings.journal_table, dict(os.environ))
    else:
        journal = SqliteJournal(settings.journal.removeprefix("sqlite:"))
    return DryRunJournal(journal) if settings.dry_run else journal


def get_runtime() -> Runtime:
    """Return the process's runtime, built from the app settings on first use.

    Raises SettingsError naming the setting when the settings are invalid, so the first invocation fails
    with a message that names what to fix.
    """
    global _runtime
    with _lock:
        if _runtime is None:
            _runtime = build_runtime(load_settings())
            logger.info("Managing vaults: %s", ", ".join(vault.name for vault in _runtime.settings.vaults))
        return _runtime


def set_runtime(runtime: Runtime | None) -> None:
    """Replace the process's runtime: for tests, the demo and the CLI, which build their own."""
    global _runtime
    with _lock:
        _runtime = runtime
