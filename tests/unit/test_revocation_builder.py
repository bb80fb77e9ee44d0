"""CRLs → revocation set: reasons, several CRLs per issuer, refusals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from terminald.backoffice.revocation_builder import (
    CrlRefused,
    build_revocation_set,
    read_crl,
    trusted_crl_signers,
)
from terminald.pki.anchors import key_identifier
from terminald.sim.crl import CaKey, CrlEntry, make_crl, synthetic_serials

NOW = datetime(2026, 1, 10, tzinfo=UTC)
R = x509.ReasonFlags


def make_ca(name: str = "JPKI-TEST root") -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
    # RSA with BasicConstraints: usable as a trust anchor (--trust), like the J-LIS roots.
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(NOW - timedelta(days=1))
        .not_valid_after(NOW + timedelta(days=3650))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    return cert, key


CA, CA_KEY = make_ca()
OTHER_CA, OTHER_KEY = make_ca()  # same DN, different key: like the J-LIS generations


def crl(
    entries: list[tuple[int, x509.ReasonFlags | None]],
    *,
    ca: x509.Certificate = CA,
    key: CaKey = CA_KEY,
    crl_number: int = 1,
    with_authority_key_id: bool = True,
) -> bytes:
    listed = [CrlEntry(s, r) for s, r in entries]
    later = NOW + timedelta(days=1)
    return make_crl(ca, key, listed, NOW, later, crl_number, with_authority_key_id)


def test_every_reason_code_maps_to_revoked_hold_or_release() -> None:
    entries = [
        (1, R.key_compromise),
        (2, R.affiliation_changed),
        (3, R.superseded),
        (4, R.cessation_of_operation),
        (5, R.certificate_hold),
        (6, R.remove_from_crl),
        (7, R.privilege_withdrawn),
        (8, R.aa_compromise),
        (9, R.ca_compromise),
        (10, R.unspecified),
        (11, None),
    ]
    contents = read_crl(crl(entries), "test.crl", [CA])
    assert contents.issuer_key_id == key_identifier(CA)
    assert list(contents.revoked) == [1, 2, 3, 4, 7, 8, 9, 10, 11]
    assert list(contents.hold) == [5]
    assert list(contents.released) == [6]


def test_several_crls_merge_per_issuer_key() -> None:
    a1 = read_crl(crl([(1, R.superseded), (2, R.certificate_hold)]), "a1")
    a2 = read_crl(crl([(3, R.superseded), (2, R.key_compromise)], crl_number=2), "a2")
    a3 = read_crl(crl([(4, R.certificate_hold), (5, R.certificate_hold)]), "a3")
    a4 = read_crl(crl([(5, R.remove_from_crl)]), "a4")
    b = read_crl(crl([(1, R.certificate_hold)], ca=OTHER_CA, key=OTHER_KEY), "b")
    built = build_revocation_set([a1, a2, a3, a4, b])
    a = built.issuers[key_identifier(CA)]
    assert list(a.revoked) == [1, 2, 3]  # revoked wins over hold for serial 2
    assert list(a.hold) == [4]  # 5 was released
    other = built.issuers[key_identifier(OTHER_CA)]
    assert (list(other.revoked), list(other.hold)) == ([], [1])


def test_an_empty_crl_still_covers_its_issuer() -> None:
    built = build_revocation_set([read_crl(crl([]), "empty")])
    assert built.status(key_identifier(CA), 5) == "good"
    assert built.status(key_identifier(OTHER_CA), 5) is None


def test_crl_without_authority_key_identifier_is_refused() -> None:
    with pytest.raises(CrlRefused, match="no Authority Key Identifier"):
        read_crl(crl([(1, None)], with_authority_key_id=False), "noaki.crl")


def test_signature_is_checked_against_the_issuer_with_that_key_id() -> None:
    data = crl([(1, None)])
    read_crl(data, "ok", [OTHER_CA, CA])
    with pytest.raises(CrlRefused, match="none of the given issuer certificates"):
        read_crl(data, "x.crl", [OTHER_CA])
    # Same AKI, signed by another key: a forged CRL.
    forged = crl([(1, None)], key=OTHER_KEY)
    with pytest.raises(CrlRefused, match="signature does not verify"):
        read_crl(forged, "forged.crl", [CA])


def test_serial_beyond_32_bits_and_garbage_are_refused() -> None:
    with pytest.raises(CrlRefused, match="does not fit in 32 bits"):
        read_crl(crl([(2**32, None)]), "big.crl")
    with pytest.raises(CrlRefused, match=r"not a DER X\.509 CRL"):
        read_crl(b"\x30\x03\x02\x01\x00", "junk.crl")


@pytest.mark.parametrize("distribution", ["uniform", "clustered"])
def test_synthetic_serials_have_the_requested_count_and_range(distribution: str) -> None:
    rng = np.random.default_rng(3)
    serials = synthetic_serials(100_000, 0.05, distribution, rng, first_serial=1000)
    assert abs(serials.size - 5000) <= 50
    assert serials.min() >= 1000 and serials.max() < 101_000
    assert np.all(np.diff(serials) > 0)
    if distribution == "clustered":  # the last slice is far denser than the first
        assert np.sum(serials >= 100_000) > 20 * max(1, np.sum(serials < 2000))


# -- which --issuer-cert certificates may vouch for a CRL ----------------------------------


def _fake_of(ca: x509.Certificate) -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
    """The reviewer's forgery: self-signed, ca's name, and an SKI claiming ca's key id."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cert = (
        x509.CertificateBuilder()
        .subject_name(ca.subject)
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(2)
        .not_valid_before(NOW - timedelta(days=1))
        .not_valid_after(NOW + timedelta(days=30))
        .add_extension(x509.SubjectKeyIdentifier(key_identifier(ca)), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def _issued_by_ca(ski: bytes | None = None, *, is_ca: bool = True) -> x509.Certificate:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "CRL signer")]))
        .issuer_name(CA.subject)
        .public_key(key.public_key())
        .serial_number(3)
        .not_valid_before(NOW - timedelta(days=1))
        .not_valid_after(NOW + timedelta(days=30))
        .add_extension(
            x509.SubjectKeyIdentifier(ski)
            if ski is not None
            else x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
            False,
        )
        .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), True)
    )
    return builder.sign(CA_KEY, hashes.SHA256())


def test_a_self_signed_lookalike_issuer_cert_is_refused() -> None:
    fake, fake_key = _fake_of(CA)
    with pytest.raises(CrlRefused, match=r"not a trust anchor .* nor issued by one"):
        trusted_crl_signers([("fake-gen3.pem", fake)], [CA, OTHER_CA], NOW)
    # What it would have let through: an empty CRL signed by the fake key, with CA's AKI.
    forged = make_crl(fake, fake_key, [], NOW, NOW + timedelta(days=1))
    with pytest.raises(CrlRefused, match="signature does not verify"):
        read_crl(forged, "fake.crl", [CA])


def test_an_anchor_given_as_issuer_cert_is_matched_by_public_key() -> None:
    # A copy of the anchor (even with another name or SKI) stands for the anchor itself.
    renamed = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "copy")]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "copy")]))
        .public_key(CA_KEY.public_key())
        .serial_number(9)
        .not_valid_before(NOW - timedelta(days=1))
        .not_valid_after(NOW + timedelta(days=30))
        .add_extension(x509.SubjectKeyIdentifier(b"\x01" * 20), False)
        .sign(CA_KEY, hashes.SHA256())
    )
    assert trusted_crl_signers([("copy.pem", renamed)], [OTHER_CA, CA], NOW) == [CA]
    assert trusted_crl_signers([("ca.pem", CA)], [CA], NOW) == [CA]


def test_a_ca_issued_by_an_anchor_counts_with_its_own_key_id_only() -> None:
    signer = _issued_by_ca()
    assert trusted_crl_signers([("signer.pem", signer)], [CA], NOW) == [signer]
    lying = _issued_by_ca(ski=key_identifier(OTHER_CA))
    with pytest.raises(CrlRefused, match="is not its key's"):
        trusted_crl_signers([("lying.pem", lying)], [CA], NOW)
    with pytest.raises(CrlRefused, match="not a CA certificate"):
        trusted_crl_signers([("leaf.pem", _issued_by_ca(is_ca=False))], [CA], NOW)
    with pytest.raises(CrlRefused, match="not a trust anchor"):
        trusted_crl_signers([("signer.pem", signer)], [OTHER_CA], NOW)
