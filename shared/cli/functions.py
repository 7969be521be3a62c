"""certrenew replay and sweep: the Event Grid functions' and the timer's code, run by hand."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from shared import decision as decisions
from shared.cli.common import EXIT_CODES_HELP, EXIT_OK, EXIT_REJECTED, EXIT_USAGE, HelpFormatter, load_runtime
from shared.errors import RejectedEvent
from shared.events import SUBSCRIPTIONS, load_event_file
from shared.handlers import handle_event_dicts
from shared.journal import DryRunJournal
from shared.outcome import Outcome


def register(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Add the replay and sweep commands."""
    replay = commands.add_parser(
        "replay",
        parents=[common],
        help="Run an Event Grid event file through the same code as the function.",
        description="Run the events in a file (one event or an array, Event Grid schema or CloudEvents) through "
        "the same code as the Event Grid functions, against the configured vaults.",
        epilog=f"example:\n  certrenew replay near-expiry.eventgrid.json\n\n{EXIT_CODES_HELP}",
        formatter_class=HelpFormatter,
    )
    replay.add_argument("event_file", metavar="EVENT.json", type=Path, help="File with the event or events.")
    replay.add_argument(
        "--function",
        choices=sorted(SUBSCRIPTIONS),
        help="Deliver as this function would receive them (default: by each event's type).",
    )
    replay.set_defaults(run=run_replay)

    sweep = commands.add_parser(
        "sweep",
        parents=[common],
        help="Do what the timer does: check open operations and renew what is due.",
        description="Check certificate operations that are still running, then list every configured vault "
        "and act on the certificates that are due.",
        epilog=f"example:\n  certrenew sweep --dry-run\n\n{EXIT_CODES_HELP}",
        formatter_class=HelpFormatter,
    )
    sweep.add_argument(
        "--dry-run", action="store_true",
        help="Print what would be done and change nothing: no Key Vault writes, no journal writes, no notices.",
    )
    sweep.set_defaults(run=run_sweep)


def run_replay(args: argparse.Namespace) -> int:
    try:
        text = args.event_file.read_text(encoding="utf-8")
    except OSError as exc:
        print(f"certrenew: cannot read {args.event_file}: {exc.strerror}.", file=sys.stderr)
        return EXIT_USAGE
    try:
        events = load_event_file(text)
    except RejectedEvent as exc:
        print(f"certrenew: {args.event_file}: {exc.reason}", file=sys.stderr)
        return EXIT_USAGE

    load_runtime()
    outcome, rejected = handle_event_dicts(events, args.function)
    print_outcome(outcome)
    for line in rejected:
        print(f"rejected  {line}")
    return EXIT_REJECTED if rejected else EXIT_OK


def run_sweep(args: argparse.Namespace) -> int:
    runtime = load_runtime()
    if args.dry_run:
        settings = dataclasses.replace(runtime.settings, dry_run=True, outbox_dir="")
        runtime = dataclasses.replace(runtime, settings=settings, journal=DryRunJournal(runtime.journal))
    report = runtime.service().sweep()
    print_outcome(report, dry_run=args.dry_run)
    print(f"listed {report.listed} certificates, {report.due} due, {len(report.notices)} notices"
          + (" (dry run: nothing was changed)" if args.dry_run else ""))
    return EXIT_OK


def print_outcome(outcome: Outcome, dry_run: bool = False) -> None:
    """Print one line per decision and per notice; in a dry run, say what would be done."""
    for vault, certificate, decision in outcome.decisions:
        action = decision.action
        if dry_run and action in (decisions.START, decisions.NOTIFY):
            action = f"would {action}"
        print(f"{action:<18} {vault}/{certificate}: {decision.reason}")
    for notice in outcome.notices:
        prefix = "would send notice" if dry_run else "notice"
        print(f"{prefix} {notice.kind:<18} {notice.vault_name}/{notice.certificate.name}: {notice.summary}")
