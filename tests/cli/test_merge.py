"""certrenew merge: the files CAs really hand out, checked locally, then merged through the SDK."""

import base64
from datetime import datetime, timedelta, timezone

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, pkcs7
from cryptography.x509.oid import NameOID

from shared.cli import EXIT_FAILED, EXIT_OK, EXIT_USAGE
from shared.merge import load_certificates, order_chain
from tests.support.harness import self_signed_policy


def pem(*certificates):
    return b"".join(certificate.public_bytes(Encoding.PEM) for certificate in certificates)


def merge_requests(app):
    return [entry for entry in app.app_requests() if entry["route"] == "POST /certificates/{name}/pending/merge"]


def leaf_for(pending_csr, test_ca, app, **options):
    return test_ca.issue(pending_csr.public_key(), app.now(), **options)


FORMATS = {
    "pem-leaf": lambda leaf, ca: pem(leaf),
    "pem-chain-shuffled": lambda leaf, ca: pem(ca.root, leaf, ca.intermediate),
    "der-leaf": lambda leaf, ca: leaf.public_bytes(Encoding.DER),
    "pkcs7-pem": lambda leaf, ca: pkcs7.serialize_certificates([ca.intermediate, leaf, ca.root], Encoding.PEM),
    "pkcs7-der": lambda leaf, ca: pkcs7.serialize_certificates([ca.root, ca.intermediate, leaf], Encoding.DER),
    "bare-base64": lambda leaf, ca: base64.encodebytes(leaf.public_bytes(Encoding.DER)),
}


@pytest.mark.parametrize("form", sorted(FORMATS))
def test_merge_accepts_ca_format(form, app, certrenew, pending_csr, test_ca, tmp_path):
    # GIVEN the certificate the CA signed for the pending CSR, in one of the forms CAs hand out
    leaf = leaf_for(pending_csr, test_ca, app)
    signed = tmp_path / "signed"
    signed.write_bytes(FORMATS[form](leaf, test_ca))

    # WHEN the operator merges it
    result = certrenew("merge", "--vault", "contoso-certs", "partner", str(signed))

    # THEN Key Vault has a version with exactly that certificate
    assert result.code == EXIT_OK, result.err
    merged = app.client().get_certificate("partner")
    assert merged.cer == leaf.public_bytes(Encoding.DER)
    assert f"version {merged.properties.version}" in result.out


def test_merge_reorders_shuffled_chain_leaf_first(app, certrenew, pending_csr, test_ca, tmp_path):
    leaf = leaf_for(pending_csr, test_ca, app)
    signed = tmp_path / "chain.pem"
    signed.write_bytes(pem(test_ca.root, leaf, test_ca.intermediate))

    result = certrenew("merge", "--vault", "contoso-certs", "partner", str(signed))

    assert result.code == EXIT_OK, result.err
    lines = [line.strip() for line in result.out.splitlines() if line.strip()[:2] in ("0:", "1:", "2:")]
    assert lines[0].startswith("0: leaf")
    assert "partner.contoso.test" in lines[0]
    assert lines[1].startswith("1: issuer")
    assert "Test Issuing CA" in lines[1]
    assert lines[2].startswith("2: issuer")
    assert "Test Root CA" in lines[2]


def test_order_chain_puts_leaf_then_issuers(app, pending_csr, test_ca):
    leaf = leaf_for(pending_csr, test_ca, app)
    certificates = load_certificates(pem(test_ca.intermediate, test_ca.root, leaf), "chain.pem")

    chain = order_chain(certificates, pending_csr, app.now())

    assert chain.certificates == [leaf, test_ca.intermediate, test_ca.root]
    assert chain.der_chain()[0] == leaf.public_bytes(Encoding.DER)


def test_merge_joins_leaf_and_chain_files(app, certrenew, pending_csr, test_ca, tmp_path):
    leaf = leaf_for(pending_csr, test_ca, app)
    (tmp_path / "intermediate.crt").write_bytes(test_ca.intermediate.public_bytes(Encoding.DER))
    (tmp_path / "leaf.pem").write_bytes(pem(leaf))

    result = certrenew("merge", "--vault", "contoso-certs", "partner",
                       str(tmp_path / "intermediate.crt"), str(tmp_path / "leaf.pem"))

    assert result.code == EXIT_OK, result.err
    assert "1: issuer" in result.out


def test_merge_rejects_mismatched_key(app, certrenew, pending_csr, test_ca, tmp_path):
    other_key = ec.generate_private_key(ec.SECP256R1())
    signed = tmp_path / "other.pem"
    signed.write_bytes(pem(test_ca.issue(other_key.public_key(), app.now())))

    result = certrenew("merge", "--vault", "contoso-certs", "partner", str(signed))

    assert result.code == EXIT_FAILED
    assert "No certificate in the files has the key of the pending CSR" in result.err
    assert "certrenew csr" in result.err
    assert merge_requests(app) == []


def test_merge_rejects_expired_leaf(app, certrenew, pending_csr, test_ca, tmp_path):
    expired = leaf_for(pending_csr, test_ca, app, not_before=app.now() - timedelta(days=100), days=30)
    signed = tmp_path / "expired.pem"
    signed.write_bytes(pem(expired))

    result = certrenew("merge", "--vault", "contoso-certs", "partner", str(signed))

    assert result.code == EXIT_FAILED
    assert "expired on" in result.err
    assert "sign the pending CSR again" in result.err
    assert merge_requests(app) == []


def test_merge_rejects_leaf_not_yet_valid(app, certrenew, pending_csr, test_ca, tmp_path):
    future = leaf_for(pending_csr, test_ca, app, not_before=app.now() + timedelta(days=2))
    signed = tmp_path / "future.pem"
    signed.write_bytes(pem(future))

    result = certrenew("merge", "--vault", "contoso-certs", "partner", str(signed))

    assert result.code == EXIT_FAILED
    assert "is not valid before" in result.err
    assert merge_requests(app) == []


def test_merge_rejects_names_not_in_policy(app, certrenew, pending_csr, test_ca, tmp_path):
    wrong = leaf_for(pending_csr, test_ca, app, dns_names=("other.contoso.test",), common_name="other.contoso.test")
    signed = tmp_path / "wrong-names.pem"
    signed.write_bytes(pem(wrong))

    result = certrenew("merge", "--vault", "contoso-certs", "partner", str(signed))

    assert result.code == EXIT_FAILED
    assert "does not cover CN=partner.contoso.test, DNS:partner.contoso.test" in result.err
    assert "It covers: CN=other.contoso.test, DNS:other.contoso.test" in result.err
    assert merge_requests(app) == []


def test_merge_accepts_wildcard_covering_policy(app, certrenew, pending_csr, test_ca, tmp_path):
    wildcard = leaf_for(pending_csr, test_ca, app, dns_names=("*.contoso.test",), common_name="*.contoso.test")
    signed = tmp_path / "wildcard.pem"
    signed.write_bytes(pem(wildcard, test_ca.intermediate))

    result = certrenew("merge", "--vault", "contoso-certs", "partner", str(signed))

    assert result.code == EXIT_OK, result.err


def test_merge_rejects_private_key_file(app, certrenew, pending_csr, test_ca, tmp_path):
    key = ec.generate_private_key(ec.SECP256R1())
    bundle = tmp_path / "bundle.pem"
    bundle.write_bytes(pem(leaf_for(pending_csr, test_ca, app))
                       + key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))

    result = certrenew("merge", "--vault", "contoso-certs", "partner", str(bundle))

    assert result.code == EXIT_FAILED
    assert "contains a private key" in result.err
    assert merge_requests(app) == []


def test_merge_rejects_file_that_is_not_certificate(app, certrenew, pending_csr, tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("Your certificate is attached.\n")

    result = certrenew("merge", "--vault", "contoso-certs", "partner", str(text))

    assert result.code == EXIT_FAILED
    assert "is not a certificate: expected PEM, DER, PKCS#7" in result.err


def test_merge_of_missing_file_is_usage_error(app, certrenew, pending_csr, tmp_path):
    result = certrenew("merge", "--vault", "contoso-certs", "partner", str(tmp_path / "nope.pem"))

    assert result.code == EXIT_USAGE
    assert "Cannot read" in result.err


def test_merge_without_pending_operation_says_how_to_start(app, certrenew, test_ca, tmp_path):
    key = ec.generate_private_key(ec.SECP256R1())
    signed = tmp_path / "signed.pem"
    signed.write_bytes(pem(test_ca.issue(key.public_key(), app.now())))
    app.client().begin_create_certificate("partner", self_signed_policy()).result()

    result = certrenew("merge", "--vault", "contoso-certs", "partner", str(signed))

    assert result.code == EXIT_FAILED
    assert "certrenew renew --vault contoso-certs partner --force" in result.err


def test_merge_records_history(app, certrenew, pending_csr, test_ca, tmp_path):
    signed = tmp_path / "signed.pem"
    signed.write_bytes(pem(leaf_for(pending_csr, test_ca, app), test_ca.intermediate))
    certrenew("merge", "--vault", "contoso-certs", "partner", str(signed))

    result = certrenew("history", "partner")

    assert "merged" in result.out
    assert "CN=Test Issuing CA" in result.out



def test_der_ending_in_whitespace_byte_is_read_whole():
    # GIVEN DER certificates whose last byte is one that bytes.strip() would remove
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "web.contoso.test")])
    now = datetime.now(timezone.utc)
    found = None
    for _ in range(2000):
        certificate = (
            x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now).not_valid_after(now + timedelta(days=1))
            .sign(key, hashes.SHA256())
        )
        der = certificate.public_bytes(Encoding.DER)
        if der[-1:] in (b"\x09", b"\x0a", b"\x0b", b"\x0c", b"\x0d", b"\x20"):
            found = (certificate, der)
            break
    assert found is not None, "no certificate with a trailing white-space byte was made"

    # WHEN merge reads the file
    [loaded] = load_certificates(found[1], "signed.cer")

    # THEN it is the whole certificate
    assert loaded == found[0]
