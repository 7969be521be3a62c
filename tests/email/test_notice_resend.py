"""Notices lost between the journal and the queue are queued again by the timer, and emailed once."""

import logging

from shared import notices as kinds
from tests.support.harness import notice_kinds, self_signed_policy


def start_renewal(email_app):
    """Create a self-signed certificate, move to 25 days before expiry and deliver its NearExpiry event."""
    app = email_app.app
    client = app.client()
    client.begin_create_certificate("web", self_signed_policy()).result()
    app.deliver_new_events()
    expires_on = client.get_certificate("web").properties.expires_on
    app.advance(days=(expires_on - app.now()).total_seconds() / 86400 - 25)
    [started] = app.deliver_new_events()
    return started


def test_notice_that_never_reached_email_is_queued_again(email_app):
    # GIVEN a renewal-started notice that the queue lost: the email function never saw it
    started = start_renewal(email_app)
    app = email_app.app

    # WHEN the timer runs before and after the resend delay
    early = app.run_timer()
    app.advance(days=31 / 1440)
    late = app.run_timer()

    # THEN only the late run queues the same notice again, and the email function sends it once
    assert started.kind == kinds.RENEWAL_STARTED
    assert started.id not in [n.id for n in early]
    [resent] = [n for n in late if n.id == started.id]
    assert email_app.deliver(resent) is None
    assert email_app.deliver(started) is None
    assert len(email_app.acs.messages) == 1


def test_notice_received_by_email_is_not_queued_again(email_app):
    started = start_renewal(email_app)
    app = email_app.app
    assert email_app.deliver(started) is None

    app.advance(days=31 / 1440)
    resent = [n for n in app.run_timer() if n.id == started.id]

    assert resent == []
    assert len(email_app.acs.messages) == 1


def test_lost_notice_is_given_up_after_three_resends(email_app, caplog):
    started = start_renewal(email_app)
    app = email_app.app

    resends = []
    for _ in range(5):
        app.advance(days=31 / 1440)
        resends += [n for n in app.run_timer() if n.id == started.id]

    assert len(resends) == 3
    assert any("never reached the email function after 3 resends" in r.getMessage()
               for r in caplog.records if r.levelno == logging.ERROR)


def test_no_resend_without_email_settings(app):
    client = app.client()
    client.begin_create_certificate("web", self_signed_policy()).result()
    app.deliver_new_events()
    expires_on = client.get_certificate("web").properties.expires_on
    app.advance(days=(expires_on - app.now()).total_seconds() / 86400 - 25)
    [started] = app.deliver_new_events()

    app.advance(days=1)
    notices = app.run_timer()

    assert started.id not in [n.id for n in notices]
    assert kinds.RENEWAL_STARTED not in notice_kinds(notices)
