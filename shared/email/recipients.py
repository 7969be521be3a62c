"""Recipients of a notice: the vault's certificate contacts, the certificate's owners and the configured addresses.

Addresses never appear in logs. A dropped address is logged by its source and position, which is enough to find
it in the vault's contacts, the certificate's tag or the app setting.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Iterable, Sequence

from shared.settings import is_valid_email_address

logger = logging.getLogger(__name__)

# ACS accepts at most 50 addresses in to, cc and bcc together in one message.
MAX_RECIPIENTS_PER_MESSAGE = 50
# Display names go into the To header that ACS writes. Control characters and the characters that delimit an
# address in that header are removed, and long names are cut.
_UNSAFE_DISPLAY_NAME = re.compile(r'[\x00-\x1f\x7f<>"\\]+')
MAX_DISPLAY_NAME_LENGTH = 100

CONTACT = "certificate contact"
OWNER = "tag certrenew-owners"
CONFIGURED = "CERTRENEW_EMAIL_RECIPIENTS"
FALLBACK = "CERTRENEW_EMAIL_FALLBACK"


@dataclass(frozen=True)
class Recipient:
    """One address a notice goes to, with the display name from the vault's contacts and where it came from."""

    address: str
    display_name: str = ""
    source: str = CONFIGURED

    def to_acs(self) -> dict[str, str]:
        """Return the `{address, displayName}` object of the ACS send request."""
        entry = {"address": self.address}
        if self.display_name:
            entry["displayName"] = self.display_name
        return entry


@dataclass(frozen=True)
class Contact:
    """A certificate contact of the vault (Key Vault's `CertificateContact`): address and optional name."""

    email: str | None
    name: str | None = None


def resolve_recipients(
    contacts: Iterable[Contact], owners: Iterable[str], configured: Iterable[str], fallback: str, ids: str
) -> list[Recipient]:
    """Return the recipients of a notice: contacts, then owners, then configured addresses.

    Duplicates are removed ignoring case, and the first occurrence is kept. Invalid addresses are dropped with a
    warning. When no recipient is left, the fallback address is the only recipient, and an empty list means that no
    fallback is set either. `ids` names the notice in the log, for example `certificate=web vault=contoso-certs`.
    """
    candidates = [(contact.email, contact.name, CONTACT) for contact in contacts]
    candidates += [(owner, None, OWNER) for owner in owners]
    candidates += [(address, None, CONFIGURED) for address in configured]

    recipients: dict[str, Recipient] = {}
    for position, (address, name, source) in enumerate(candidates, start=1):
        cleaned = (address or "").strip()
        if not is_valid_email_address(cleaned):
            logger.warning("%s: dropped invalid address number %d (from %s)", ids, position, source)
            continue
        recipients.setdefault(cleaned.lower(), Recipient(cleaned, clean_display_name(name), source))

    if not recipients and fallback:
        logger.warning("%s: no recipient is left, so the notice goes to the fallback address", ids)
        return [Recipient(fallback, "", FALLBACK)]
    return list(recipients.values())


def split_into_messages(
    recipients: Sequence[Recipient], size: int = MAX_RECIPIENTS_PER_MESSAGE
) -> list[list[Recipient]]:
    """Split recipients into groups of at most `size`, one message each, in order."""
    return [list(recipients[start : start + size]) for start in range(0, len(recipients), size)]


def clean_display_name(name: str | None) -> str:
    """Return a display name safe for a header: no line breaks, quotes or angle brackets, at most 100 characters."""
    cleaned = " ".join(_UNSAFE_DISPLAY_NAME.sub(" ", name or "").split())
    return cleaned[:MAX_DISPLAY_NAME_LENGTH]
