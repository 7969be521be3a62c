"""Measure what the renewal service costs: Key Vault requests per event, sweeps of large vaults, import time.

Run it with `make bench`, which writes benchmarks/RESULTS.md. Request counts come from the Key Vault
emulator's request log and leave out the one unauthenticated challenge request that each new client makes.
Sweep times and memory depend on the machine, so RESULTS.md records it.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import platform
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
import urllib.request
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

from azure.keyvault.certificates import CertificateClient, CertificatePolicy, CertificatePolicyAction, LifetimeAction
from cryptography.hazmat.primitives.serialization import Encoding

from emulators.functions_host import EventRecorder, deliver_events, run_timer
from emulators.keyvault import EmulatorCredential, KeyVaultEmulator
from shared.journal import SqliteJournal
from shared.keyvault import VaultClients
from shared.runtime import Runtime, set_runtime
from shared.settings import Settings, VaultConfig

VAULT = "contoso-certs"
START = datetime(2030, 1, 1, tzinfo=timezone.utc)
# Certificates inside the renewal window in each sweep; the rest of the vault is not due.
DUE_PER_SWEEP = 10


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, help="Markdown file for the results (default: print only).")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000], help="Vault sizes to sweep.")
    args = parser.parse_args()

    lines = [
        "# Benchmark results",
        "",
        f"Measured by `make bench` (benchmarks/run.py) on {datetime.now(timezone.utc):%Y-%m-%d}: Python "
        f"{platform.python_version()}, {platform.machine()}, {os.cpu_count()} cores, against the local Key Vault "
        "emulator on loopback. Request counts leave out the unauthenticated challenge request of each new client.",
        "",
        "## Key Vault requests per event",
        "",
        "| event | requests | routes |",
        "|---|---:|---|",
    ]
    for scenario, routes in measure_requests_per_event():
        lines.append(f"| {scenario} | {sum(routes.values())} | {format_routes(routes)} |")

    lines += [
        "",
        f"## Sweeps ({DUE_PER_SWEEP} certificates due, the rest not)",
        "",
        "The target is ceil(certificates / 25) list requests plus 2 requests per due certificate. Seconds are wall "
        "time of one sweep without tracing. Peak memory is the tracemalloc peak of the app's Python allocations "
        "during a second sweep of the same vault, with the emulator in another process.",
        "",
        "| certificates | list requests | other requests | target | seconds | peak memory of the app |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for size in args.sizes:
        # Two sweeps of the same vault: one timed, one under tracemalloc, which slows Python down.
        result = {**measure_sweep(size, trace_memory=False), "peak_kib": measure_sweep(size, trace_memory=True)["peak_kib"]}
        target = math.ceil(size / 25) + 2 * DUE_PER_SWEEP
        lines.append(
            f"| {size:,} | {result['list']} | {result['other']} | {target} | {result['seconds']:.2f} | "
            f"{result['peak_kib']:,} KiB |"
        )

    median, runs = measure_import_time()
    lines += [
        "",
        "## Import time",
        "",
        f"`import function_app` in a new interpreter: median {median * 1000:.0f} ms over {len(runs)} runs "
        f"({', '.join(f'{run * 1000:.0f}' for run in runs)} ms).",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if args.output:
        args.output.write_text(text, encoding="utf-8")
    return 0


def format_routes(routes: Counter) -> str:
    return ", ".join(f"{route} ×{count}" for route, count in sorted(routes.items()))


# Requests per event ---------------------------------------------------------------------------------------------


def measure_requests_per_event() -> list[tuple[str, Counter]]:
    """Deliver one event of each kind through the function entry points and count the app's requests."""
    results = []
    recorder = EventRecorder()
    with KeyVaultEmulator(vaults=[VAULT], event_sink=recorder, start_time=START, integrated_ca_checks=1) as keyvault:
        workdir = Path(tempfile.mkdtemp(prefix="certrenew-bench-"))
        settings = Settings(vaults=(VaultConfig(VAULT, keyvault.vault_url(VAULT)),),
                            journal=f"sqlite:{workdir / 'journal.sqlite3'}", keyvault_ca_bundle=keyvault.ca_bundle)
        set_runtime(Runtime(settings, VaultClients(settings), SqliteJournal(str(workdir / "journal.sqlite3")), keyvault.now))
        client = CertificateClient(keyvault.vault_url(VAULT), EmulatorCredential(), connection_verify=keyvault.ca_bundle,
                                   verify_challenge_resource=False)
        try:
            seed(keyvault, client)
            recorder.take_new()
            deliver_events([])  # builds the app's client; its challenge request is not counted below

            keyvault.advance(days=340)
            near_expiry = [event for event in recorder.take_new() if event["eventType"].endswith("NearExpiry")]
            for event in near_expiry:
                name = event["data"]["ObjectName"]
                results.append((f"NearExpiry, {KINDS[name]}", count_requests(keyvault, lambda: deliver_events([event]))))

            run_timer()
            merge(keyvault, client, "partner")
            created = {event["data"]["ObjectName"]: event for event in recorder.take_new()
                       if event["eventType"].endswith("NewVersionCreated")}
            for name in ("web", "partner"):
                if name in created:
                    label = f"NewVersionCreated after a renewal, {KINDS[name]}"
                    results.append((label, count_requests(keyvault, lambda: deliver_events([created[name]]))))

            keyvault.advance(days=5)
            autorenewed = [event for event in recorder.take_new() if event["eventType"].endswith("NewVersionCreated")
                           and event["data"]["ObjectName"] == "auto"]
            for event in autorenewed[:1]:
                label = "NewVersionCreated by Key Vault's AutoRenew"
                results.append((label, count_requests(keyvault, lambda: deliver_events([event]))))
        finally:
            set_runtime(None)
    return results


KINDS = {"web": "self-signed", "shop": "integrated CA", "partner": "other CA (CSR)", "auto": "self-signed with AutoRenew"}


def seed(keyvault: KeyVaultEmulator, client: CertificateClient) -> None:
    client.create_issuer("bench-digicert", "DigiCert", account_id="bench", password="bench-only")
    policies = {
        "web": CertificatePolicy(issuer_name="Self", subject="CN=web", validity_in_months=12),
        "shop": CertificatePolicy(issuer_name="bench-digicert", subject="CN=shop", validity_in_months=12),
        "partner": CertificatePolicy(issuer_name="Unknown", subject="CN=partner", validity_in_months=12),
        "auto": CertificatePolicy(
            issuer_name="Self", subject="CN=auto", validity_in_months=12,
            lifetime_actions=[LifetimeAction(CertificatePolicyAction.auto_renew, days_before_expiry=22)],
        ),
    }
    for name, policy in policies.items():
        poller = client.begin_create_certificate(name, policy, _polling_interval=0)
        if name == "partner":
            merge(keyvault, client, name)
        else:
            poller.result()


def merge(keyvault: KeyVaultEmulator, client: CertificateClient, name: str) -> None:
    signed = keyvault.sign_csr(client.get_certificate_operation(name).csr, days=365)
    client.merge_certificate(name, [signed.public_bytes(Encoding.DER)])


def count_requests(keyvault: KeyVaultEmulator, action) -> Counter:
    keyvault.clear_request_log()
    action()
    return Counter(entry["route"] for entry in keyvault.request_log() if entry["status"] != 401)


# Sweeps --------------------------------------------------------------------------------------------------------


def measure_sweep(size: int, trace_memory: bool) -> dict:
    """Sweep a vault of size certificates served by an emulator in another process, so memory is the app's alone."""
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    process = context.Process(target=serve_seeded_vault, args=(child, size))
    process.start()
    try:
        info = parent.recv()
        workdir = Path(tempfile.mkdtemp(prefix="certrenew-bench-"))
        settings = Settings(vaults=(VaultConfig(VAULT, info["url"]),), journal=f"sqlite:{workdir / 'journal.sqlite3'}",
                            keyvault_ca_bundle=info["ca_bundle"])
        now = datetime.fromtimestamp(info["now"], tz=timezone.utc)
        runtime = Runtime(settings, VaultClients(settings), SqliteJournal(str(workdir / "journal.sqlite3")), lambda: now)
        service = runtime.service()
        service.vaults.client(settings.vaults[0]).get_contacts()  # the one challenge request, outside the count
        control(info, "DELETE", "requests")

        if trace_memory:
            tracemalloc.start()
        started = time.perf_counter()
        report = service.sweep()
        seconds = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1] if trace_memory else 0
        tracemalloc.stop()

        routes = Counter(entry["route"] for entry in control(info, "GET", "requests")["value"] if entry["status"] != 401)
        if report.due != DUE_PER_SWEEP or report.listed != size:
            raise RuntimeError(f"The sweep listed {report.listed} and found {report.due} due; expected {size} and {DUE_PER_SWEEP}.")
        listed = routes["GET /certificates"]
        return {"list": listed, "other": sum(routes.values()) - listed, "seconds": seconds, "peak_kib": peak // 1024}
    finally:
        parent.send("stop")
        process.join(timeout=30)


def serve_seeded_vault(connection, size: int) -> None:
    with KeyVaultEmulator(vaults=[VAULT], start_time=START) as keyvault:
        keyvault.seed_certificates(VAULT, size - DUE_PER_SWEEP, expires_in_days=200, prefix="steady")
        keyvault.seed_certificates(VAULT, DUE_PER_SWEEP, expires_in_days=20, prefix="due")
        connection.send({"url": keyvault.vault_url(VAULT), "ca_bundle": keyvault.ca_bundle, "now": keyvault.epoch()})
        connection.recv()


def control(info: dict, method: str, path: str):
    context = ssl.create_default_context(cafile=info["ca_bundle"])
    request = urllib.request.Request(f"{info['url']}/_emulator/{path}", method=method)
    with urllib.request.urlopen(request, context=context, timeout=60) as response:
        body = response.read()
    return json.loads(body) if body else None


# Import time ---------------------------------------------------------------------------------------------------


def measure_import_time(runs: int = 5) -> tuple[float, list[float]]:
    code = "import time; t = time.perf_counter(); import function_app; print(time.perf_counter() - t)"
    results = []
    for _ in range(runs):
        output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                                cwd=Path(__file__).resolve().parent.parent)
        results.append(float(output.stdout.strip().splitlines()[-1]))
    return statistics.median(results), results


if __name__ == "__main__":
    sys.exit(main())
