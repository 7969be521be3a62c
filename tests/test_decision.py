"""The renewal decision, on certificate views as Key Vault would return them."""

from datetime import datetime, timedelta, timezone

import pytest

from shared.decision import NOTIFY, SKIP, START, WAIT_FOR_AUTORENEW, decide, effective_mode
from shared.keyvault import INTEGRATED_CA, OTHER_CA, SELF_SIGNED, CertificateView, PolicyView

NOW = datetime(2027, 1, 1, tzinfo=timezone.utc)
DEFAULT_MODES = {"self-signed": "renew", "integrated-ca": "renew", "other-ca": "csr"}


def view(valid_days=365, expires_in_days=10.0, enabled=True, lifetime_action=None, version="a" * 32, tags=None):
    expires_on = NOW + timedelta(days=expires_in_days)
    policy = {"issuer": {"name": "Self"}}
    if lifetime_action:
        policy["lifetime_actions"] = [lifetime_action]
    return CertificateView(
        name="web", certificate_id=f"https://v/certificates/web/{version}", version=version, enabled=enabled,
        not_before=expires_on - timedelta(days=valid_days), expires_on=expires_on, created_on=None,
        thumbprint=None, subject="CN=web", dns_names=(), tags=tags or {}, policy=PolicyView(policy),
    )


def test_certificate_inside_window_starts_renewal():
    decision = decide(view(expires_in_days=20), SELF_SIGNED, "renew", NOW, window_days=30)

    assert decision.action == START


def test_certificate_outside_window_is_skipped_with_due_date():
    decision = decide(view(expires_in_days=45), SELF_SIGNED, "renew", NOW, window_days=30)

    assert decision.action == SKIP
    assert "not due until 2027-01-16" in decision.reason


def test_disabled_certificate_is_skipped():
    decision = decide(view(enabled=False), SELF_SIGNED, "renew", NOW, window_days=30)

    assert decision.action == SKIP
    assert "disabled" in decision.reason


def test_one_month_certificate_renews_once():
    # GIVEN a certificate valid for 30 days with a 30-day window
    # WHEN it is 25 days from expiry, then a fresh 30-day version replaces it
    fresh = decide(view(valid_days=30, expires_in_days=29.9), SELF_SIGNED, "renew", NOW, window_days=30)
    early = decide(view(valid_days=30, expires_in_days=25), SELF_SIGNED, "renew", NOW, window_days=30)
    late = decide(view(valid_days=30, expires_in_days=9), SELF_SIGNED, "renew", NOW, window_days=30)

    # THEN only the last third of its lifetime is due
    assert fresh.action == SKIP
    assert early.action == SKIP
    assert late.action == START


def test_stale_event_version_is_skipped():
    decision = decide(view(expires_in_days=300), SELF_SIGNED, "renew", NOW, 30, event_version="b" * 32)

    assert decision.action == SKIP
    assert "newer than the event" in decision.reason


def test_force_starts_renewal_before_window():
    decision = decide(view(expires_in_days=300), SELF_SIGNED, "renew", NOW, 30, force=True)

    assert decision.action == START


def test_autorenew_waits_for_its_trigger():
    action = {"trigger": {"days_before_expiry": 10}, "action": {"action_type": "AutoRenew"}}

    waiting = decide(view(expires_in_days=20, lifetime_action=action), INTEGRATED_CA, "renew", NOW, 30)
    missed = decide(view(expires_in_days=8, lifetime_action=action), INTEGRATED_CA, "renew", NOW, 30)

    assert waiting.action == WAIT_FOR_AUTORENEW
    assert missed.action == START
    assert missed.autorenew_missed


def test_autorenew_percentage_trigger_is_measured_from_not_before():
    action = {"trigger": {"lifetime_percentage": 90}, "action": {"action_type": "AutoRenew"}}

    # 100-day lifetime: the trigger is 10 days before expiry, and the grace one day after it.
    before = decide(view(valid_days=100, expires_in_days=10.5, lifetime_action=action), SELF_SIGNED, "renew", NOW, 30)
    after = decide(view(valid_days=100, expires_in_days=8, lifetime_action=action), SELF_SIGNED, "renew", NOW, 30)

    assert before.action == WAIT_FOR_AUTORENEW
    assert after.action == START


def test_email_contacts_action_does_not_wait():
    action = {"trigger": {"lifetime_percentage": 80}, "action": {"action_type": "EmailContacts"}}

    decision = decide(view(expires_in_days=20, lifetime_action=action), SELF_SIGNED, "renew", NOW, 30)

    assert decision.action == START


def test_notify_mode_asks_a_person():
    decision = decide(view(expires_in_days=20), SELF_SIGNED, "notify", NOW, 30)

    assert decision.action == NOTIFY


def test_off_mode_skips():
    decision = decide(view(expires_in_days=-1), SELF_SIGNED, "off", NOW, 30)

    assert decision.action == SKIP


@pytest.mark.parametrize(
    ("tag", "kind", "expected_mode", "warns"),
    [
        (None, SELF_SIGNED, "renew", False),
        (None, OTHER_CA, "csr", False),
        ("Notify", SELF_SIGNED, "notify", False),
        ("renew", OTHER_CA, "csr", False),
        ("sometimes", INTEGRATED_CA, "notify", True),
    ],
)
def test_mode_comes_from_tag_with_defaults_by_kind(tag, kind, expected_mode, warns):
    tags = {"certrenew-mode": tag} if tag else {}

    mode, warning = effective_mode(tags, kind, DEFAULT_MODES)

    assert mode == expected_mode
    assert (warning is not None) == warns
