"""Start Azurite (Table and Queue storage) over HTTPS on loopback, for tests and the demo."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from emulators.tls import create_loopback_tls

# Azurite's development account. The key is public, printed in Azurite's documentation, and works only there.
ACCOUNT = "devstoreaccount1"
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="

REPOSITORY = Path(__file__).resolve().parent.parent


@dataclass
class Azurite:
    """A running Azurite process serving Table and Queue storage over HTTPS on 127.0.0.1."""

    process: subprocess.Popen
    table_port: int
    queue_port: int
    ca_bundle: str
    workspace: str

    @property
    def connection_string(self) -> str:
        """Return the connection string of Azurite's development account on the HTTPS endpoints."""
        return (
            f"DefaultEndpointsProtocol=https;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};"
            f"TableEndpoint=https://127.0.0.1:{self.table_port}/{ACCOUNT};"
            f"QueueEndpoint=https://127.0.0.1:{self.queue_port}/{ACCOUNT};"
        )

    def stop(self) -> None:
        """Stop Azurite and remove its workspace. Its data is in memory only, so it is killed outright."""
        self.process.kill()
        self.process.wait(timeout=10)
        shutil.rmtree(self.workspace, ignore_errors=True)


def azurite_command() -> str:
    """Return the path of the azurite command that `make install` put in node_modules."""
    path = REPOSITORY / "node_modules" / ".bin" / "azurite"
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing. Run `make install`, which installs Azurite from npm.")
    return str(path)


def start_azurite(timeout: float = 30.0) -> Azurite:
    """Start Azurite on free loopback ports and wait until both services accept connections."""
    workspace = tempfile.mkdtemp(prefix="certrenew-azurite-")
    tls = create_loopback_tls(Path(workspace) / "tls", "certrenew Azurite")
    table_port, queue_port = _free_port(), _free_port()
    command = [
        azurite_command(), "--silent", "--inMemoryPersistence", "--skipApiVersionCheck", "--loose",
        "--cert", tls.certificate_file, "--key", tls.key_file,
        "--blobHost", "127.0.0.1", "--blobPort", str(_free_port()),
        "--tableHost", "127.0.0.1", "--tablePort", str(table_port),
        "--queueHost", "127.0.0.1", "--queuePort", str(queue_port),
    ]
    process = subprocess.Popen(command, cwd=workspace, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    azurite = Azurite(process, table_port, queue_port, tls.ca_bundle, workspace)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            error = process.stderr.read().decode(errors="replace") if process.stderr else ""
            raise RuntimeError(f"Azurite exited with code {process.returncode}: {error.strip()}")
        if _accepts(table_port) and _accepts(queue_port):
            return azurite
        time.sleep(0.1)
    azurite.stop()
    raise TimeoutError(f"Azurite did not listen on ports {table_port} and {queue_port} within {timeout} s.")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False
