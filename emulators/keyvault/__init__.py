"""Local emulator of the Azure Key Vault certificates data plane, for tests, the demo and benchmarks.

It serves each vault over HTTPS on its own 127.0.0.1 port, so the unchanged azure-keyvault-certificates
SDK talks to it. It is never deployed with the function app.
"""

from emulators.keyvault.credential import AsyncEmulatorCredential, EmulatorCredential
from emulators.keyvault.emulator import KeyVaultEmulator

__all__ = ["AsyncEmulatorCredential", "EmulatorCredential", "KeyVaultEmulator"]
