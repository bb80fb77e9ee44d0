"""The builder reads each CRL's IssuingDistributionPoint, authenticity and freshness."""

from __future__ import annotations

from datetime import timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from terminald.backoffice.revocation_builder import CrlRefused, build_revocation_set, read_crl
from terminald.pki.anchors import key_identifier
from terminald.revocation.coverage import WHOLE, Coverage
from terminald.sim.crl import CrlEntry, make_crl, partition_idp
from tests.unit.test_revocation_builder import CA, CA_KEY, NOW, R

KIYOSE = x509.Name(
    [
        x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"),
        x509.NameAttribute(NameOID.COMMON_NAME, "Kiyose-shi CRLDP"),
    ]
)
OSAKA = x509.Name(
    [
        x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"),
        x509.NameAttribute(NameOID.COMMON_NAME, "Osaka-shi CRLDP"),
    ]
)
ISSUER = key_identifier(CA)


def idp(**changes: object) -> x509.IssuingDistributionPoint:
    fields: dict[str, object] = {
        "full_name": [x509.DirectoryName(KIYOSE)],
        "relative_name": None,
        "only_contains_user_certs": False,
        "only_contains_ca_certs": False,
        "only_some_reasons": None,
        "indirect_crl": False,
        "only_contains_attribute_certs": False,
    }
    fields.update(changes)
    return x509.IssuingDistributionPoint(**fields)  # type: ignore[arg-type]


def crl(
    point: x509.IssuingDistributionPoint | None,
    entries: tuple[tuple[int, x509.ReasonFlags | None], ...] = ((7, R.key_compromise),),
    next_update: timedelta = timedelta(days=1),
) -> bytes:
    listed = [CrlEntry(s, r) for s, r in entries]
    return make_crl(CA, CA_KEY, listed, NOW, NOW + next_update, issuing_distribution_point=point)


def test_a_crl_without_idp_covers_the_whole_issuer() -> None:
    assert read_crl(crl(None), "whole.crl", [CA], now=NOW).coverage is WHOLE


def test_a_partitioned_crl_covers_its_partition_only() -> None:
    contents = read_crl(crl(partition_idp(KIYOSE)), "kiyose.crl", [CA], now=NOW)
    assert contents.coverage == Coverage.of([KIYOSE.public_bytes()])
    built = build_revocation_set([contents])
    assert built.status(ISSUER, 7, [KIYOSE.public_bytes()]) == "revoked"
    assert built.status(ISSUER, 7, [OSAKA.public_bytes()]) is None
    assert built.status(ISSUER, 7) is None


def test_a_relative_name_is_resolved_against_the_crl_issuer() -> None:
    rdn = x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.COMMON_NAME, "Part 3")])
    contents = read_crl(crl(idp(full_name=None, relative_name=rdn)), "rel.crl", [CA], now=NOW)
    expected = x509.Name([*CA.subject.rdns, rdn]).public_bytes()
    assert contents.coverage == Coverage.of([expected])


def test_an_idp_without_a_point_but_only_user_certs_covers_the_whole_issuer() -> None:
    point = idp(full_name=None, only_contains_user_certs=True)
    assert read_crl(crl(point), "users.crl", [CA], now=NOW).coverage is WHOLE


@pytest.mark.parametrize(
    ("changes", "flag"),
    [
        ({"only_some_reasons": frozenset({R.key_compromise})}, "onlySomeReasons"),
        ({"indirect_crl": True}, "indirectCRL"),
        ({"only_contains_ca_certs": True}, "onlyContainsCACerts"),
        ({"only_contains_attribute_certs": True}, "onlyContainsAttributeCerts"),
    ],
)
def test_an_idp_that_cannot_be_interpreted_soundly_is_refused(
    changes: dict[str, object], flag: str
) -> None:
    with pytest.raises(CrlRefused, match=f"kiyose.crl: .*{flag}"):
        read_crl(crl(idp(**changes)), "kiyose.crl", [CA], now=NOW)


def test_a_partition_named_only_by_uri_is_refused() -> None:
    point = idp(full_name=[x509.UniformResourceIdentifier("http://crl.example/kiyose.crl")])
    with pytest.raises(CrlRefused, match=r"only as http://crl\.example/kiyose\.crl"):
        read_crl(crl(point), "uri.crl", [CA], now=NOW)


def test_partitions_of_one_issuer_add_up_and_a_whole_crl_makes_it_whole() -> None:
    kiyose = read_crl(crl(partition_idp(KIYOSE)), "k", [CA], now=NOW)
    osaka = read_crl(crl(partition_idp(OSAKA), ((8, None),)), "o", [CA], now=NOW)
    whole = read_crl(crl(None, ((9, None),)), "w", [CA], now=NOW)
    both = build_revocation_set([kiyose, osaka]).issuers[ISSUER]
    assert both.coverage == Coverage.of([KIYOSE.public_bytes(), OSAKA.public_bytes()])
    assert list(both.revoked) == [7, 8]
    mixed = build_revocation_set([kiyose, whole, osaka]).issuers[ISSUER]
    assert mixed.coverage is WHOLE and list(mixed.revoked) == [7, 8, 9]


def test_a_crl_at_or_past_its_next_update_is_refused_unless_allowed() -> None:
    data = crl(None, next_update=timedelta(hours=1))
    later = NOW + timedelta(hours=1)
    with pytest.raises(CrlRefused, match="expired at its nextUpdate"):
        read_crl(data, "old.crl", [CA], now=later)
    assert read_crl(data, "old.crl", [CA], now=later, allow_expired=True).revoked.size == 1


def test_the_crl_issuer_name_must_be_the_signing_certificate_s_subject() -> None:
    # Same key (so the AKI matches), another subject: the CRL does not name this issuer.
    renamed = (
        x509.CertificateBuilder()
        .subject_name(KIYOSE)
        .issuer_name(KIYOSE)
        .public_key(CA_KEY.public_key())
        .serial_number(2)
        .not_valid_before(NOW - timedelta(days=1))
        .not_valid_after(NOW + timedelta(days=10))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(CA_KEY.public_key()), False)
        .sign(CA_KEY, hashes.SHA256())
    )
    with pytest.raises(CrlRefused, match="names issuer CN=JPKI-TEST root"):
        read_crl(crl(None), "x.crl", [renamed], now=NOW)
    with pytest.raises(CrlRefused, match="unknown issuer"):
        read_crl(crl(None), "x.crl", [], now=NOW)


def test_unknown_critical_crl_extensions_and_indirect_entries_are_refused() -> None:
    oid = x509.ObjectIdentifier("1.3.6.1.4.1.99999.1")
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(CA.subject)
        .last_update(NOW)
        .next_update(NOW + timedelta(days=1))
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(CA_KEY.public_key()), False
        )
    )
    unknown = builder.add_extension(x509.UnrecognizedExtension(oid, b"\x05\x00"), True)
    data = unknown.sign(CA_KEY, hashes.SHA256()).public_bytes(Encoding.DER)
    with pytest.raises(CrlRefused, match=r"unknown critical extension 1\.3\.6\.1\.4\.1\.99999\.1"):
        read_crl(data, "u.crl", [CA], now=NOW)
    entry = (
        x509.RevokedCertificateBuilder()
        .serial_number(5)
        .revocation_date(NOW)
        .add_extension(x509.CertificateIssuer([x509.DirectoryName(OSAKA)]), True)
        .build()
    )
    indirect = builder.add_revoked_certificate(entry).sign(CA_KEY, hashes.SHA256())
    with pytest.raises(CrlRefused, match="indirect"):
        read_crl(indirect.public_bytes(Encoding.DER), "i.crl", [CA], now=NOW)
