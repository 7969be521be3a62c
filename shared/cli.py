"""certrenew: the operator's command line. It runs the same code as the functions, by hand.

It reads the same settings as the function app from the environment (CERTRENEW_VAULTS at least) and signs in
with DefaultAzureCredential, so `az login` is enough against real vaults.
"""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import replace
from pathlib import Path
from typing import Sequence

from shared.errors import CertRenewError, RejectedEvent
from shared.events import SUBSCRIPTIONS, load_event_file
from shared.handlers import handle_event_dicts
from shared.renewal import Outcome
from shared.runtime import Runtime, get_runtime

logger = logging.getLogger("certrenew")

# Exit codes, for scripts and monitoring.
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_REJECTED = 3


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return its exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING
    if args.verbose:
        level = logging.INFO
    if args.debug:
        level = logging.DEBUG
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    if not args.debug:
        # The SDK logs every request at INFO; the operator wants the decisions.
        logging.getLogger("azure").setLevel(logging.WARNING)
    try:
        return args.run(args)
    except CertRenewError as exc:
        if args.debug:
            raise
        print(f"certrenew: {exc}", file=sys.stderr)
        return EXIT_FAILED


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="certrenew",
        description="Renew Azure Key Vault certificates by hand, with the same code as the function app.",
        epilog="Settings come from the environment, as in the function app: CERTRENEW_VAULTS names the vaults.",
    )
    parser.add_argument("--verbose", "-v", action="store_true", help="Log each decision and action.")
    parser.add_argument("--debug", action="store_true", help="Log every request and show tracebacks.")
    commands = parser.add_subparsers(title="commands", required=True, metavar="COMMAND")

    replay = commands.add_parser(
        "replay",
        help="Run an Event Grid event file through the same code as the function.",
        description="Run the events in a file (one event or an array, Event Grid schema or CloudEvents) through "
        "the same code as the Event Grid functions, against the configured vaults.",
        epilog="Example: certrenew replay near-expiry.eventgrid.json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
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
        help="Do what the timer does: check open operations and renew what is due.",
        description="Check certificate operations that are still running, then list every configured vault "
        "and act on the certificates that are due.",
        epilog="Example: certrenew sweep --dry-run",
    )
    sweep.add_argument("--dry-run", action="store_true", help="Print what would be done and change nothing.")
    sweep.set_defaults(run=run_sweep)
    return parser


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
        runtime.settings = replace(runtime.settings, dry_run=True)
    report = runtime.service().sweep()
    print_outcome(report)
    print(f"listed {report.listed} certificates, {report.due} due, {len(report.notices)} notices")
    return EXIT_OK


def load_runtime() -> Runtime:
    """Return the runtime built from the environment's settings (or the one a test or the demo set)."""
    return get_runtime()


def print_outcome(outcome: Outcome) -> None:
    for vault, certificate, decision in outcome.decisions:
        print(f"{decision.action:<18} {vault}/{certificate}: {decision.reason}")
    for notice in outcome.notices:
        print(f"notice {notice.kind:<18} {notice.vault_name}/{notice.certificate.name}: {notice.summary}")


if __name__ == "__main__":
    sys.exit(main())
