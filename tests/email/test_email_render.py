"""Rendering of notices into emails: subjects, both bodies, the CSR attachment and escaping."""

from __future__ import annotations

import base64
import re
from html.parser import HTMLParser

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from shared import notices as kinds
from shared.email.render import build_subject, expiry_phrase, render_notice

from email_support import load_notice

# For each kind: the tag and a part of the state that the subject must show.
SUBJECTS = {
    kinds.RENEWAL_STARTED: ("[Renewing]", "has started: current version expires in 25 days"),
    kinds.CSR_WAITING: ("[Action needed]", "Get the CSR for partner-api in contoso-certs signed"),
    kinds.RENEWED: ("[Renewed]", "new version valid until 2031-12-07"),
    kinds.RENEWAL_FAILED: ("[Failed]", "failed (Forbidden): current version expires in 25 days"),
    kinds.MANUAL_RENEWAL_DUE: ("[Action needed]", "Renew legacy-sftp in contoso-certs by hand: it expires in 14 days"),
    kinds.REMINDER: ("[Reminder]", "CSR for partner-api in contoso-certs is still not signed"),
    kinds.EXPIRED: ("[Expired]", "legacy-sftp in contoso-certs expired on 2030-02-01"),
}


class _TagCollector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.links: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.links += [value for name, value in attrs if name in ("href", "src")]


def parse_html(html: str) -> _TagCollector:
    collector = _TagCollector()
    collector.feed(html)
    return collector


def make_csr_pem(common_name: str) -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    request = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .sign(key, hashes.SHA256())
    )
    return request.public_bytes(Encoding.PEM).decode("ascii")


@pytest.mark.parametrize("kind", kinds.KINDS)
def test_subject_names_certificate_vault_and_state(kind):
    notice = load_notice(kind)
    tag, state = SUBJECTS[kind]

    subject = build_subject(notice)

    assert subject.startswith(tag + " ")
    assert notice.certificate.name in subject
    assert notice.vault_name in subject
    assert state in subject


@pytest.mark.parametrize("kind", kinds.KINDS)
def test_both_bodies_show_certificate_facts(kind):
    notice = load_notice(kind)
    certificate = notice.certificate

    email = render_notice(notice)

    for body in (email.html, email.plain_text):
        assert certificate.name in body
        assert notice.vault_name in body
        assert certificate.subject in body
        assert certificate.dns_names[0] in body
        assert certificate.version in body
        assert certificate.thumbprint in body
        assert expiry_phrase(certificate.days_left) in body
        assert certificate.expires_on[:10] in body
        assert notice.summary.replace("'", "&#39;") in body or notice.summary in body
        assert "What happens next" in body
    assert certificate.portal_url in email.plain_text
    assert certificate.portal_url in parse_html(email.html).links


@pytest.mark.parametrize("kind", kinds.KINDS)
def test_html_has_no_script_remote_images_or_leftovers(kind):
    email = render_notice(load_notice(kind))

    parsed = parse_html(email.html)

    assert "script" not in parsed.tags
    assert "img" not in parsed.tags
    assert "style" not in parsed.tags, "mail clients drop <style>; styles must be inline"
    assert all(link.startswith("https://portal.azure.com/") for link in parsed.links)
    for body in (email.html, email.plain_text):
        assert "{{" not in body
        assert "{%" not in body


def test_renewed_shows_old_and_new_version():
    notice = load_notice(kinds.RENEWED)
    renewal = notice.renewal

    email = render_notice(notice)

    for body in (email.html, email.plain_text):
        assert renewal.previous_thumbprint in body
        assert renewal.new_thumbprint in body
        assert renewal.previous_version in body
        assert "2031-01-01 00:00 UTC" in body, "previous expiry"
        assert "2031-12-07 00:00 UTC" in body, "new expiry"


def test_failure_shows_code_message_and_remedy():
    notice = load_notice(kinds.RENEWAL_FAILED)

    email = render_notice(notice)

    for body in (email.html, email.plain_text):
        assert "Forbidden" in body
        assert "does not have certificates create permission" in body
        assert "Key Vault Certificates Officer role" in body
        assert "The app tries again after 2030-12-08 00:00 UTC." in body
        assert body.count("Key Vault Certificates Officer role") == 1, "the remedy is shown once"


def test_waiting_csr_is_attached_with_merge_steps():
    notice = load_notice(kinds.CSR_WAITING)

    email = render_notice(notice)

    [attachment] = email.attachments
    assert attachment.name == "partner-api.csr"
    assert attachment.content_type == "application/pkcs10"
    csr = x509.load_pem_x509_csr(attachment.content)
    assert csr.is_signature_valid
    assert csr.subject.rfc4514_string() == "CN=partner-api.contoso.test"
    for body in (email.html, email.plain_text):
        assert "certrenew merge --vault contoso-certs partner-api SIGNED.pem" in body
        assert "Merge Signed Request" in body
        assert "this same pending request" in body
        assert "partner-api.csr" in body


def test_csr_reminder_attaches_csr_and_next_reminder():
    notice = load_notice(kinds.REMINDER)

    email = render_notice(notice)

    assert [attachment.name for attachment in email.attachments] == ["partner-api.csr"]
    for body in (email.html, email.plain_text):
        assert "Next reminder: 2030-12-29 00:00 UTC." in body


def test_started_renewal_attaches_no_csr():
    notice = load_notice(kinds.RENEWAL_STARTED)
    assert notice.csr_pem, "the sample carries the integrated CA's CSR"

    email = render_notice(notice)

    assert email.attachments == ()
    assert "BEGIN CERTIFICATE REQUEST" not in email.html


def test_attachment_base64_round_trips():
    notice = load_notice(kinds.CSR_WAITING)

    [attachment] = render_notice(notice).attachments

    assert base64.b64decode(attachment.to_acs()["contentInBase64"]) == notice.csr_pem.encode("ascii")


def test_hostile_certificate_fields_are_escaped():
    hostile = '<script>alert("x")</script>\'"&'
    notice = load_notice(
        kinds.CSR_WAITING,
        certificate={
            "name": "web\r\nBcc: victim@evil.test",
            "subject": f"CN={hostile}",
            "dns_names": [f"{hostile}.contoso.test"],
            "owners": [hostile],
            "portal_url": 'https://portal.azure.com/#x" onmouseover="alert(1)',
            "issuer": hostile,
        },
        summary=f"Summary {hostile}\r\nX-Injected: yes",
        next_step=hostile,
        csr_pem=make_csr_pem("web"),
    )

    email = render_notice(notice)

    assert "\r" not in email.subject
    assert "\n" not in email.subject
    assert "Bcc: victim@evil.test" in email.subject, "the text stays, on the same line"
    parsed = parse_html(email.html)
    assert "script" not in parsed.tags
    assert "<script>" not in email.html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;&#39;&#34;&amp;" in email.html
    assert parsed.links == ['https://portal.azure.com/#x" onmouseover="alert(1)'], "the quote stays inside href"
    assert 'onmouseover="alert(1)"' not in email.html
    assert [attachment.name for attachment in email.attachments] == ["web-Bcc-victim-evil-test.csr"]


def test_non_https_portal_link_is_left_out():
    notice = load_notice(kinds.RENEWED, certificate={"portal_url": "javascript:alert(1)"})

    email = render_notice(notice)

    assert parse_html(email.html).links == []
    assert "javascript:" not in email.html
    assert "javascript:" not in email.plain_text


def test_dry_run_is_marked_in_subject_and_body():
    notice = load_notice(kinds.RENEWAL_STARTED, dry_run=True)

    email = render_notice(notice)

    assert email.subject.startswith("[Dry run] [Renewing] ")
    assert "dry-run mode" in email.html
    assert "dry-run mode" in email.plain_text


@pytest.mark.parametrize(
    ("days_left", "phrase"),
    [(12, "expires in 12 days"), (1, "expires in 1 day"), (0, "expires today"), (-1, "expired 1 day ago"),
     (-5, "expired 5 days ago"), (None, "has no known expiry")],
)
def test_expiry_phrase(days_left, phrase):
    assert expiry_phrase(days_left) == phrase


def test_subject_is_cut_to_200_characters():
    notice = load_notice(kinds.RENEWED, certificate={"name": "a" * 300})

    assert len(build_subject(notice)) == 200


def test_plain_text_lines_have_no_html():
    email = render_notice(load_notice(kinds.RENEWAL_FAILED))

    assert not re.search(r"</?(table|td|tr|p|a)\b", email.plain_text)
    assert "&#39;" not in email.plain_text
    assert "&amp;" not in email.plain_text
