"""Renewals from real Key Vault events, through the function entry points, the SDK and the emulator."""

import threading
from dataclasses import replace
from datetime import datetime, timedelta

import pytest
from azure.keyvault.certificates import CertificatePolicy, LifetimeAction, CertificatePolicyAction
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from shared import notices as kinds
from shared.journal import DryRunJournal
from shared.keyvault import KeyVaultError, KeyVaultUnavailable
from shared.notices import NoticeSink
from tests.support.harness import notice_kinds, self_signed_policy, unknown_issuer_policy


def create_certificate(app, name, policy, vault="contoso-certs", tags=None, enabled=None):
    client = app.client(vault)
    poller = client.begin_create_certificate(name, policy, tags=tags, enabled=enabled)
    if policy.issuer_name.lower() != "unknown":
        poller.result()
    return client


def merge_signed(app, client, name):
    signed = app.keyvault.sign_csr(client.get_certificate_operation(name).csr, days=365)
    return client.merge_certificate(name, [signed.public_bytes(Encoding.DER)])


def integrated_policy(reuse_key=False, **kwargs):
    return CertificatePolicy(issuer_name="contoso-digicert", subject="CN=shop.contoso.test",
                             san_dns_names=["shop.contoso.test"], validity_in_months=12, reuse_key=reuse_key, **kwargs)


def create_integrated(app, name="shop", **policy_options):
    client = app.client()
    client.create_issuer("contoso-digicert", "DigiCert", account_id="acct", password="not-a-real-password")
    poller = client.begin_create_certificate(name, integrated_policy(**policy_options), _polling_interval=0)
    poller.result()
    return client


def advance_to_days_before_expiry(app, client, name, days):
    """Move the clock to days before the expiry of the newest completed version."""
    expires_on = max(
        item.expires_on for item in client.list_properties_of_certificate_versions(name) if item.expires_on
    )
    app.advance(days=(expires_on - app.now()).total_seconds() / 86400 - days)


def test_self_signed_near_expiry_renews_and_confirms(app):
    # GIVEN a self-signed certificate valid for 12 months
    client = create_certificate(app, "web", self_signed_policy(), tags={"team": "web"})
    old = client.get_certificate("web")
    app.deliver_new_events()

    # WHEN Key Vault's clock passes 30 days before expiry and its NearExpiry event is delivered
    advance_to_days_before_expiry(app, client, "web", 25)
    started = app.deliver_new_events()

    # THEN a renewal starts and is announced once
    assert notice_kinds(started) == [kinds.RENEWAL_STARTED]

    # WHEN Key Vault completes the version and its NewVersionCreated event is delivered
    app.run_timer()
    app.deliver_new_events()

    # THEN the owners are notified once, with both thumbprints and expiry dates
    assert notice_kinds(app.queue).count(kinds.RENEWED) == 1
    [notice] = [n for n in app.queue if n.kind == kinds.RENEWED]
    new = client.get_certificate("web")
    assert new.properties.version != old.properties.version
    assert notice.renewal.previous_thumbprint == old.properties.x509_thumbprint.hex().upper()
    assert notice.renewal.new_thumbprint == new.properties.x509_thumbprint.hex().upper()
    assert notice.renewal.new_expires_on > notice.renewal.previous_expires_on
    assert notice.renewal.started_by == "certrenew"


def test_new_version_keeps_tags_enabled_state_and_policy(app):
    client = create_certificate(app, "web", self_signed_policy(), tags={"team": "web", "certrenew-owners": "a@contoso.test"})
    policy_before = client.get_certificate_policy("web")
    app.deliver_new_events()
    advance_to_days_before_expiry(app, client, "web", 25)

    app.deliver_new_events()
    app.run_timer()

    new = client.get_certificate("web")
    assert new.properties.tags == {"team": "web", "certrenew-owners": "a@contoso.test"}
    assert new.properties.enabled is True
    policy_after = client.get_certificate_policy("web")
    assert policy_after.subject == policy_before.subject
    assert policy_after.san_dns_names == policy_before.san_dns_names
    assert policy_after.validity_in_months == policy_before.validity_in_months
    assert policy_after.key_type == policy_before.key_type


def test_self_signed_event_takes_at_most_three_requests(app):
    client = create_certificate(app, "web", self_signed_policy())
    app.deliver_new_events()
    advance_to_days_before_expiry(app, client, "web", 25)
    events = app.recorder.take_new()
    app.keyvault.clear_request_log()

    app.deliver(events)

    requests = app.app_requests()
    assert len(requests) <= 3, requests
    assert [r["route"] for r in requests if r["method"] == "POST"] == ["POST /certificates/{name}/create"]


def test_unknown_issuer_sends_csr_then_merge_confirms(app):
    # GIVEN a certificate of an outside CA, issued once
    client = create_certificate(app, "partner", unknown_issuer_policy())
    merge_signed(app, client, "partner")
    app.deliver_new_events()
    advance_to_days_before_expiry(app, client, "partner", 20)

    # WHEN its NearExpiry event is delivered
    notices = app.deliver_new_events()

    # THEN a new CSR waits for a person, attached to the notice
    [csr_notice] = [n for n in notices if n.kind == kinds.CSR_WAITING]
    csr = x509.load_pem_x509_csr(csr_notice.csr_pem.encode())
    assert csr.is_signature_valid
    assert "partner.contoso.test" in csr.subject.rfc4514_string()
    assert "certrenew merge" in csr_notice.next_step

    # WHEN the person merges the signed certificate
    merge_signed(app, client, "partner")
    confirmed = app.deliver_new_events()

    # THEN the renewal is confirmed, as started by this app
    [renewed] = [n for n in confirmed if n.kind == kinds.RENEWED]
    assert renewed.renewal.started_by == "certrenew"
    assert renewed.renewal.previous_version == csr_notice.renewal.previous_version


def test_waiting_csr_gets_reminders_as_expiry_nears(app):
    client = create_certificate(app, "partner", unknown_issuer_policy())
    merge_signed(app, client, "partner")
    app.deliver_new_events()
    advance_to_days_before_expiry(app, client, "partner", 20)
    app.deliver_new_events()

    reminders = []
    for days_before in (13, 12, 6, 2):
        advance_to_days_before_expiry(app, client, "partner", days_before)
        reminders += [n for n in app.run_timer() if n.kind == kinds.REMINDER]

    assert len(reminders) == 3, [n.summary for n in reminders]
    assert all(n.csr_pem for n in reminders)
    assert [n.certificate.days_left for n in reminders] == [13, 6, 2]


def test_integrated_ca_operation_is_checked_until_completed(app):
    client = create_integrated(app)
    app.deliver_new_events()
    advance_to_days_before_expiry(app, client, "shop", 25)

    started = app.deliver_new_events()
    assert notice_kinds(started) == [kinds.RENEWAL_STARTED]
    assert started[0].certificate.kind == "integrated-ca"

    timer_notices = []
    for _ in range(4):
        timer_notices += app.run_timer()
        timer_notices += app.deliver_new_events()

    assert notice_kinds(timer_notices) == [kinds.RENEWED]
    assert timer_notices[0].renewal.new_version == client.get_certificate("shop").properties.version


def test_integrated_ca_failure_is_reported_with_remedy(app):
    client = create_integrated(app, reuse_key=True)
    app.deliver_new_events()
    advance_to_days_before_expiry(app, client, "shop", 25)

    app.deliver_new_events()
    failures = []
    for _ in range(4):
        failures += [n for n in app.run_timer() if n.kind == kinds.RENEWAL_FAILED]

    [failure] = failures
    assert "already been used" in failure.error.message
    assert "reuse" in failure.error.remedy.lower()
    assert app.runtime.journal.history("contoso-certs", "shop")[0]["action"] == "renewal-failed"


def test_failed_issuance_code_and_message_reach_the_notice(app):
    client = create_integrated(app)
    app.deliver_new_events()
    app.keyvault.fail_next_issuance("contoso-certs", "shop", "CertificateRequestRejected", "Organization validation failed.")
    advance_to_days_before_expiry(app, client, "shop", 25)

    app.deliver_new_events()
    failures = []
    for _ in range(4):
        failures += [n for n in app.run_timer() if n.kind == kinds.RENEWAL_FAILED]

    [failure] = failures
    assert failure.error.code == "CertificateRequestRejected"
    assert failure.error.message == "Organization validation failed."


def test_disabled_certificate_is_not_renewed(app):
    client = create_certificate(app, "old", self_signed_policy(), enabled=False)
    app.deliver_new_events()
    advance_to_days_before_expiry(app, client, "old", 10)

    notices = app.deliver_new_events() + app.run_timer()

    assert notices == []
    assert not [r for r in app.app_requests() if r["route"] == "POST /certificates/{name}/create"
                and r["status"] == 202 and r["path"].startswith("/certificates/old/")][1:]
    assert len(list(client.list_properties_of_certificate_versions("old"))) == 1


def test_expired_notify_only_certificate_is_announced_once(app):
    client = create_certificate(app, "legacy", self_signed_policy(months=1), tags={"certrenew-mode": "notify"})
    app.deliver_new_events()
    advance_to_days_before_expiry(app, client, "legacy", -1)

    notices = app.deliver_new_events() + app.run_timer()
    app.advance(days=3)
    later = app.run_timer()

    assert notice_kinds(notices) == [kinds.EXPIRED]
    assert later == []
    assert len(list(client.list_properties_of_certificate_versions("legacy"))) == 1


def test_notify_only_certificate_gets_due_notice_then_reminders(app):
    client = create_certificate(app, "manual", self_signed_policy(), tags={"certrenew-mode": "notify"})
    app.deliver_new_events()
    advance_to_days_before_expiry(app, client, "manual", 20)

    first = app.deliver_new_events() + app.run_timer()
    reminders = []
    for days_before in (13, 12, 6):
        advance_to_days_before_expiry(app, client, "manual", days_before)
        reminders += app.run_timer()

    assert notice_kinds(first) == [kinds.MANUAL_RENEWAL_DUE]
    assert notice_kinds(reminders) == [kinds.REMINDER, kinds.REMINDER]
    assert [n.certificate.days_left for n in reminders] == [13, 6]
    assert len(list(client.list_properties_of_certificate_versions("manual"))) == 1


def test_expired_self_signed_certificate_is_announced_and_renewed(app):
    client = create_certificate(app, "lapsed", self_signed_policy(months=1))
    app.deliver_new_events()
    advance_to_days_before_expiry(app, client, "lapsed", -2)

    notices = [n for n in app.deliver_new_events() if n.certificate.name == "lapsed"]

    assert notice_kinds(notices) == [kinds.EXPIRED, kinds.RENEWAL_STARTED]


def test_autorenew_is_left_to_key_vault(app):
    policy = self_signed_policy(lifetime_actions=[LifetimeAction(CertificatePolicyAction.auto_renew, days_before_expiry=20)])
    client = create_certificate(app, "auto", policy)
    app.deliver_new_events()

    advance_to_days_before_expiry(app, client, "auto", 25)
    waiting = app.deliver_new_events()
    assert waiting == []

    advance_to_days_before_expiry(app, client, "auto", 19)
    confirmed = app.deliver_new_events()

    [renewed] = [n for n in confirmed if n.kind == kinds.RENEWED]
    assert renewed.renewal.started_by == "keyvault-autorenew"
    creates = [r for r in app.app_requests() if r["route"] == "POST /certificates/{name}/create"]
    assert len(creates) == 1, "only the test's own create; Key Vault made the renewal"


@pytest.fixture(params=["sqlite", "table"])
def any_app(request):
    """The app with each journal: SQLite for local runs, Table Storage on Azurite as in Azure."""
    return request.getfixturevalue("app" if request.param == "sqlite" else "table_app")


def test_duplicate_delivery_starts_one_renewal(any_app):
    app = any_app
    client = create_certificate(app, "web", self_signed_policy())
    app.deliver_new_events()
    advance_to_days_before_expiry(app, client, "web", 25)
    events = app.recorder.take_new()
    app.keyvault.clear_request_log()

    notices = app.deliver(events + events)

    assert notice_kinds(notices) == [kinds.RENEWAL_STARTED]
    creates = [r for r in app.app_requests() if r["route"] == "POST /certificates/{name}/create"]
    assert len(creates) == 1


def test_concurrent_deliveries_start_one_renewal(any_app):
    app = any_app
    client = create_certificate(app, "web", self_signed_policy())
    app.deliver_new_events()
    advance_to_days_before_expiry(app, client, "web", 25)
    [event] = app.recorder.take_new()
    app.keyvault.clear_request_log()
    barrier = threading.Barrier(4)
    results = []

    def deliver():
        barrier.wait()
        results.extend(app.deliver([event]))

    threads = [threading.Thread(target=deliver) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert notice_kinds(results) == [kinds.RENEWAL_STARTED]
    creates = [r for r in app.app_requests() if r["route"] == "POST /certificates/{name}/create"]
    assert len(creates) == 1


# azure-core's RetryPolicy retries a bad status 3 times by default (retry_status), so a call makes 4 attempts.
ATTEMPTS_PER_CALL = 4


@pytest.mark.parametrize(
    "route",
    ["GET /certificates/{name}/{version}", "POST /certificates/{name}/create"],
)
def test_transient_fault_raises_then_redelivery_completes(app, route):
    client = create_certificate(app, "web", self_signed_policy())
    app.deliver_new_events()
    advance_to_days_before_expiry(app, client, "web", 25)
    [event] = app.recorder.take_new()
    app.keyvault.clear_request_log()

    # GIVEN Key Vault responds with 503 to every attempt the SDK makes
    app.keyvault.inject_fault("contoso-certs", route, "503", count=ATTEMPTS_PER_CALL)
    with pytest.raises(KeyVaultUnavailable, match="503"):
        app.deliver([event])
    assert app.queue == []
    assert [r["status"] for r in app.app_requests() if r["route"] == route] == [503] * ATTEMPTS_PER_CALL

    # WHEN Event Grid delivers the event again after Key Vault recovered
    notices = app.deliver([event])

    # THEN exactly one renewal starts and is announced
    assert notice_kinds(notices) == [kinds.RENEWAL_STARTED]
    creates = [r for r in app.app_requests() if r["route"] == "POST /certificates/{name}/create" and r["status"] == 202]
    assert len(creates) == 1


def test_throttling_is_retried_by_the_sdk(app):
    client = create_certificate(app, "web", self_signed_policy())
    app.deliver_new_events()
    advance_to_days_before_expiry(app, client, "web", 25)
    app.keyvault.inject_fault("contoso-certs", "POST /certificates/{name}/create", "429", count=2, retry_after=0)

    notices = app.deliver_new_events()

    assert notice_kinds(notices) == [kinds.RENEWAL_STARTED]


def test_sweep_renews_due_certificates_that_got_no_event(app):
    client = create_certificate(app, "web", self_signed_policy())
    create_certificate(app, "api", self_signed_policy(months=24))
    app.recorder.take_new()
    advance_to_days_before_expiry(app, client, "web", 20)
    app.recorder.take_new()  # lost deliveries

    notices = app.run_timer()

    assert [(n.kind, n.certificate.name) for n in notices] == [(kinds.RENEWAL_STARTED, "web")]


def test_one_month_certificate_renews_once_per_lifetime(app):
    # GIVEN a certificate valid for one month, and the default 30-day window
    client = create_certificate(app, "short", self_signed_policy(months=1))
    app.deliver_new_events()

    # WHEN the timer and every event run daily for 90 days
    for _ in range(90):
        app.advance(days=1)
        app.deliver_new_events()
        app.run_timer()
        app.deliver_new_events()

    # THEN it was renewed about once a month, not every day
    versions = list(client.list_properties_of_certificate_versions("short"))
    assert 3 <= len(versions) <= 5, len(versions)
    assert client.get_certificate("short").properties.expires_on > app.now()


def test_sweep_requests_per_page_and_due(app):
    # GIVEN a vault of 60 certificates, 3 of them inside the renewal window
    app.keyvault.seed_certificates("contoso-certs", 57, expires_in_days=200, prefix="steady")
    app.keyvault.seed_certificates("contoso-certs", 3, expires_in_days=20, prefix="due")
    app.runtime.vaults.client(app.runtime.settings.vaults[0]).get_contacts()
    app.keyvault.clear_request_log()

    # WHEN the timer sweeps
    notices = app.run_timer()

    # THEN it reads 3 list pages of 25 and makes 2 requests per due certificate
    routes = [r["route"] for r in app.app_requests()]
    assert routes.count("GET /certificates") == 3
    assert len(routes) - 3 == 2 * 3
    assert sorted(n.certificate.name for n in notices) == ["due-00000", "due-00001", "due-00002"]


def test_unannounced_renewal_announced_on_redelivery(app, monkeypatch):
    client = create_certificate(app, "web", self_signed_policy())
    app.deliver_new_events()
    advance_to_days_before_expiry(app, client, "web", 25)
    [event] = app.recorder.take_new()

    # GIVEN the invocation dies after Key Vault accepted the create, before the notice was queued
    original_emit = NoticeSink.emit

    def die_once(sink, notice):
        monkeypatch.setattr(NoticeSink, "emit", original_emit)
        raise ConnectionError("worker stopped")

    monkeypatch.setattr(NoticeSink, "emit", die_once)
    with pytest.raises(ConnectionError):
        app.deliver([event])

    # WHEN Event Grid delivers the event again, after its retries reached the 10-minute step
    app.advance(days=10 / 1440)
    notices = app.deliver([event])

    # THEN the renewal is announced once (Key Vault finished the self-signed version meanwhile, so as renewed)
    # and no second version was started
    assert notice_kinds(notices) == [kinds.RENEWED]
    creates = [r for r in app.app_requests() if r["route"] == "POST /certificates/{name}/create" and r["status"] == 202]
    assert len(creates) == 2  # the test's own create, and the app's one renewal


def test_fault_during_operation_check_is_retried_next_run(app):
    client = create_integrated(app)
    app.deliver_new_events()
    advance_to_days_before_expiry(app, client, "shop", 25)
    app.deliver_new_events()

    app.keyvault.inject_fault("contoso-certs", "GET /certificates/{name}/pending", "503", count=ATTEMPTS_PER_CALL)
    with pytest.raises(KeyVaultUnavailable):
        app.run_timer()

    notices = []
    for _ in range(4):
        notices += app.run_timer() + app.deliver_new_events()
    assert notice_kinds(notices) == [kinds.RENEWED]


def test_permanent_key_vault_error_is_logged_and_acknowledged(app, monkeypatch, caplog):
    client = create_certificate(app, "web", self_signed_policy())
    app.deliver_new_events()
    advance_to_days_before_expiry(app, client, "web", 25)
    denied = KeyVaultError("Access to certificate web in vault contoso-certs was denied (Forbidden).", 403, "Forbidden")

    def deny(*args, **kwargs):
        raise denied

    monkeypatch.setattr(app.runtime.vaults, "get_certificate", deny)

    notices = app.deliver_new_events()

    assert notices == []
    assert "Key Vault rejected the work" in caplog.text
    assert "was denied (Forbidden)" in caplog.text


def test_dry_run_setting_changes_nothing_and_queues_nothing(app):
    client = create_certificate(app, "web", self_signed_policy())
    app.deliver_new_events()
    advance_to_days_before_expiry(app, client, "web", 25)
    app.runtime.settings = replace(app.runtime.settings, dry_run=True)
    app.runtime.journal = DryRunJournal(app.runtime.journal)
    app.keyvault.clear_request_log()

    notices = app.deliver_new_events() + app.run_timer()

    assert notices == []
    assert [r for r in app.app_requests() if r["method"] != "GET"] == []
    assert len(list(client.list_properties_of_certificate_versions("web"))) == 1


def test_renewal_started_notice_carries_no_csr(app):
    client = create_certificate(app, "web", self_signed_policy())
    app.deliver_new_events()
    advance_to_days_before_expiry(app, client, "web", 25)

    [started] = app.deliver_new_events()

    assert started.kind == kinds.RENEWAL_STARTED
    assert started.csr_pem is None


def test_csr_waiting_notice_says_when_next_reminder_comes(app):
    client = create_certificate(app, "partner", unknown_issuer_policy())
    merge_signed(app, client, "partner")
    app.deliver_new_events()
    advance_to_days_before_expiry(app, client, "partner", 20)

    [waiting] = app.deliver_new_events()

    expires_on = datetime.fromisoformat(waiting.certificate.expires_on.replace("Z", "+00:00"))
    assert waiting.next_reminder == (expires_on - timedelta(days=14)).isoformat().replace("+00:00", "Z")


def test_operation_cancelled_outside_app_is_reported(app):
    # GIVEN a CSR waiting for a signature
    client = create_certificate(app, "partner", unknown_issuer_policy())
    merge_signed(app, client, "partner")
    app.deliver_new_events()
    advance_to_days_before_expiry(app, client, "partner", 20)
    app.deliver_new_events()

    # WHEN a person cancels the operation in the portal and the timer runs
    client.cancel_certificate_operation("partner")
    failures = [n for n in app.run_timer() if n.kind == kinds.RENEWAL_FAILED]

    # THEN the owners learn that it was cancelled, and the next run does not repeat it
    [failure] = failures
    assert "cancelled" in failure.error.message
    assert [n for n in app.run_timer() if n.kind == kinds.RENEWAL_FAILED] == []
