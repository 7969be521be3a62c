"""The Key Vault error that handlers raise and the server turns into `{"error": {...}}` bodies."""

from __future__ import annotations


class KeyVaultError(Exception):
    """An error response of the Key Vault REST API: HTTP status, error code and message."""

    def __init__(self, status: int, code: str, message: str, inner_code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.inner_code = inner_code

    def body(self) -> dict:
        """Return the JSON body that Key Vault sends with this error."""
        error: dict = {"code": self.code, "message": self.message}
        if self.inner_code:
            error["innererror"] = {"code": self.inner_code}
        return {"error": error}


def bad_parameter(message: str) -> KeyVaultError:
    """Return the 400 BadParameter error that Key Vault sends for invalid input."""
    return KeyVaultError(400, "BadParameter", message)


def certificate_not_found(name: str, version: str = "") -> KeyVaultError:
    """Return Key Vault's 404 for a certificate name or version that does not exist."""
    if version:
        message = f"A certificate with (name/id) {name}/{version} was not found in this key vault."
    else:
        message = f"A certificate with (name/id) {name} was not found in this key vault."
    message += " If you recently deleted this certificate you may be able to recover it using the correct recovery command."
    return KeyVaultError(404, "CertificateNotFound", message)
