"""Key Vault's naming rules, checked before any name from an event or a user reaches a URL."""

from __future__ import annotations

import re

# Vault names: 3 to 24 characters of letters, digits and hyphens, starting with a letter, not ending with a
# hyphen, and without two hyphens in a row (Key Vault's documented naming rule).
VAULT_NAME_PATTERN = re.compile(r"(?!.*--)[A-Za-z][A-Za-z0-9-]{1,22}[A-Za-z0-9]")

# Object names (certificates, issuers): 1 to 127 letters, digits and hyphens.
OBJECT_NAME_PATTERN = re.compile(r"[0-9A-Za-z-]{1,127}")

# Versions are 32 hexadecimal digits in Key Vault. The emulator uses the same form.
VERSION_PATTERN = re.compile(r"[0-9A-Fa-f]{32}")


def is_vault_name(value: object) -> bool:
    """Return True if value is a string that Key Vault accepts as a vault name."""
    return isinstance(value, str) and VAULT_NAME_PATTERN.fullmatch(value) is not None


def is_object_name(value: object) -> bool:
    """Return True if value is a string that Key Vault accepts as a certificate or issuer name."""
    return isinstance(value, str) and OBJECT_NAME_PATTERN.fullmatch(value) is not None


def is_version(value: object) -> bool:
    """Return True if value is a string shaped like a Key Vault object version."""
    return isinstance(value, str) and VERSION_PATTERN.fullmatch(value) is not None
