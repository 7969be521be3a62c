"""The command that people start by hand: python -m emulators.keyvault."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from azure.keyvault.certificates import CertificateClient

from emulators.keyvault import EmulatorCredential

REPOSITORY = Path(__file__).resolve().parents[2]


def test_command_seeds_and_prints_settings():
    # GIVEN the emulator started by hand with two vaults and --seed
    process = subprocess.Popen(
        [sys.executable, "-m", "emulators.keyvault", "--vault", "contoso-certs", "--vault", "fabrikam-certs", "--seed"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=REPOSITORY,
    )
    try:
        lines = []
        for line in process.stdout:
            lines.append(line.rstrip("\n"))
            if line.startswith("Press Ctrl-C"):
                break
        settings = dict(line.strip().split("=", 1) for line in lines if line.strip().startswith("CERTRENEW_"))

        # WHEN a client follows the printed settings
        vaults = dict(pair.split("=", 1) for pair in settings["CERTRENEW_VAULTS"].split(","))
        client = CertificateClient(
            vaults["fabrikam-certs"], EmulatorCredential(), connection_verify=settings["CERTRENEW_KEYVAULT_CA_BUNDLE"],
            verify_challenge_resource=False,
        )
        names = {c.name for c in client.list_properties_of_certificates(include_pending=True)}
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=10)

    # THEN it reaches the seeded vault, which contains one certificate per kind
    assert set(vaults) == {"contoso-certs", "fabrikam-certs"}
    assert names == {"self-signed", "external-ca", "integrated-ca", "imported"}
    assert process.returncode == 0


def test_command_stopped_by_sigterm_removes_its_tls_files():
    process = subprocess.Popen(
        [sys.executable, "-m", "emulators.keyvault", "--vault", "contoso-certs"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=REPOSITORY,
    )
    try:
        bundle = None
        for line in process.stdout:
            if line.strip().startswith("CERTRENEW_KEYVAULT_CA_BUNDLE="):
                bundle = Path(line.strip().split("=", 1)[1])
            if line.startswith("Press Ctrl-C"):
                break
        assert bundle is not None and bundle.exists()
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=10)

    assert process.returncode == 0
    assert not bundle.parent.exists()
