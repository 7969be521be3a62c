"""Local Azure Communication Services Email emulator that the real ``EmailClient`` talks to over HTTPS."""

from emulators.acs_email.server import DEFAULT_SENDERS, AcsEmailEmulator

__all__ = ["AcsEmailEmulator", "DEFAULT_SENDERS"]
