"""The state of every certificate in a vault, read with few Key Vault requests.

One list request per 25 certificates gives each certificate's expiry, enabled flag and tags. The policy, which
gives the kind, is read only for the certificates that are shown, and each issuer once per issuer name. The
pending operation is read only where the list or the journal shows one: a listed version without an expiry, or
an open renewal in the journal.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable, Iterable

from shared.decision import AUTORENEW_GRACE, MODE_TAG, due_time, effective_mode
from shared.keyvault import OTHER_CA, CertificateView, OperationView, PolicyView, call_keyvault
from shared.renewal import RenewalService
from shared.settings import VaultConfig

logger = logging.getLogger(__name__)

# Policies and operations are read in parallel. Eight at a time stays far below Key Vault's limit of about
# 4,000 requests per vault per 10 seconds.
MAX_PARALLEL_READS = 8

# States, most urgent first. The table and the JSON sort by this order, then by expiry.
EXPIRED = "expired"
FAILED = "failed"
CANCELLED = "cancelled"
NO_CERTIFICATE = "no-certificate"
CSR_WAITING = "csr-waiting"
DUE = "due"
RENEWING = "renewing"
AUTORENEW = "autorenew"
OK = "ok"
OFF = "off"
DISABLED = "disabled"
STATE_ORDER = (EXPIRED, FAILED, CANCELLED, NO_CERTIFICATE, CSR_WAITING, DUE, RENEWING, AUTORENEW, OK, OFF, DISABLED)

# Severity of each state for monitoring: critical (expired, or the renewal failed) or warning (a person should act).
CRITICAL_STATES = (EXPIRED, FAILED)
WARNING_STATES = (CANCELLED, NO_CERTIFICATE, CSR_WAITING, DUE)


@dataclass
class CertificateStatus:
    """One certificate as an operator sees it: the version in use, its renewal, and the app's last action."""

    vault: str
    name: str
    enabled: bool
    expires_on: datetime | None
    not_before: datetime | None
    tags: dict[str, str]
    kind: str | None = None
    issuer: str | None = None
    mode: str | None = None
    days_left: int | None = None
    due_on: datetime | None = None
    operation: OperationView | None = None
    last_action: dict[str, Any] | None = None
    state: str = OK
    # True when the list showed a version that is not complete, so the operation had to be read.
    pending_version: bool = False
    warnings: list[str] = field(default_factory=list)

    @property
    def severity(self) -> str:
        """`critical`, `warning` or `ok`. Disabled certificates and those with mode off are always ok."""
        if self.state in CRITICAL_STATES and self.mode != "off":
            return "critical"
        if self.state in WARNING_STATES and self.mode != "off":
            return "warning"
        return "ok"

    def sort_key(self) -> tuple:
        expires = self.expires_on.timestamp() if self.expires_on else float("inf")
        return (STATE_ORDER.index(self.state), expires, self.vault, self.name)

    def to_json(self) -> dict[str, Any]:
        """Return the fields for `status --json`, with times as ISO 8601 UTC."""
        operation = None
        if self.operation is not None:
            operation = {
                "status": self.operation.status,
                "issuer": self.operation.issuer_name,
                "cancellation_requested": self.operation.cancellation_requested,
                "error_code": self.operation.error_code,
                "error_message": self.operation.error_message,
            }
        return {
            "vault": self.vault,
            "name": self.name,
            "state": self.state,
            "severity": self.severity,
            "kind": self.kind,
            "issuer": self.issuer,
            "mode": self.mode,
            "enabled": self.enabled,
            "expires_on": _iso(self.expires_on),
            "days_left": self.days_left,
            "due_on": _iso(self.due_on),
            "operation": operation,
            "last_action": self.last_action,
            "warnings": self.warnings,
        }


def collect_status(
    service: RenewalService,
    vault: VaultConfig,
    due_only: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> list[CertificateStatus]:
    """Return the status of every certificate in a vault (only the due ones with due_only), most urgent first.

    progress(done, total) is called as the list pages arrive (total 0 while unknown) and as each detail read ends.
    """
    now = service.clock()
    window = service.settings.renewal_window_days
    rows = []
    for properties in service.vaults.list_certificates(vault, include_pending=True):
        row = _from_list_item(vault, properties, now, window)
        if not due_only or row.expires_on is None or (row.due_on is not None and now >= row.due_on):
            rows.append(row)
        if progress:
            progress(len(rows), 0)

    done = 0
    with ThreadPoolExecutor(max_workers=MAX_PARALLEL_READS) as pool:
        for _ in pool.map(lambda row: _complete(service, vault, row, now), rows):
            done += 1
            if progress:
                progress(done, len(rows))

    if due_only:
        rows = [row for row in rows if row.expires_on is None or (row.due_on is not None and now >= row.due_on)]
    return sorted(rows, key=CertificateStatus.sort_key)


def exit_severity(rows: Iterable[CertificateStatus]) -> str:
    """Return the worst severity among the rows: critical, warning or ok."""
    severities = {row.severity for row in rows}
    for severity in ("critical", "warning"):
        if severity in severities:
            return severity
    return "ok"


def _from_list_item(vault: VaultConfig, properties: Any, now: datetime, window: int) -> CertificateStatus:
    row = CertificateStatus(
        vault=vault.name,
        name=properties.name,
        enabled=bool(properties.enabled) if properties.enabled is not None else True,
        expires_on=properties.expires_on,
        not_before=properties.not_before,
        tags=dict(properties.tags or {}),
    )
    if row.expires_on is None:
        # The newest version has no certificate yet: an operation is pending, failed or was cancelled. Its
        # enabled flag is the pending version's, so the newest completed version's is read later.
        row.pending_version = True
        row.enabled = True
    else:
        _set_dates(row, now, window)
    return row


def _complete(service: RenewalService, vault: VaultConfig, row: CertificateStatus, now: datetime) -> None:
    """Read what the list does not carry (policy, operation, the version in use) and the journal's last action."""
    policy = service.vaults.get_policy(vault, row.name)
    row.issuer = policy.issuer_name if policy else None
    row.kind = service.vaults.certificate_kind(vault, policy)
    row.mode, warning = effective_mode(row.tags, row.kind, service.settings.default_modes)
    if warning:
        row.warnings.append(warning)

    if row.pending_version or service.open_renewal(vault, row.name) is not None:
        row.operation = service.vaults.get_operation(vault, row.name)
    if row.pending_version:
        _use_newest_completed(service, vault, row, now)

    history = service.journal.history(vault.name, row.name, limit=1)
    if history:
        row.last_action = history[0]
    row.state = _state(row, policy, now)


def _use_newest_completed(service: RenewalService, vault: VaultConfig, row: CertificateStatus, now: datetime) -> None:
    """Take the expiry, enabled flag and tags from the newest version that has a certificate."""
    client = service.vaults.client(vault)
    versions = call_keyvault(
        lambda: list(client.list_properties_of_certificate_versions(row.name, max_page_size=25)),
        f"versions of certificate {row.name} in vault {vault.name}",
    )
    completed = [item for item in versions if item.expires_on is not None and item.created_on is not None]
    if not completed:
        return
    newest = max(completed, key=lambda item: item.created_on)
    row.expires_on, row.not_before = newest.expires_on, newest.not_before
    row.enabled = bool(newest.enabled)
    row.tags = dict(newest.tags or {})
    row.mode, _ = effective_mode(row.tags, row.kind or OTHER_CA, service.settings.default_modes)
    _set_dates(row, now, service.settings.renewal_window_days)


def _set_dates(row: CertificateStatus, now: datetime, window: int) -> None:
    view = CertificateView(
        name=row.name, certificate_id="", version="", enabled=row.enabled, not_before=row.not_before,
        expires_on=row.expires_on, created_on=None, thumbprint=None, subject=None, dns_names=(), tags=row.tags,
        policy=None,
    )
    row.due_on = due_time(view, window)
    if row.expires_on is not None:
        row.days_left = int((row.expires_on - now).total_seconds() // 86400)


def _state(row: CertificateStatus, policy: PolicyView | None, now: datetime) -> str:
    operation_status = row.operation.status.lower() if row.operation else ""
    if not row.enabled:
        return DISABLED
    if row.expires_on is not None and now >= row.expires_on:
        return EXPIRED
    if operation_status == "failed":
        return FAILED
    if operation_status == "cancelled":
        return CANCELLED
    if row.operation is not None and row.operation.in_progress:
        return CSR_WAITING if row.kind == OTHER_CA else RENEWING
    if row.expires_on is None:
        return NO_CERTIFICATE
    if str(row.tags.get(MODE_TAG, "")).strip().lower() == "off":
        return OFF
    if row.due_on is not None and now >= row.due_on:
        return AUTORENEW if _autorenew_pending(row, policy, now) else DUE
    return OK


def _autorenew_pending(row: CertificateStatus, policy: PolicyView | None, now: datetime) -> bool:
    """True when Key Vault's own AutoRenew will renew the certificate, by the same rule as the renewal decision."""
    action = policy.lifetime_action if policy else None
    if row.kind == OTHER_CA or policy is None or not policy.auto_renews or action is None or row.expires_on is None:
        return False
    trigger = action.trigger_time(row.not_before or row.expires_on, row.expires_on)
    return now < trigger + AUTORENEW_GRACE


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment else None

