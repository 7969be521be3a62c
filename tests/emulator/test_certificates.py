"""Certificates through the real SDK: self-signed creation, reads, paging, updates, policy and deletion."""

from __future__ import annotations

import base64
import hashlib

import pytest
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.core.rest import HttpRequest
from azure.keyvault.certificates import (
    CertificatePolicy,
    CertificatePolicyAction,
    KeyCurveName,
    KeyType,
    LifetimeAction,
)
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from .helpers import make_client


def self_policy(**kwargs) -> CertificatePolicy:
    return CertificatePolicy(issuer_name="Self", subject=kwargs.pop("subject", "CN=www.contoso.test"), **kwargs)


def test_self_signed_create_completes(client, emulator):
    # GIVEN a Self policy with an EC key, SANs and a validity of 6 months
    policy = self_policy(
        key_type=KeyType.ec, key_curve_name=KeyCurveName.p_384, san_dns_names=["www.contoso.test", "contoso.test"],
        validity_in_months=6,
    )

    # WHEN the certificate is created and polled to the end
    poller = client.begin_create_certificate("web", policy, tags={"owner": "team-a"}, _polling_interval=0)
    created = poller.result()

    # THEN a real self-signed certificate with that key and those names comes back
    issued = x509.load_der_x509_certificate(created.cer)
    assert issued.subject == issued.issuer
    assert isinstance(issued.public_key(), ec.EllipticCurvePublicKey)
    assert issued.public_key().curve.name == "secp384r1"
    sans = issued.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["www.contoso.test", "contoso.test"]
    assert issued.not_valid_before_utc == emulator.now()
    assert issued.not_valid_after_utc.month == 7
    assert created.properties.tags == {"owner": "team-a"}
    assert created.properties.x509_thumbprint == hashlib.sha1(created.cer).digest()
    assert created.policy.issuer_name == "Self"


def test_create_answers_in_progress_first(client):
    poller = client.begin_create_certificate("web", self_policy(), _polling_interval=0)

    assert poller.status() == "inprogress"
    operation = client.get_certificate_operation("web")
    assert operation.status == "completed"
    assert operation.target.endswith("/certificates/web")
    assert poller.result().name == "web"


def test_default_policy_is_rsa_2048(client):
    created = client.begin_create_certificate("web", self_policy(), _polling_interval=0).result()

    key = x509.load_der_x509_certificate(created.cer).public_key()
    assert isinstance(key, rsa.RSAPublicKey)
    assert key.key_size == 2048
    assert created.policy.key_type == "RSA"
    assert created.policy.content_type == "application/x-pkcs12"
    assert created.policy.validity_in_months == 12


def test_ids_use_the_vault_url(client, emulator):
    created = client.begin_create_certificate("web", self_policy(), _polling_interval=0).result()

    base = emulator.vault_url("contoso-certs")
    version = created.properties.version
    assert len(version) == 32
    assert version == version.lower()
    assert created.id == f"{base}/certificates/web/{version}"
    assert created.key_id == f"{base}/keys/web/{version}"
    assert created.secret_id == f"{base}/secrets/web/{version}"
    assert created.properties.vault_url == base


def test_get_version_has_no_policy(client):
    first = client.begin_create_certificate("web", self_policy(), _polling_interval=0).result()
    client.begin_create_certificate("web", self_policy(), _polling_interval=0).result()

    latest = client.get_certificate("web")
    old = client.get_certificate_version("web", first.properties.version)

    assert latest.properties.version != first.properties.version
    assert latest.policy is not None
    assert old.policy is None
    assert old.cer == first.cer


def test_missing_certificate_is_404(client):
    with pytest.raises(ResourceNotFoundError, match="not found"):
        client.get_certificate("absent")
    with pytest.raises(ResourceNotFoundError):
        client.get_certificate_version("absent", "0" * 32)


def test_list_pages_past_25(client, emulator):
    # GIVEN 60 certificates
    emulator.seed_certificates("contoso-certs", 60)
    emulator.clear_request_log()

    # WHEN they are listed
    names = [item.name for item in client.list_properties_of_certificates()]

    # THEN all come back, sorted, over three pages with absolute nextLinks
    assert len(names) == 60
    assert names == sorted(names)
    pages = [e for e in emulator.request_log("contoso-certs") if e["route"] == "GET /certificates" and e["status"] == 200]
    assert len(pages) == 3


def test_list_honours_maxresults(client, emulator):
    emulator.seed_certificates("contoso-certs", 7)
    pages = list(client.list_properties_of_certificates(max_page_size=3).by_page())

    assert [len(list(page)) for page in pages] == [3, 3, 1]


def test_list_versions_pages(client, emulator):
    for _ in range(3):
        client.begin_create_certificate("web", self_policy(), _polling_interval=0).result()

    versions = list(client.list_properties_of_certificate_versions("web", max_page_size=2))

    assert len(versions) == 3
    assert len({v.version for v in versions}) == 3
    assert all(v.x509_thumbprint for v in versions)


def test_vaults_are_separate(emulator):
    contoso, fabrikam = make_client(emulator, "contoso-certs"), make_client(emulator, "fabrikam-certs")
    contoso.begin_create_certificate("web", self_policy(), _polling_interval=0).result()

    with pytest.raises(ResourceNotFoundError):
        fabrikam.get_certificate("web")
    assert emulator.vault_url("contoso-certs") != emulator.vault_url("fabrikam-certs")


def test_tags_and_enabled_belong_to_each_version(client):
    # GIVEN two versions, the first with tags
    first = client.begin_create_certificate("web", self_policy(), tags={"env": "prod"}, _polling_interval=0).result()
    second = client.begin_create_certificate("web", self_policy(), _polling_interval=0).result()

    # WHEN the first version is disabled and retagged
    updated = client.update_certificate_properties("web", first.properties.version, enabled=False, tags={"env": "old"})

    # THEN only that version changed, and the new version carries no tags from the old one
    assert updated.properties.enabled is False
    assert updated.properties.tags == {"env": "old"}
    latest = client.get_certificate("web")
    assert latest.properties.version == second.properties.version
    assert latest.properties.enabled is True
    assert latest.properties.tags == {}


def test_update_without_version_changes_latest(client):
    client.begin_create_certificate("web", self_policy(), _polling_interval=0).result()

    updated = client.update_certificate_properties("web", tags={"owner": "ops"})

    assert client.get_certificate("web").properties.tags == {"owner": "ops"}
    assert updated.properties.tags == {"owner": "ops"}


def test_policy_update_keeps_other_fields(client):
    client.begin_create_certificate("web", self_policy(validity_in_months=3), _polling_interval=0).result()

    changed = client.update_certificate_policy(
        "web",
        CertificatePolicy(lifetime_actions=[LifetimeAction(CertificatePolicyAction.auto_renew, days_before_expiry=20)]),
    )

    assert changed.lifetime_actions[0].action == CertificatePolicyAction.auto_renew
    assert changed.lifetime_actions[0].days_before_expiry == 20
    assert changed.validity_in_months == 3
    assert client.get_certificate_policy("web").subject == "CN=www.contoso.test"


def test_create_with_policy_replaces_policy(client):
    client.begin_create_certificate("web", self_policy(), _polling_interval=0).result()
    client.begin_create_certificate("web", self_policy(subject="CN=new.contoso.test"), _polling_interval=0).result()

    assert client.get_certificate_policy("web").subject == "CN=new.contoso.test"


def test_invalid_policy_is_400(client):
    policy = self_policy(lifetime_actions=[LifetimeAction(CertificatePolicyAction.auto_renew, lifetime_percentage=100)])

    with pytest.raises(HttpResponseError) as caught:
        client.begin_create_certificate("web", policy)

    assert caught.value.status_code == 400
    assert caught.value.error.code == "BadParameter"


def test_invalid_name_is_400(client):
    with pytest.raises(HttpResponseError) as caught:
        client.get_certificate("bad_name")
    assert caught.value.status_code == 400


def test_delete_then_recover_and_purge(client):
    client.begin_create_certificate("web", self_policy(), _polling_interval=0).result()

    deleted = client.begin_delete_certificate("web", _polling_interval=0).result()
    assert deleted.recovery_id.endswith("/deletedcertificates/web")
    with pytest.raises(ResourceNotFoundError):
        client.get_certificate("web")
    with pytest.raises(ResourceExistsError) as caught:
        client.begin_create_certificate("web", self_policy())
    assert caught.value.error.code == "ObjectIsDeletedButRecoverable"

    recovered = client.begin_recover_deleted_certificate("web", _polling_interval=0).result()
    assert recovered.name == "web"
    client.begin_delete_certificate("web", _polling_interval=0).result()
    client.purge_deleted_certificate("web")
    with pytest.raises(ResourceNotFoundError):
        client.get_deleted_certificate("web")
    client.begin_create_certificate("web", self_policy(), _polling_interval=0).result()


def test_list_deleted_certificates(client):
    client.begin_create_certificate("web", self_policy(), _polling_interval=0).result()
    client.begin_delete_certificate("web", _polling_interval=0).result()

    assert [item.name for item in client.list_deleted_certificates()] == ["web"]


def test_unknown_route_is_keyvault_404(client):
    answer = client.send_request(HttpRequest("GET", "/nothing-here?api-version=7.6"))

    assert answer.status_code == 404
    assert set(answer.json()["error"]) >= {"code", "message"}


def test_thumbprint_is_base64url_sha1(client):
    created = client.begin_create_certificate("web", self_policy(), _polling_interval=0).result()
    answer = client.send_request(HttpRequest("GET", "/certificates/web/?api-version=7.6"))

    expected = base64.urlsafe_b64encode(hashlib.sha1(created.cer).digest()).decode().rstrip("=")
    assert answer.json()["x5t"] == expected
    assert set(answer.json()["attributes"]) >= {"enabled", "nbf", "exp", "created", "updated", "recoveryLevel"}


def test_list_with_pending_keeps_filter_on_later_pages(emulator, client):
    # GIVEN 30 completed certificates and one whose only version is pending, sorted onto the second page
    emulator.seed_certificates("contoso-certs", 30, prefix="done")
    client.begin_create_certificate("zz-pending", CertificatePolicy(issuer_name="Unknown", subject="CN=zz"))

    # WHEN the list requests pending certificates too
    names = [item.name for item in client.list_properties_of_certificates(include_pending=True, max_page_size=25)]

    # THEN the second page still includes it
    assert len(names) == 31
    assert "zz-pending" in names


def test_policy_subject_with_spaces_after_commas_is_accepted(client):
    policy = CertificatePolicy(issuer_name="Self", subject="CN=web.contoso.test, O=Contoso, C=US")

    certificate = client.begin_create_certificate("spaced", policy).result()

    subject = x509.load_der_x509_certificate(certificate.cer).subject.rfc4514_string()
    assert subject == "CN=web.contoso.test,O=Contoso,C=US"
