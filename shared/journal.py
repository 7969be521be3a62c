"""The renewal journal: which renewal each certificate is in, which notices went out, and a history of actions.

Event Grid delivers at least once, so two deliveries of one event may run at the same time. Each write that
decides who acts is a compare-and-swap: an insert that fails when the entry exists, or a replace that fails
when the entry changed since it was read. Table Storage (the function app's own storage account) keeps the
journal in Azure. A SQLite file keeps it for local runs.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import uuid
from abc import ABC, abstractmethod
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

from azure.core import MatchConditions
from azure.core.exceptions import (
    HttpResponseError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
    ServiceRequestError,
)
from azure.data.tables import TableClient, TableServiceClient, UpdateMode
from shared.errors import CertRenewError, SettingsError

logger = logging.getLogger(__name__)

# Renewal states that still wait for Key Vault or a person, which the timer checks.
OPEN_STATES = ("started", "announced")


def renewal_key(name: str) -> str:
    """Return the journal key of a certificate's renewal. Key Vault names are case-insensitive."""
    return f"renewal~{name.lower()}"


def notice_key(notice_id: str) -> str:
    """Return the journal key that records a notice as queued (or skipped)."""
    return f"notice~{notice_id}"


def email_key(notice_id: str) -> str:
    """Return the journal key that the email function keeps for a notice's email."""
    return f"email~{notice_id}"


class JournalUnavailable(CertRenewError):
    """The journal's storage failed; the invocation raises so the platform delivers again."""


class Journal(ABC):
    """Entries keyed by vault and key, each a JSON object with an opaque version tag (etag)."""

    @abstractmethod
    def read(self, vault: str, key: str) -> tuple[dict[str, Any], str] | None:
        """Return an entry and its etag, or None."""

    @abstractmethod
    def insert(self, vault: str, key: str, fields: dict[str, Any]) -> bool:
        """Create an entry; return False when it already exists."""

    @abstractmethod
    def replace(self, vault: str, key: str, fields: dict[str, Any], etag: str) -> bool:
        """Replace an entry; return False when it changed since the etag was read."""

    @abstractmethod
    def merge(self, vault: str, key: str, fields: dict[str, Any]) -> None:
        """Update some fields of an entry, creating it when missing."""

    @abstractmethod
    def entries(self, prefix: str, states: tuple[str, ...] = ()) -> Iterator[tuple[str, str, dict[str, Any]]]:
        """Yield (vault, key, fields) of the entries whose key starts with prefix and whose state is in states."""

    @abstractmethod
    def append_history(self, vault: str, certificate: str, action: str, detail: str, at: datetime) -> None:
        """Record one action in the history."""

    @abstractmethod
    def history(self, vault: str | None = None, certificate: str | None = None, limit: int = 100) -> list[dict]:
        """Return the newest history records first, optionally for one vault or certificate."""

    def claim_notice(self, vault: str, notice_id: str, kind: str, at: datetime, message: str | None = None) -> bool:
        """Record that a notice is queued, with its message; return False when it was queued before.

        Without a message, the notice is only marked as skipped, so that it is never sent.
        """
        fields = {"kind": kind, "at": at.isoformat(), "state": "queued" if message else "skipped", "message": message}
        return self.insert(vault, notice_key(notice_id), fields)


class SqliteJournal(Journal):
    """The journal in a local SQLite file, for local runs and the operator CLI."""

    def __init__(self, path: str) -> None:
        self.path = path
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._connection = sqlite3.connect(path, timeout=30, check_same_thread=False, isolation_level=None)
        self._connection.execute("PRAGMA journal_mode=WAL")
        self._connection.executescript(
            """
            CREATE TABLE IF NOT EXISTS entries (
                vault TEXT NOT NULL, key TEXT NOT NULL, state TEXT, fields TEXT NOT NULL, etag TEXT NOT NULL,
                PRIMARY KEY (vault, key));
            CREATE TABLE IF NOT EXISTS history (
                id INTEGER PRIMARY KEY AUTOINCREMENT, vault TEXT NOT NULL, certificate TEXT NOT NULL,
                action TEXT NOT NULL, detail TEXT NOT NULL, at TEXT NOT NULL);
            CREATE INDEX IF NOT EXISTS history_by_certificate ON history (vault, certificate, at);
            """
        )

    def read(self, vault: str, key: str) -> tuple[dict[str, Any], str] | None:
        with self._lock:
            row = self._connection.execute(
                "SELECT fields, etag FROM entries WHERE vault = ? AND key = ?", (vault.lower(), key)
            ).fetchone()
        return (json.loads(row[0]), row[1]) if row else None

    def insert(self, vault: str, key: str, fields: dict[str, Any]) -> bool:
        try:
            with self._lock:
                self._connection.execute(
                    "INSERT INTO entries (vault, key, state, fields, etag) VALUES (?, ?, ?, ?, ?)",
                    (vault.lower(), key, fields.get("state"), json.dumps(fields), uuid.uuid4().hex),
                )
        except sqlite3.IntegrityError:
            return False
        return True

    def replace(self, vault: str, key: str, fields: dict[str, Any], etag: str) -> bool:
        with self._lock:
            cursor = self._connection.execute(
                "UPDATE entries SET state = ?, fields = ?, etag = ? WHERE vault = ? AND key = ? AND etag = ?",
                (fields.get("state"), json.dumps(fields), uuid.uuid4().hex, vault.lower(), key, etag),
            )
        return cursor.rowcount == 1

    def merge(self, vault: str, key: str, fields: dict[str, Any]) -> None:
        with self._lock:
            self._connection.execute("BEGIN IMMEDIATE")
            try:
                row = self._connection.execute(
                    "SELECT fields FROM entries WHERE vault = ? AND key = ?", (vault.lower(), key)
                ).fetchone()
                merged = {**(json.loads(row[0]) if row else {}), **fields}
                self._connection.execute(
                    "INSERT OR REPLACE INTO entries (vault, key, state, fields, etag) VALUES (?, ?, ?, ?, ?)",
                    (vault.lower(), key, merged.get("state"), json.dumps(merged), uuid.uuid4().hex),
                )
                self._connection.execute("COMMIT")
            except BaseException:
                self._connection.execute("ROLLBACK")
                raise

    def entries(self, prefix: str, states: tuple[str, ...] = ()) -> Iterator[tuple[str, str, dict[str, Any]]]:
        query = "SELECT vault, key, fields FROM entries WHERE key >= ? AND key < ?"
        parameters: list[Any] = [prefix, prefix + "\uffff"]
        if states:
            query += f" AND state IN ({', '.join('?' for _ in states)})"
            parameters.extend(states)
        with self._lock:
            rows = self._connection.execute(query, parameters).fetchall()
        for vault, key, fields in rows:
            yield vault, key, json.loads(fields)

    def append_history(self, vault: str, certificate: str, action: str, detail: str, at: datetime) -> None:
        with self._lock:
            self._connection.execute(
                "INSERT INTO history (vault, certificate, action, detail, at) VALUES (?, ?, ?, ?, ?)",
                (vault.lower(), certificate, action, detail, at.astimezone(timezone.utc).isoformat()),
            )

    def history(self, vault: str | None = None, certificate: str | None = None, limit: int = 100) -> list[dict]:
        query = "SELECT vault, certificate, action, detail, at FROM history WHERE 1 = 1"
        parameters: list[Any] = []
        if vault:
            query += " AND vault = ?"
            parameters.append(vault.lower())
        if certificate:
            # Key Vault names are case-insensitive, and a person may type one in another case.
            query += " AND lower(certificate) = lower(?)"
            parameters.append(certificate)
        query += " ORDER BY at DESC, id DESC LIMIT ?"
        parameters.append(limit)
        with self._lock:
            rows = self._connection.execute(query, parameters).fetchall()
        return [dict(zip(("vault", "certificate", "action", "detail", "at"), row)) for row in rows]


class TableJournal(Journal):
    """The journal in Azure Table Storage: partition key = vault name, row key = entry key.

    History rows use row keys `history~<certificate>~<inverted time>~<id>`, so a range query returns the
    newest first.
    """

    def __init__(self, table_client: TableClient) -> None:
        self._table = table_client

    @classmethod
    def from_settings(cls, table_name: str, environ: dict[str, str], **client_options: Any) -> "TableJournal":
        """Connect the way the Functions host connects AzureWebJobsStorage: identity first, then a connection string."""

        account = environ.get("AzureWebJobsStorage__accountName")
        endpoint = environ.get("AzureWebJobsStorage__tableServiceUri")
        if account or endpoint:
            # Imported here because azure.identity is slow to import and local runs never need it.
            from azure.identity import DefaultAzureCredential


            endpoint = endpoint or f"https://{account}.table.core.windows.net"
            service = TableServiceClient(endpoint, credential=DefaultAzureCredential(), **client_options)
        elif environ.get("AzureWebJobsStorage"):
            service = TableServiceClient.from_connection_string(environ["AzureWebJobsStorage"], **client_options)
        else:

            raise SettingsError(
                "AzureWebJobsStorage__accountName",
                "is missing, and CERTRENEW_JOURNAL is 'table'. Set it to the function app's storage account",
            )
        return cls(service.create_table_if_not_exists(table_name))

    def read(self, vault: str, key: str) -> tuple[dict[str, Any], str] | None:

        try:
            entity = self._call(lambda: self._table.get_entity(vault.lower(), key))
        except ResourceNotFoundError:
            return None
        return json.loads(entity["fields"]), entity.metadata["etag"]

    def insert(self, vault: str, key: str, fields: dict[str, Any]) -> bool:

        try:
            self._call(lambda: self._table.create_entity(self._entity(vault, key, fields)))
        except ResourceExistsError:
            return False
        return True

    def replace(self, vault: str, key: str, fields: dict[str, Any], etag: str) -> bool:

        try:
            self._call(
                lambda: self._table.update_entity(
                    self._entity(vault, key, fields),
                    mode=UpdateMode.REPLACE,
                    etag=etag,
                    match_condition=MatchConditions.IfNotModified,
                )
            )
        except (ResourceModifiedError, ResourceNotFoundError):
            return False
        return True

    def merge(self, vault: str, key: str, fields: dict[str, Any]) -> None:
        for _ in range(10):
            current = self.read(vault, key)
            if current is None:
                if self.insert(vault, key, fields):
                    return
                continue
            if self.replace(vault, key, {**current[0], **fields}, current[1]):
                return
        raise JournalUnavailable(f"Journal entry {key} of vault {vault} kept changing; try again.")

    def entries(self, prefix: str, states: tuple[str, ...] = ()) -> Iterator[tuple[str, str, dict[str, Any]]]:
        query = "RowKey ge @low and RowKey lt @high"
        parameters: dict[str, Any] = {"low": prefix, "high": prefix + "\uffff"}
        if states:
            names = [f"s{index}" for index in range(len(states))]
            # The SDK substitutes parameters in whitespace-separated words, so the brackets stand apart.
            query += " and ( " + " or ".join(f"state eq @{name}" for name in names) + " )"
            parameters.update(zip(names, states))
        for entity in self._call(lambda: list(self._table.query_entities(query, parameters=parameters))):
            yield entity["PartitionKey"], entity["RowKey"], json.loads(entity["fields"])

    def append_history(self, vault: str, certificate: str, action: str, detail: str, at: datetime) -> None:
        inverted = 10**13 - int(at.timestamp() * 1000)
        key = f"history~{certificate.lower()}~{inverted:013d}~{uuid.uuid4().hex[:8]}"
        record = {"certificate": certificate, "action": action, "detail": detail, "at": at.isoformat()}
        self._call(lambda: self._table.create_entity(self._entity(vault, key, record)))

    def history(self, vault: str | None = None, certificate: str | None = None, limit: int = 100) -> list[dict]:
        prefix = f"history~{certificate.lower()}~" if certificate else "history~"
        query = "RowKey ge @low and RowKey lt @high"
        parameters: dict[str, Any] = {"low": prefix, "high": prefix + "\uffff"}
        if vault:
            query += " and PartitionKey eq @vault"
            parameters["vault"] = vault.lower()
        rows = [
            {"vault": entity["PartitionKey"], **json.loads(entity["fields"])}
            for entity in self._call(lambda: list(self._table.query_entities(query, parameters=parameters)))
        ]
        rows.sort(key=lambda row: row["at"], reverse=True)
        return [
            {key: row.get(key) for key in ("vault", "certificate", "action", "detail", "at")} for row in rows[:limit]
        ]

    @staticmethod
    def _entity(vault: str, key: str, fields: dict[str, Any]) -> dict[str, Any]:
        return {"PartitionKey": vault.lower(), "RowKey": key, "state": fields.get("state") or "", "fields": json.dumps(fields)}

    @staticmethod
    def _call(call: Any) -> Any:

        try:
            return call()
        except HttpResponseError as exc:
            if exc.status_code is not None and exc.status_code < 500 and exc.status_code != 429:
                raise
            raise JournalUnavailable(f"Table Storage failed: {exc.message}") from exc
        except ServiceRequestError as exc:
            raise JournalUnavailable(f"No response from Table Storage: {exc}") from exc


class DryRunJournal(Journal):
    """A journal that reads the real one and keeps every write in memory, so a dry run changes nothing.

    Writes must still succeed and be read back, because the service's claims compare what it wrote.
    """

    def __init__(self, base: Journal) -> None:
        self.base = base
        self.overlay = SqliteJournal(":memory:")

    def read(self, vault: str, key: str) -> tuple[dict[str, Any], str] | None:
        return self.overlay.read(vault, key) or self.base.read(vault, key)

    def insert(self, vault: str, key: str, fields: dict[str, Any]) -> bool:
        if self.base.read(vault, key) is not None:
            return False
        return self.overlay.insert(vault, key, fields)

    def replace(self, vault: str, key: str, fields: dict[str, Any], etag: str) -> bool:
        if self.overlay.read(vault, key) is None:
            current = self.base.read(vault, key)
            if current is None or current[1] != etag:
                return False
            self.overlay.merge(vault, key, current[0])
            etag = self.overlay.read(vault, key)[1]
        return self.overlay.replace(vault, key, fields, etag)

    def merge(self, vault: str, key: str, fields: dict[str, Any]) -> None:
        if self.overlay.read(vault, key) is None:
            current = self.base.read(vault, key)
            if current is not None:
                self.overlay.merge(vault, key, current[0])
        self.overlay.merge(vault, key, fields)

    def entries(self, prefix: str, states: tuple[str, ...] = ()) -> Iterator[tuple[str, str, dict[str, Any]]]:
        written = {(vault, key) for vault, key, _ in self.overlay.entries(prefix)}
        yield from self.overlay.entries(prefix, states)
        for vault, key, fields in self.base.entries(prefix, states):
            if (vault, key) not in written:
                yield vault, key, fields

    def append_history(self, vault: str, certificate: str, action: str, detail: str, at: datetime) -> None:
        self.overlay.append_history(vault, certificate, action, detail, at)

    def history(self, vault: str | None = None, certificate: str | None = None, limit: int = 100) -> list[dict]:
        return self.base.history(vault, certificate, limit)
