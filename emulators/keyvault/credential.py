"""Token credentials for talking to the emulator, which accepts any bearer token."""

from __future__ import annotations

import time
from typing import Any

from azure.core.credentials import AccessToken, AccessTokenInfo

DEFAULT_TOKEN = "emulator-token"
# Lifetime of the tokens handed out, in real seconds. The SDK requests a new token five minutes before expiry.
TOKEN_LIFETIME_SECONDS = 3600


class EmulatorCredential:
    """Synchronous credential that returns a fixed bearer token, because the emulator cannot reach Entra ID."""

    def __init__(self, token: str = DEFAULT_TOKEN) -> None:
        self._token = token

    def get_token(self, *scopes: str, claims: str | None = None, tenant_id: str | None = None,
                  enable_cae: bool = False, **kwargs: Any) -> AccessToken:
        """Return the fixed token, valid for an hour of real time."""
        return AccessToken(self._token, int(time.time()) + TOKEN_LIFETIME_SECONDS)

    def get_token_info(self, *scopes: str, options: dict | None = None) -> AccessTokenInfo:
        """Return the fixed token, valid for an hour of real time."""
        return AccessTokenInfo(self._token, int(time.time()) + TOKEN_LIFETIME_SECONDS)

    def close(self) -> None:
        """Release nothing; present for the credential protocol."""

    def __enter__(self) -> "EmulatorCredential":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class AsyncEmulatorCredential:
    """Asynchronous variant of EmulatorCredential, for the azure.keyvault.certificates.aio clients."""

    def __init__(self, token: str = DEFAULT_TOKEN) -> None:
        self._token = token

    async def get_token(self, *scopes: str, claims: str | None = None, tenant_id: str | None = None,
                        enable_cae: bool = False, **kwargs: Any) -> AccessToken:
        """Return the fixed token, valid for an hour of real time."""
        return AccessToken(self._token, int(time.time()) + TOKEN_LIFETIME_SECONDS)

    async def get_token_info(self, *scopes: str, options: dict | None = None) -> AccessTokenInfo:
        """Return the fixed token, valid for an hour of real time."""
        return AccessTokenInfo(self._token, int(time.time()) + TOKEN_LIFETIME_SECONDS)

    async def close(self) -> None:
        """Release nothing; present for the credential protocol."""

    async def __aenter__(self) -> "AsyncEmulatorCredential":
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()
