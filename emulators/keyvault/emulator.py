"""KeyVaultEmulator: the vaults, their HTTPS listeners, the emulator clock, events, faults and the request log."""

from __future__ import annotations

import contextlib
import datetime as dt
import heapq
import itertools
import logging
import re
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Callable, Iterator

from cryptography import x509

from emulators.keyvault import certificates, events, pki
from emulators.keyvault import policy as policies
from emulators.keyvault.store import DAY, Certificate, Vault, Version, new_version
from emulators.tls import create_loopback_tls, server_context

logger = logging.getLogger(__name__)

# Key Vault's vault naming rule: 3 to 24 letters, digits and hyphens, starting with a letter.
VAULT_NAME = re.compile(r"(?!.*--)[A-Za-z][A-Za-z0-9-]{1,22}[A-Za-z0-9]")
FAULT_KINDS = ("429", "500", "503", "delay", "drop")
# The api-version written into nextLink URLs; the SDK replaces it with its own on the next request.
API_VERSION = "2026-04-01"
# Emulator-clock seconds after which an integrated-CA operation completes without status checks. Real CAs
# take minutes to hours; a minute keeps AutoRenew through an integrated CA visible after a short advance.
INTEGRATED_CA_SECONDS = 60


class KeyVaultEmulator:
    """Emulated Key Vault certificate data plane, one HTTPS listener on 127.0.0.1 per vault.

    Use as a context manager, or call start() and stop(). All state is in memory.
    """

    api_version_hint = API_VERSION

    def __init__(
        self,
        vaults: list[str] | tuple[str, ...] = ("contoso-certs",),
        event_sink: object = None,
        ports: list[int] | None = None,
        integrated_ca_checks: int = 2,
        start_time: dt.datetime | None = None,
        cloud_events: bool = False,
        integrated_ca_seconds: int = INTEGRATED_CA_SECONDS,
    ) -> None:
        for name in vaults:
            if not VAULT_NAME.fullmatch(name):
                raise ValueError(
                    f"Vault name {name!r} is invalid: a Key Vault name has 3 to 24 letters, digits and hyphens, "
                    "starts with a letter and does not end with a hyphen."
                )
        if ports is not None and len(ports) != len(vaults):
            raise ValueError(f"Got {len(ports)} ports for {len(vaults)} vaults. Give one port per vault, or none.")
        if start_time is not None and start_time.tzinfo is None:
            raise ValueError("start_time must be an aware datetime, for example datetime.now(timezone.utc).")

        self.integrated_ca_checks = integrated_ca_checks
        self.integrated_ca_seconds = integrated_ca_seconds
        self._vault_names = list(vaults)
        self._ports = list(ports) if ports else [0] * len(vaults)
        self._sink = events.make_sink(event_sink, cloud_events)
        self._start_epoch = int((start_time or dt.datetime.now(dt.timezone.utc)).timestamp())
        self._clock = self._start_epoch
        self._lock = threading.RLock()
        self._depth = 0
        self._outbox: list[dict] = []
        self._log_lock = threading.Lock()
        self._servers: list = []
        self._workdir: Path | None = None
        self.vaults: dict[str, Vault] = {}
        self._reset_state()

    # ---- lifecycle -----------------------------------------------------------------------------------------

    def start(self) -> "KeyVaultEmulator":
        """Create the CAs and start one HTTPS listener per vault."""
        from emulators.keyvault.server import VaultServer

        clock_now = self.now()
        self._workdir = Path(tempfile.mkdtemp(prefix="kv-emulator-"))
        tls = create_loopback_tls(self._workdir, "Key Vault emulator")
        self._ca_bundle = tls.ca_bundle
        context = server_context(tls)
        self.test_ca = pki.create_ca(
            "Key Vault Emulator Test CA", clock_now - dt.timedelta(days=3650), clock_now + dt.timedelta(days=36500)
        )
        self.external_ca = pki.create_ca(
            "Key Vault Emulator External Test CA", clock_now - dt.timedelta(days=3650), clock_now + dt.timedelta(days=36500)
        )
        for name, port in zip(self._vault_names, self._ports):
            server = VaultServer(("127.0.0.1", port), self, self.vaults[name], context)
            self.vaults[name].base_url = f"https://127.0.0.1:{server.server_address[1]}"
            server.start()
            self._servers.append(server)
        logger.info("Key Vault emulator started: vaults=%s", ", ".join(self.vault_url(n) for n in self._vault_names))
        return self

    def stop(self) -> None:
        """Stop the listeners and remove the temporary TLS files."""
        for server in self._servers:
            server.stop()
        self._servers = []
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None
        logger.info("Key Vault emulator stopped")

    def __enter__(self) -> "KeyVaultEmulator":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def reset(self) -> None:
        """Forget all certificates, issuers, contacts, events, faults and logs; the clock goes back to its start."""
        with self.transaction():
            urls = {name: vault.base_url for name, vault in self.vaults.items()}
            self._reset_state()
            for name, vault in self.vaults.items():
                vault.base_url = urls.get(name, "")

    def _reset_state(self) -> None:
        self._clock = self._start_epoch
        old = getattr(self, "vaults", {})
        self.vaults = {name: Vault(name=name, emulator=self, base_url=getattr(old.get(name), "base_url", "")) for name in self._vault_names}
        # Cleared in place, so a caller that kept a reference to these lists gets the reset too.
        self.events: list[dict] = getattr(self, "events", [])
        self.events.clear()
        self.secret_reads: list[dict] = getattr(self, "secret_reads", [])
        self.secret_reads.clear()
        self._faults: dict[str, list[dict]] = {name: [] for name in self._vault_names}
        self._request_log: list[dict] = []

    # ---- addresses and CAs ---------------------------------------------------------------------------------

    def vault_url(self, vault: str) -> str:
        """Return https://127.0.0.1:PORT of a vault."""
        return self._vault(vault).base_url

    @property
    def ca_bundle(self) -> str:
        """Path of the PEM bundle that verifies the listeners' TLS certificate."""
        return self._ca_bundle

    @property
    def test_ca_certificate(self) -> x509.Certificate:
        """The emulator's test CA, which signs certificates of DigiCert and GlobalSign issuers."""
        return self.test_ca.certificate

    @property
    def external_ca_certificate(self) -> x509.Certificate:
        """The 'external test CA' that sign_csr uses, standing for a CA outside Key Vault."""
        return self.external_ca.certificate

    def sign_csr(self, csr: bytes | str, days: int = 365) -> x509.Certificate:
        """Sign a CSR (DER or PEM) with the external test CA, valid from the emulator clock for days."""
        data = csr.encode() if isinstance(csr, str) else csr
        if data.lstrip().startswith(b"-----BEGIN"):
            request = x509.load_pem_x509_csr(data)
        else:
            request = x509.load_der_x509_csr(data)
        start = self.now()
        return pki.sign_csr(self.external_ca, request, start, start + dt.timedelta(days=days))

    # ---- clock ---------------------------------------------------------------------------------------------

    def now(self) -> dt.datetime:
        """Return the emulator clock as an aware UTC datetime."""
        return dt.datetime.fromtimestamp(self._clock, dt.timezone.utc)

    def epoch(self) -> int:
        """Return the emulator clock in Unix seconds."""
        return self._clock

    def advance(self, days: float = 0, seconds: float = 0) -> dt.datetime:
        """Move the clock forward, firing in time order what falls due on the way.

        That is NearExpiry and Expired events, AutoRenew of Self and integrated-CA certificates, and
        integrated-CA operations that run out of time. Returns the new time.
        """
        delta = int(days * DAY + seconds)
        if delta < 0:
            raise ValueError(f"The emulator clock only moves forward; got {days} days and {seconds} seconds.")
        with self.transaction():
            target = self._clock + delta
            for vault in self.vaults.values():
                certificates.settle_all(vault)
            self._run_due(target)
            self._clock = target
        return self.now()

    def _run_due(self, target: int) -> None:
        heap: list = []
        order = itertools.count()
        for vault in self.vaults.values():
            for certificate in vault.certificates.values():
                self._schedule(heap, order, vault, certificate)
        while heap and heap[0][0] <= target:
            due, _, vault, certificate, action = heapq.heappop(heap)
            self._clock = max(self._clock, due)
            if vault.certificates.get(certificate.name.lower()) is not certificate:
                continue
            if action():
                self._schedule(heap, order, vault, certificate)

    def _schedule(self, heap: list, order: Iterator[int], vault: Vault, certificate: Certificate) -> None:
        def push(due: int, action: Callable[[], bool]) -> None:
            heapq.heappush(heap, (due, next(order), vault, certificate, action))

        for version in certificate.versions:
            if not version.is_complete:
                continue
            if not version.near_expiry_sent:
                push(version.exp - events.NEAR_EXPIRY_SECONDS, lambda v=version: self._fire_near_expiry(vault, v))
            if not version.expired_sent:
                push(version.exp, lambda v=version: self._fire_expired(vault, v))
        renewal = certificates.renewal_due_at(vault, certificate)
        if renewal is not None:
            push(renewal[0], lambda v=renewal[1]: self._fire_auto_renew(vault, certificate, v))
        operation = certificate.operation
        if operation is not None and operation.kind == certificates.INTEGRATED and operation.status == "inProgress":
            push(operation.requested_at + self.integrated_ca_seconds, lambda: self._fire_issue(vault, certificate))

    def _fire_near_expiry(self, vault: Vault, version: Version) -> bool:
        if version.near_expiry_sent or not version.enabled:
            return False
        version.near_expiry_sent = True
        self._emit(events.NEAR_EXPIRY, vault, version)
        return False

    def _fire_expired(self, vault: Vault, version: Version) -> bool:
        if version.expired_sent or not version.enabled:
            return False
        version.expired_sent = True
        self._emit(events.EXPIRED, vault, version)
        return False

    def _fire_auto_renew(self, vault: Vault, certificate: Certificate, version: Version) -> bool:
        renewal = certificates.renewal_due_at(vault, certificate)
        if renewal is None or renewal[1] is not version:
            return False
        logger.info("AutoRenew: vault=%s certificate=%s version=%s", vault.name, certificate.name, version.version)
        certificates.auto_renew(vault, certificate, version)
        return True

    def _fire_issue(self, vault: Vault, certificate: Certificate) -> bool:
        certificates.check_integrated(vault, certificate, counts_as_check=False)
        return True

    # ---- events --------------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """Hold the state lock; deliver the events emitted inside once the outermost block releases it.

        Delivery happens outside the lock, so an event handler may call back into the emulator.
        """
        with self._lock:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
                batch: list[dict] = []
                if self._depth == 0:
                    batch, self._outbox = self._outbox, []
        if batch and self._sink is not None:
            try:
                self._sink(batch)
            except Exception:  # noqa: BLE001 - a failing sink must not fail the Key Vault request that emitted.
                logger.exception("Event sink raised; %d events were not delivered", len(batch))

    def version_created(self, vault: Vault, certificate: Certificate, version: Version) -> None:
        """Emit NewVersionCreated, and NearExpiry or Expired at once when the version is already that old."""
        self._emit(events.NEW_VERSION_CREATED, vault, version)
        if version.exp - events.NEAR_EXPIRY_SECONDS <= self._clock:
            self._fire_near_expiry(vault, version)
        if version.exp <= self._clock:
            self._fire_expired(vault, version)

    def _emit(self, event_type: str, vault: Vault, version: Version) -> None:
        event = events.certificate_event(
            event_type,
            vault.name,
            version.name,
            version.version,
            vault.object_url("certificates", version.name, version.version),
            version.nbf,
            version.exp,
            self.now(),
        )
        self.events.append(event)
        self._outbox.append(event)

    # ---- faults, failures and logs -------------------------------------------------------------------------

    def inject_fault(
        self, vault: str, route: str, kind: str, count: int = 1, retry_after: float | None = None,
        delay: float | None = None,
    ) -> None:
        """Make the next count requests to route (a template such as 'GET /certificates/{name}/{version}', or '*') fail.

        kind is '429' (Retry-After when retry_after is set), '500', '503', 'delay' (wait delay seconds,
        then respond normally) or 'drop' (close the connection without a response).
        """
        if str(kind) not in FAULT_KINDS:
            raise ValueError(f"Fault kind {kind!r} is unknown. Use one of {', '.join(FAULT_KINDS)}.")
        if str(kind) == "delay" and delay is None:
            raise ValueError("A 'delay' fault needs delay=SECONDS.")
        self._vault(vault)
        with self._lock:
            self._faults[vault].append(
                {"route": route, "kind": str(kind), "count": int(count), "retry_after": retry_after, "delay": delay}
            )

    def take_fault(self, vault: str, route: str | None) -> dict | None:
        """Return and use up one injected fault that matches the route template, or None."""
        with self._lock:
            for fault in self._faults[vault]:
                if fault["count"] > 0 and (fault["route"] == "*" or fault["route"] == route):
                    fault["count"] -= 1
                    if fault["count"] == 0:
                        self._faults[vault].remove(fault)
                    return dict(fault)
        return None

    def fail_next_issuance(self, vault: str, name: str, code: str, message: str) -> None:
        """Make the next integrated-CA operation of that certificate end as failed with this error."""
        with self._lock:
            self._vault(vault).failures[name.lower()] = (code, message)

    def log_request(self, entry: dict) -> None:
        """Record one request and the status it got."""
        with self._log_lock:
            self._request_log.append(entry)

    def request_log(self, vault: str | None = None) -> list[dict]:
        """Return the recorded requests ({vault, method, route, path, status}), of one vault or all."""
        with self._log_lock:
            return [dict(e) for e in self._request_log if vault is None or e["vault"] == vault]

    def clear_request_log(self) -> None:
        """Forget the recorded requests."""
        with self._log_lock:
            self._request_log.clear()

    def record_secret_read(self, vault: str, name: str, version: str) -> None:
        """Record an attempt to read a secret, which is how a private key would leave the vault."""
        with self._lock:
            self.secret_reads.append({"vault": vault, "name": name, "version": version, "time": self._clock})
        logger.warning("Secret read attempted: vault=%s secret=%s", vault, name)

    # ---- bulk seeding --------------------------------------------------------------------------------------

    def seed_certificates(
        self, vault: str, count: int, expires_in_days: float = 90, issuer: str = "Self", prefix: str = "bulk",
        lifetime_days: int = 365, tags: dict | None = None, emit_events: bool = False,
    ) -> list[str]:
        """Test only: put count completed certificates straight into the store, for benchmarks.

        All of them share one EC P-256 key, so seeding thousands takes well under a second per thousand.
        Names are PREFIX-00000, PREFIX-00001, ... Without emit_events no NewVersionCreated is sent, and a
        version already inside the 30-day window counts its NearExpiry as sent.
        """
        target = self._vault(vault)
        key = pki.generate_key("EC", curve="P-256")
        names = []
        with self.transaction():
            not_after = self.now() + dt.timedelta(days=expires_in_days)
            not_before = not_after - dt.timedelta(days=lifetime_days)
            for index in range(count):
                name = f"{prefix}-{index:05d}"
                names.append(name)
                self._seed_one(target, name, key, issuer, not_before, not_after, tags, emit_events)
        return names

    def _seed_one(
        self, vault: Vault, name: str, key: pki.PrivateKey, issuer: str, not_before: dt.datetime,
        not_after: dt.datetime, tags: dict | None, emit_events: bool,
    ) -> None:
        spec = pki.SubjectSpec(subject=f"CN={name}", dns_names=(f"{name}.example.test",))
        issued = pki.build_self_signed(key, spec, not_before, not_after)
        now = self._clock
        content_type = policies.PKCS12
        certificate = vault.certificates.get(name.lower())
        if certificate is None:
            policy = policies.generated_import_policy(issued, content_type, now)
            policy["issuer"] = {"name": issuer}
            certificate = Certificate(name=name, policy=policy)
            vault.put_certificate(certificate)
        version = new_version(certificate, now, tags, True)
        version.key = key
        version.complete(issued, now)
        certificate.add(version)
        if emit_events:
            self.version_created(vault, certificate, version)
        elif version.exp - events.NEAR_EXPIRY_SECONDS <= now:
            version.near_expiry_sent = True
            version.expired_sent = version.exp <= now

    # ---- helpers -------------------------------------------------------------------------------------------

    def _vault(self, name: str) -> Vault:
        vault = self.vaults.get(name)
        if vault is None:
            raise KeyError(f"Vault {name!r} is not emulated here. Emulated vaults: {', '.join(self.vaults)}.")
        return vault

    def vault_names(self) -> list[str]:
        """Return the names of the emulated vaults, in the order given."""
        return list(self._vault_names)