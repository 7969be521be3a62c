"""certrenew status and history: what state the certificates are in, and what the app did to them."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime

from shared import status as states
from shared.cli.common import (
    EXIT_CODES_HELP,
    EXIT_CRITICAL,
    EXIT_OK,
    EXIT_WARNING,
    HelpFormatter,
    check_certificate_name,
    load_runtime,
    resolve_vaults,
    vault_option,
)
from shared.cli.output import Progress, Style, render_table
from shared.keyvault import OTHER_CA
from shared.status import CertificateStatus, collect_status, exit_severity

STATUS_EPILOG = f"""\
examples:
  certrenew status
  certrenew status --vault contoso-certs --due
  certrenew status --json | jq '.certificates[] | select(.severity != "ok")'

states, most urgent first: expired, failed, cancelled, no-certificate, csr-waiting, due, renewing,
autorenew (Key Vault renews it by itself), ok, off (tag certrenew-mode=off), disabled.

requests per vault: one list request per 25 certificates, one policy read per certificate shown, one issuer
read per integrated-CA issuer, and for each certificate with a pending version or an open renewal one
operation read (plus one version list request per 25 versions when the version in use must be found).

{EXIT_CODES_HELP}"""

HISTORY_EPILOG = """\
examples:
  certrenew history
  certrenew history --vault contoso-certs web-frontend --limit 5

The history is the journal that CERTRENEW_JOURNAL names. Point it at the function app's journal
(CERTRENEW_JOURNAL=table and AzureWebJobsStorage__accountName) to see what the deployed app did.
"""

SEVERITY_COLOURS = {"critical": "red", "warning": "yellow", "ok": None}
STATE_COLOURS = {states.OK: "green", states.OFF: "dim", states.DISABLED: "dim"}


def register(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Add the status and history commands."""
    status = commands.add_parser(
        "status",
        parents=[common],
        help="Show every certificate, most urgent first.",
        description="Show every certificate of the configured vaults (or one vault), most urgent first: kind, "
        "mode, expiry, pending operation and the app's last action.",
        epilog=STATUS_EPILOG,
        formatter_class=HelpFormatter,
    )
    vault_option(status, all_by_default=True)
    status.add_argument("--due", action="store_true", help="Show only certificates in their renewal window, "
                        "expired, or with a version still pending.")
    status.add_argument("--json", action="store_true", help="Print JSON for scripts instead of a table.")
    status.add_argument("--color", choices=("auto", "always", "never"), default="auto",
                        help="Colour the table: auto colours a terminal unless NO_COLOR is set (default: auto).")
    status.set_defaults(run=run_status)

    history = commands.add_parser(
        "history",
        parents=[common],
        help="Show what the app did and when, newest first.",
        description="Show the app's actions from the journal, newest first: renewals started, renewed, failed, "
        "cancelled, merged, and notices about expiry.",
        epilog=HISTORY_EPILOG,
        formatter_class=HelpFormatter,
    )
    history.add_argument("name", nargs="?", metavar="NAME", help="Only this certificate.")
    vault_option(history, all_by_default=True)
    history.add_argument("--limit", type=int, default=50, help="Number of entries to show (default: 50).")
    history.add_argument("--json", action="store_true", help="Print JSON for scripts instead of a table.")
    history.set_defaults(run=run_history)


def run_status(args: argparse.Namespace) -> int:
    runtime = load_runtime()
    vaults = resolve_vaults(runtime, args.vault)
    service = runtime.service()
    progress = Progress()

    rows: list[CertificateStatus] = []
    try:
        for vault in vaults:
            label = f"Reading vault {vault.name}"
            rows.extend(
                collect_status(service, vault, args.due, lambda done, total: progress.update(label, done, total))
            )
    finally:
        progress.clear()
    rows.sort(key=CertificateStatus.sort_key)

    severity = exit_severity(rows)
    exit_code = {"critical": EXIT_CRITICAL, "warning": EXIT_WARNING}.get(severity, EXIT_OK)
    if args.json:
        document = {
            "generated_at": _iso(runtime.clock()),
            "vaults": [vault.name for vault in vaults],
            "severity": severity,
            "exit_code": exit_code,
            "certificates": [row.to_json() for row in rows],
        }
        print(json.dumps(document, indent=2))
    else:
        print(_status_table(rows, len(vaults) > 1, Style(sys.stdout, args.color)))
    return exit_code


def run_history(args: argparse.Namespace) -> int:
    runtime = load_runtime()
    vault_name = resolve_vaults(runtime, args.vault)[0].name if args.vault else None
    name = check_certificate_name(args.name) if args.name else None
    entries = runtime.journal.history(vault_name, name, limit=max(1, args.limit))

    if args.json:
        print(json.dumps(entries, indent=2))
    elif not entries:
        print("The journal has no entries" + (f" for {name}." if name else "."))
    else:
        rows = [[_short_time(entry["at"]), entry["vault"], entry["certificate"], entry["action"], entry["detail"]]
                for entry in entries]
        print(render_table(["WHEN (UTC)", "VAULT", "CERTIFICATE", "ACTION", "DETAIL"], rows, Style(sys.stdout, "never")))
    return EXIT_OK


def _status_table(rows: list[CertificateStatus], show_vault: bool, style: Style) -> str:
    if not rows:
        return "No certificates."
    headers = ["NAME", "KIND", "MODE", "EXPIRES", "DAYS", "STATE", "OPERATION", "LAST ACTION"]
    if show_vault:
        headers.insert(0, "VAULT")
    cells, colours = [], []
    for row in rows:
        line = [
            row.name,
            row.kind or "-",
            row.mode or "-",
            f"{row.expires_on:%Y-%m-%d}" if row.expires_on else "-",
            str(row.days_left) if row.days_left is not None else "-",
            row.state,
            _operation_cell(row),
            _last_action_cell(row),
        ]
        state_colour = SEVERITY_COLOURS[row.severity] or STATE_COLOURS.get(row.state)
        line_colours = [None, None, None, None, state_colour, state_colour, None, None]
        if show_vault:
            line.insert(0, row.vault)
            line_colours.insert(0, None)
        cells.append(line)
        colours.append(line_colours)
    return render_table(headers, cells, style, colours)


def _operation_cell(row: CertificateStatus) -> str:
    operation = row.operation
    if operation is None:
        return "-"
    text = operation.status
    if operation.error_code:
        text += f" ({operation.error_code})"
    elif operation.in_progress and row.kind == OTHER_CA:
        text += " (CSR waiting)"
    return text


def _last_action_cell(row: CertificateStatus) -> str:
    if not row.last_action:
        return "-"
    return f"{row.last_action['action']} {_short_time(row.last_action['at'])}"


def _short_time(value: str) -> str:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).strftime("%Y-%m-%d %H:%M")


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")
