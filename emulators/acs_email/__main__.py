"""Command line: ``python -m emulators.acs_email [--port N] [--outbox DIR]`` serves until Ctrl-C."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import threading

from emulators.acs_email.server import DEFAULT_SENDERS, AcsEmailEmulator


def main(argv: list[str] | None = None) -> int:
    """Start the emulator, print how to reach it, and serve until interrupted."""
    arguments = _parse_arguments(argv)
    logging.basicConfig(level=logging.DEBUG if arguments.verbose else logging.INFO, format="%(asctime)s %(levelname)s %(message)s")

    emulator = AcsEmailEmulator(
        outbox_dir=os.path.abspath(arguments.outbox),
        access_key=arguments.access_key,
        allowed_senders=tuple(arguments.sender or DEFAULT_SENDERS),
        polls_until_done=arguments.polls_until_done,
        port=arguments.port,
    )
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    with emulator:
        print(_summary(emulator), flush=True)
        try:
            stopped.wait()
        except KeyboardInterrupt:
            pass
    return 0


def _parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m emulators.acs_email",
        description="Local Azure Communication Services Email emulator on https://127.0.0.1.",
    )
    parser.add_argument("--port", type=int, default=None, help="TCP port to listen on (default: a free port).")
    parser.add_argument("--outbox", default="outbox", help="Folder for the .eml and .html files (default: ./outbox).")
    parser.add_argument(
        "--sender", action="append", metavar="ADDRESS",
        help=f"Allowed sender address; repeat for more (default: {DEFAULT_SENDERS[0]}).",
    )
    parser.add_argument("--access-key", default=None, help="Base64 access key of the connection string (default: random).")
    parser.add_argument(
        "--polls-until-done", type=int, default=1,
        help="Status polls that return Running before Succeeded (default: 1).",
    )
    parser.add_argument("--verbose", action="store_true", help="Log every request.")
    return parser.parse_args(argv)


def _summary(emulator: AcsEmailEmulator) -> str:
    return "\n".join(
        [
            "ACS Email emulator is running. Press Ctrl-C to stop.",
            f"  endpoint:          {emulator.endpoint}",
            f"  connection string: {emulator.connection_string}",
            f"  CA bundle:         {emulator.ca_bundle}",
            f"  outbox:            {emulator.outbox_dir}",
            f"  allowed senders:   {', '.join(emulator.allowed_senders)}",
            "Settings for the function app:",
            f"  CERTRENEW_ACS_ENDPOINT={emulator.endpoint}",
            f"  CERTRENEW_EMAIL_SENDER={emulator.allowed_senders[0]}",
            "Clients must trust the CA bundle: EmailClient(..., connection_verify=<CA bundle>).",
            "Control API: POST /_emulator/faults, GET /_emulator/messages, GET /_emulator/requests, POST /_emulator/reset.",
        ]
    )


if __name__ == "__main__":
    raise SystemExit(main())
