"""Import of PFX and PEM, certificate contacts and issuers through the real SDK."""

from __future__ import annotations

import datetime as dt

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.keyvault.certificates import (
    AdministratorContact,
    CertificateContact,
    CertificateContentType,
    CertificatePolicy,
)
from cryptography.hazmat.primitives import serialization

from .helpers import der, pem_bytes, pfx_bytes, self_signed


def test_import_pfx_without_policy_generates_one(client, emulator):
    # GIVEN a password-protected PFX valid for 365 days with two DNS names
    certificate, key = self_signed("CN=legacy.contoso.test", emulator.now(), 365, ["legacy.contoso.test", "old.contoso.test"])

    # WHEN it is imported without a policy
    imported = client.import_certificate("legacy", pfx_bytes(certificate, key, b"pw"), password="pw", tags={"src": "pfx"})

    # THEN the version contains it, and the generated policy describes it with issuer Unknown
    assert imported.cer == der(certificate)
    assert imported.properties.tags == {"src": "pfx"}
    assert imported.properties.expires_on == certificate.not_valid_after_utc
    policy = imported.policy
    assert policy.issuer_name == "Unknown"
    assert policy.subject == "CN=legacy.contoso.test"
    assert policy.san_dns_names == ["legacy.contoso.test", "old.contoso.test"]
    assert policy.key_type == "EC"
    assert policy.key_curve_name == "P-256"
    assert policy.validity_in_months == 12
    assert policy.content_type == CertificateContentType.pkcs12
    assert policy.lifetime_actions[0].lifetime_percentage == 80
    assert policy.lifetime_actions[0].action == "EmailContacts"


def test_import_pem_without_policy(client, emulator):
    certificate, key = self_signed("CN=pem.contoso.test", emulator.now(), 90)

    imported = client.import_certificate("pem", pem_bytes(certificate, key))

    assert imported.cer == der(certificate)
    assert imported.policy.content_type == CertificateContentType.pem


def test_import_pem_with_policy(client, emulator):
    certificate, key = self_signed("CN=pem.contoso.test", emulator.now(), 90)
    policy = CertificatePolicy(issuer_name="Unknown", subject="CN=pem.contoso.test", content_type=CertificateContentType.pem)

    imported = client.import_certificate("pem", pem_bytes(certificate, key), policy=policy)

    assert imported.policy.content_type == CertificateContentType.pem
    assert client.get_certificate_policy("pem").subject == "CN=pem.contoso.test"


def test_import_pfx_with_policy(client, emulator):
    certificate, key = self_signed("CN=pfx.contoso.test", emulator.now(), 90)
    policy = CertificatePolicy(issuer_name="Unknown", subject="CN=pfx.contoso.test", validity_in_months=3)

    imported = client.import_certificate("pfx", pfx_bytes(certificate, key, None), policy=policy)

    assert imported.policy.validity_in_months == 3
    assert imported.cer == der(certificate)


def test_import_with_wrong_password_is_400(client, emulator):
    certificate, key = self_signed("CN=x", emulator.now(), 90)

    with pytest.raises(HttpResponseError) as caught:
        client.import_certificate("x", pfx_bytes(certificate, key, b"right"), password="wrong")
    assert caught.value.status_code == 400


def test_import_without_private_key_is_400(client, emulator):
    certificate, _ = self_signed("CN=x", emulator.now(), 90)

    with pytest.raises(HttpResponseError) as caught:
        client.import_certificate("x", certificate.public_bytes(serialization.Encoding.PEM))
    assert caught.value.status_code == 400


def test_import_adds_a_version(client, emulator):
    old, old_key = self_signed("CN=x", emulator.now() - dt.timedelta(days=300), 365)
    new, new_key = self_signed("CN=x", emulator.now(), 365)
    client.import_certificate("x", pfx_bytes(old, old_key, None))

    client.import_certificate("x", pfx_bytes(new, new_key, None))

    assert len(list(client.list_properties_of_certificate_versions("x"))) == 2
    assert client.get_certificate("x").cer == der(new)


def test_contacts_round_trip(client):
    assert client.get_contacts() == []

    contacts = [CertificateContact(email="pki@contoso.test", name="PKI team", phone="555-0100")]
    stored = client.set_contacts(contacts)

    assert [(c.email, c.name, c.phone) for c in stored] == [("pki@contoso.test", "PKI team", "555-0100")]
    assert [c.email for c in client.get_contacts()] == ["pki@contoso.test"]
    assert [c.email for c in client.delete_contacts()] == ["pki@contoso.test"]
    assert client.get_contacts() == []


def test_issuer_lifecycle_hides_password(client):
    admin = AdministratorContact(first_name="Ada", last_name="Admin", email="ada@contoso.test", phone="555-0101")
    created = client.create_issuer(
        "digicert-ov", "DigiCert", account_id="acct-1", password="s3cret", organization_id="org-1", admin_contacts=[admin]
    )

    assert created.provider == "DigiCert"
    assert created.account_id == "acct-1"
    assert created.password is None
    assert created.admin_contacts[0].email == "ada@contoso.test"

    updated = client.update_issuer("digicert-ov", enabled=False, account_id="acct-2")
    assert updated.enabled is False
    assert updated.account_id == "acct-2"
    assert [i.name for i in client.list_properties_of_issuers()] == ["digicert-ov"]

    deleted = client.delete_issuer("digicert-ov")
    assert deleted.name == "digicert-ov"
    with pytest.raises(ResourceNotFoundError):
        client.get_issuer("digicert-ov")


def test_issuer_with_unknown_provider_is_400(client):
    with pytest.raises(HttpResponseError) as caught:
        client.create_issuer("mystery", "MysteryCA")
    assert caught.value.status_code == 400
