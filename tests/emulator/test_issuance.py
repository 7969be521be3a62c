"""Pending operations through the real SDK: issuer Unknown with merge, integrated CAs, cancel and delete."""

from __future__ import annotations

import pytest
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.core.rest import HttpRequest
from azure.keyvault.certificates import CertificatePolicy, KeyType
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from .helpers import der, self_signed


def unknown_policy(**kwargs) -> CertificatePolicy:
    return CertificatePolicy(issuer_name="Unknown", subject="CN=api.contoso.test", san_dns_names=["api.contoso.test"], **kwargs)


def digicert_policy(**kwargs) -> CertificatePolicy:
    return CertificatePolicy(issuer_name="digicert-ov", subject="CN=shop.contoso.test", **kwargs)


def start_unknown(client, name: str = "api", **kwargs):
    return client.begin_create_certificate(name, unknown_policy(), **kwargs).result()


@pytest.fixture
def digicert(client):
    client.create_issuer("digicert-ov", "DigiCert", account_id="acct-1", password="s3cret")


def post_create(client, name: str) -> None:
    """Send a DigiCert create request without the SDK's poller, whose background polls would count as checks."""
    body = {"policy": {"issuer": {"name": "digicert-ov"}, "x509_props": {"subject": "CN=shop.contoso.test"}}}
    answer = client.send_request(HttpRequest("POST", f"/certificates/{name}/create?api-version=7.6", json=body))
    assert answer.status_code == 202, answer.text()


def public_der(key) -> bytes:
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def test_unknown_issuer_gives_csr(client):
    operation = start_unknown(client)

    csr = x509.load_der_x509_csr(operation.csr)
    assert operation.status == "inProgress"
    assert operation.issuer_name == "Unknown"
    assert csr.is_signature_valid
    assert csr.subject.rfc4514_string() == "CN=api.contoso.test"
    assert operation.id.endswith("/certificates/api/pending")


def test_merge_with_matching_key_completes(client, emulator):
    # GIVEN a pending operation whose CSR the external CA signs
    operation = start_unknown(client, tags={"owner": "team-b"})
    signed = emulator.sign_csr(operation.csr)

    # WHEN the signed certificate and the CA are merged
    merged = client.merge_certificate("api", [der(signed), der(emulator.external_ca_certificate)])

    # THEN the new version contains that certificate and the operation is completed
    assert merged.cer == der(signed)
    assert merged.properties.enabled is True
    assert merged.properties.tags == {"owner": "team-b"}
    assert client.get_certificate("api").cer == der(signed)
    assert client.get_certificate_operation("api").status == "completed"


def test_merge_sets_tags_and_enabled(client, emulator):
    operation = start_unknown(client, tags={"owner": "team-b"})

    merged = client.merge_certificate("api", [der(emulator.sign_csr(operation.csr))], enabled=False, tags={"a": "1"})

    assert merged.properties.enabled is False
    assert merged.properties.tags == {"a": "1"}


def test_merge_with_other_key_is_rejected(client, emulator):
    start_unknown(client)
    stranger, _ = self_signed("CN=api.contoso.test", emulator.now(), 90)

    with pytest.raises(HttpResponseError) as caught:
        client.merge_certificate("api", [der(stranger)])

    assert caught.value.status_code == 400
    assert caught.value.error.code == "BadParameter"
    assert "key" in caught.value.error.message.lower()
    assert client.get_certificate_operation("api").status == "inProgress"


def test_merge_of_pem_text_is_rejected(client, emulator):
    operation = start_unknown(client)
    pem = emulator.sign_csr(operation.csr).public_bytes(serialization.Encoding.PEM)

    with pytest.raises(HttpResponseError) as caught:
        client.merge_certificate("api", [pem])
    assert caught.value.status_code == 400


def test_merge_with_nothing_pending_is_404(client, emulator):
    client.begin_create_certificate("web", CertificatePolicy.get_default(), _polling_interval=0).result()
    stranger, _ = self_signed("CN=x", emulator.now(), 30)

    with pytest.raises(ResourceNotFoundError) as caught:
        client.merge_certificate("web", [der(stranger)])
    assert caught.value.error.code == "PendingCertificateNotFound"


def test_second_create_while_pending_is_409(client):
    start_unknown(client)

    with pytest.raises(ResourceExistsError) as caught:
        client.begin_create_certificate("api", unknown_policy())

    assert caught.value.status_code == 409
    assert "pending" in caught.value.error.message


def test_get_latest_while_pending_shows_pending_version(client, emulator):
    # GIVEN a completed version and then a pending renewal through issuer Unknown
    first = start_unknown(client)
    client.merge_certificate("api", [der(emulator.sign_csr(first.csr))])
    current = client.get_certificate("api")
    start_unknown(client)

    # WHEN the latest version is read
    latest = client.get_certificate("api")

    # THEN it is the new, disabled version without a certificate; the listing keeps the completed one
    assert latest.properties.version != current.properties.version
    assert latest.cer is None
    assert latest.properties.enabled is False
    listed = {item.name: item for item in client.list_properties_of_certificates()}
    assert listed["api"].x509_thumbprint == current.properties.x509_thumbprint
    assert client.get_certificate_version("api", current.properties.version).cer == current.cer


def test_pending_only_certificate_listed_with_include_pending(client):
    start_unknown(client)

    assert [c.name for c in client.list_properties_of_certificates()] == []
    assert [c.name for c in client.list_properties_of_certificates(include_pending=True)] == ["api"]


def test_cancel_then_cancel_again_is_rejected(client):
    start_unknown(client)

    cancelled = client.cancel_certificate_operation("api")
    assert cancelled.cancellation_requested is True
    assert cancelled.status == "cancelled"

    with pytest.raises(HttpResponseError) as caught:
        client.cancel_certificate_operation("api")
    assert caught.value.status_code == 403


def test_delete_operation_allows_new_create(client):
    start_unknown(client)

    deleted = client.delete_certificate_operation("api")

    assert deleted.status == "inProgress"
    with pytest.raises(ResourceNotFoundError):
        client.get_certificate_operation("api")
    assert start_unknown(client).status == "inProgress"


def test_reuse_key_keeps_the_key(client, emulator):
    policy = unknown_policy(reuse_key=True, key_type=KeyType.ec)
    first = client.begin_create_certificate("api", policy).result()
    client.merge_certificate("api", [der(emulator.sign_csr(first.csr))])

    second = client.begin_create_certificate("api", policy).result()

    first_key = x509.load_der_x509_csr(first.csr).public_key()
    second_key = x509.load_der_x509_csr(second.csr).public_key()
    assert public_der(first_key) == public_der(second_key)


def test_new_key_without_reuse(client, emulator):
    first = start_unknown(client)
    client.merge_certificate("api", [der(emulator.sign_csr(first.csr))])

    second = start_unknown(client)

    first_key = x509.load_der_x509_csr(first.csr).public_key()
    assert public_der(first_key) != public_der(x509.load_der_x509_csr(second.csr).public_key())


def test_integrated_ca_completes_after_checks(client, emulator, digicert):
    # GIVEN a DigiCert issuer and the emulator's default of two status checks
    poller = client.begin_create_certificate("shop", digicert_policy(), _polling_interval=0)

    # WHEN the SDK polls the operation to the end
    created = poller.result()

    # THEN the certificate is signed by the emulator's test CA
    issued = x509.load_der_x509_certificate(created.cer)
    assert issued.issuer == emulator.test_ca_certificate.subject
    issued.verify_directly_issued_by(emulator.test_ca_certificate)
    checks = [e for e in emulator.request_log() if e["route"] == "GET /certificates/{name}/pending"]
    assert len(checks) == 2


def test_integrated_ca_counts_status_checks(client, emulator, digicert, monkeypatch):
    monkeypatch.setattr(emulator, "integrated_ca_checks", 3)
    post_create(client, "shop")

    statuses = [client.get_certificate_operation("shop").status for _ in range(3)]

    assert statuses == ["inProgress", "inProgress", "completed"]


def test_integrated_ca_completes_with_clock(client, emulator, digicert):
    post_create(client, "shop")
    assert client.get_certificate("shop").cer is None

    emulator.advance(seconds=60)

    assert client.get_certificate("shop").cer is not None


def test_merge_forbidden_while_integrated_ca_works(client, emulator, digicert):
    post_create(client, "shop")
    operation = client.get_certificate_operation("shop")

    with pytest.raises(HttpResponseError) as caught:
        client.merge_certificate("shop", [der(emulator.sign_csr(operation.csr))])
    assert caught.value.status_code == 403


def test_fail_next_issuance_fails_operation(client, emulator, digicert):
    emulator.fail_next_issuance("contoso-certs", "shop", "Request rejected", "Domain validation failed for shop.contoso.test.")

    result = client.begin_create_certificate("shop", digicert_policy(), _polling_interval=0).result()

    assert result.status == "failed"
    assert result.error.code == "Request rejected"
    assert result.error.message == "Domain validation failed for shop.contoso.test."
    # Only the next operation fails.
    retried = client.begin_create_certificate("shop", digicert_policy(), _polling_interval=0).result()
    assert retried.cer is not None


def test_failed_integrated_operation_can_be_merged(client, emulator, digicert):
    emulator.fail_next_issuance("contoso-certs", "shop", "Request rejected", "Rejected.")
    failed = client.begin_create_certificate("shop", digicert_policy(), _polling_interval=0).result()

    merged = client.merge_certificate("shop", [der(emulator.sign_csr(failed.csr))])

    assert merged.cer is not None


def test_integrated_ca_rejects_reused_key(client, digicert):
    # GIVEN a DigiCert certificate whose policy reuses the key
    policy = digicert_policy(reuse_key=True)
    client.begin_create_certificate("shop", policy, _polling_interval=0).result()

    # WHEN it is renewed with the same key
    renewal = client.begin_create_certificate("shop", policy, _polling_interval=0).result()

    # THEN the CA refuses the CSR it has seen before
    assert renewal.status == "failed"
    assert "already been used" in renewal.error.message


def test_unconfigured_issuer_is_400(client):
    with pytest.raises(HttpResponseError) as caught:
        client.begin_create_certificate("shop", digicert_policy())
    assert caught.value.status_code == 400
