"""The test PKI looks like J-LIS's (jpki-card.md §5) and each broken card is broken one way."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import TypeVar

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID

from terminald.cli import main
from terminald.core.reasons import Reason
from terminald.pki.anchors import TrustStore
from terminald.pki.certificate import CertificateRejected, verify_certificate
from terminald.sim.profile import MYNUMBER_CONTACT_ATR, OTHER_CARD_ATR, CardProfile
from terminald.sim.testpki import (
    AUTH_JAPANESE_NAME,
    FIRST_USER_SERIAL,
    JST,
    MANIFEST_NAME,
    NEWEST_ROOT,
    TEST_AUTH_ROOT_NAME,
    TEST_SIGN_ROOT_NAME,
    TestPkiError,
    TestPkiManifest,
    build_test_pki,
    fifth_birthday_after,
    flip_signature_bit,
    root_not_after,
)

E = TypeVar("E", bound=x509.ExtensionType)

NOW = datetime(2026, 6, 15, 3, 0, tzinfo=UTC)
AUTH_ROOTS = ("test-gen1", "test-gen2", "test-gen3")
USER_AUTH_POLICY = "1.2.392.200149.8.5.1.3.30"
# The production roots shipped in the package, to check the date rules against real data.
PACKAGE_ROOTS = Path(__file__).resolve().parents[2] / "terminald" / "pki" / "roots"

EXPECTED_VERDICTS = {
    "card-001": Reason.OK,
    "card-002": Reason.OK,
    "card-003": Reason.OK,
    "last-try": Reason.PIN_TRIES_LOW,
    "blocked": Reason.PIN_BLOCKED,
    "face-auth": Reason.FACE_AUTH_CARD,
    "non-jpki": Reason.NOT_JPKI_CARD,
    "forged-issuer": Reason.CERT_SIGNATURE_INVALID,
    "unknown-issuer": Reason.UNKNOWN_ISSUER,
    "expired": Reason.CERT_EXPIRED,
    "not-yet-valid": Reason.CERT_NOT_YET_VALID,
    "wrong-usage": Reason.CERT_WRONG_USAGE,
    "bad-signature": Reason.CERT_SIGNATURE_INVALID,
    "twin": Reason.OK,
}
# What an independent check (``defects`` below) must find in each card's certificate.
EXPECTED_DEFECTS = {
    "forged-issuer": {"bad_signature"},
    "unknown-issuer": {"unknown_issuer"},
    "expired": {"expired"},
    "not-yet-valid": {"not_yet_valid"},
    "wrong-usage": {"wrong_usage"},
    "bad-signature": {"bad_signature"},
}


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPkiManifest:
    return build_test_pki(tmp_path_factory.mktemp("pki") / "out", cards=3, now=NOW)


def load_pem(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def root_cert(pki: TestPkiManifest, name: str) -> x509.Certificate:
    return load_pem(pki.directory / pki.root(name).cert)


def rsa_public(cert: x509.Certificate) -> rsa.RSAPublicKey:
    key = cert.public_key()
    assert isinstance(key, rsa.RSAPublicKey)
    return key


def signed_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        rsa_public(issuer).verify(
            cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(), hashes.SHA256()
        )
    except InvalidSignature:
        return False
    return True


def ext(cert: x509.Certificate, kind: type[E]) -> x509.Extension[E]:
    return cert.extensions.get_extension_for_class(kind)


def auth_cert(pki: TestPkiManifest, name: str) -> x509.Certificate:
    return x509.load_der_x509_certificate(pki.load_profile(name).auth_cert)


def defects(cert: x509.Certificate, trusted: list[x509.Certificate], now: datetime) -> set[str]:
    """Everything wrong with a user certificate, found without terminald.pki."""
    found: set[str] = set()
    key_id = ext(cert, x509.AuthorityKeyIdentifier).value.key_identifier
    by_key_id = {ext(r, x509.SubjectKeyIdentifier).value.digest: r for r in trusted}
    root = None if key_id is None else by_key_id.get(key_id)
    if root is None:
        found.add("unknown_issuer")
    elif not signed_by(cert, root):
        found.add("bad_signature")
    if cert.not_valid_after_utc < now:
        found.add("expired")
    if cert.not_valid_before_utc > now:
        found.add("not_yet_valid")
    usage = ext(cert, x509.KeyUsage).value
    eku = ext(cert, x509.ExtendedKeyUsage).value
    policies = ext(cert, x509.CertificatePolicies).value
    if (
        not usage.digital_signature
        or usage.key_encipherment
        or ExtendedKeyUsageOID.CLIENT_AUTH not in eku
        or [p.policy_identifier.dotted_string for p in policies] != [USER_AUTH_POLICY]
    ):
        found.add("wrong_usage")
    return found


# --------------------------------------------------------------------------- roots


def test_auth_roots_share_one_dn_with_different_keys_and_serials(pki: TestPkiManifest) -> None:
    roots = [root_cert(pki, name) for name in AUTH_ROOTS]
    assert {r.subject for r in roots} == {TEST_AUTH_ROOT_NAME}
    assert all(r.issuer == r.subject for r in roots)
    assert len({rsa_public(r).public_numbers().n for r in roots}) == 3
    assert len({r.serial_number for r in roots}) == 3
    assert len({pki.root(name).key_id for name in AUTH_ROOTS}) == 3


def test_root_dn_is_encoded_like_the_production_roots(pki: TestPkiManifest) -> None:
    # Same attributes, order and string types as J-LIS's: only O differs (JPKI → JPKI-TEST).
    production = load_pem(PACKAGE_ROOTS / "jpki-auth-ca-2023.pem").subject
    ours = root_cert(pki, NEWEST_ROOT).subject
    assert [(a.oid, a._type) for a in ours] == [(a.oid, a._type) for a in production]
    assert [a.value for a in production][1] == "JPKI"
    assert [a.value for a in ours] == [
        "JP",
        "JPKI-TEST",
        "JPKI for user authentication",
        "Japan Agency for Local Authority Information Systems",
    ]
    assert [a.value for a in ours][2:] == [a.value for a in production][2:]


@pytest.mark.parametrize("name", AUTH_ROOTS)
def test_root_has_the_extensions_of_the_real_roots(pki: TestPkiManifest, name: str) -> None:
    cert = root_cert(pki, name)
    production = load_pem(PACKAGE_ROOTS / "jpki-auth-ca-2023.pem")
    assert [(e.oid, e.critical) for e in cert.extensions] == [
        (e.oid, e.critical) for e in production.extensions
    ]
    usage = ext(cert, x509.KeyUsage).value
    assert usage.key_cert_sign and usage.crl_sign and not usage.digital_signature
    assert ext(cert, x509.BasicConstraints).value == x509.BasicConstraints(True, None)
    san = ext(cert, x509.SubjectAlternativeName).value
    assert list(san) == [x509.DirectoryName(AUTH_JAPANESE_NAME)]
    assert ext(production, x509.SubjectAlternativeName).value == san  # the same Japanese DN
    crldp = ext(cert, x509.CRLDistributionPoints).value
    assert [p.full_name for p in crldp] == [[x509.DirectoryName(TEST_AUTH_ROOT_NAME)]]
    ski = ext(cert, x509.SubjectKeyIdentifier).value
    assert ski == x509.SubjectKeyIdentifier.from_public_key(rsa_public(cert))
    assert rsa_public(cert).key_size == 2048 and signed_by(cert, cert)
    assert cert.not_valid_after_utc.time() == time(14, 59, 59)


def test_root_dates_follow_the_real_roots_rule() -> None:
    for file in ("jpki-auth-ca-2015.pem", "jpki-auth-ca-2023.pem"):
        real = load_pem(PACKAGE_ROOTS / file)
        assert root_not_after(real.not_valid_before_utc) == real.not_valid_after_utc


def test_root_generations_are_years_apart_and_the_oldest_has_expired(
    pki: TestPkiManifest,
) -> None:
    starts = [pki.root(name).not_before for name in AUTH_ROOTS]
    assert [s.year for s in starts] == [2015, 2019, 2023]  # with NOW in 2026, like J-LIS
    assert pki.root("test-gen1").not_after < NOW < pki.root("test-gen2").not_after


def test_trust_dir_holds_exactly_the_auth_roots(pki: TestPkiManifest) -> None:
    files = sorted(p.name for p in pki.trust_dir.iterdir())
    assert files == [f"{name}.pem" for name in AUTH_ROOTS]
    for name in AUTH_ROOTS:
        assert load_pem(pki.trust_dir / f"{name}.pem") == root_cert(pki, name)
    store = TrustStore.from_paths([pki.trust_dir])
    assert len(store) == 3
    untrusted = {pki.root("rogue-root").key_id, pki.root("test-sign").key_id}
    assert not untrusted & {a.key_id.hex() for a in store.anchors()}


def test_ca_dir_has_each_root_with_its_key_and_an_index(pki: TestPkiManifest) -> None:
    index = json.loads((pki.ca_dir / "index.json").read_text())
    assert [entry["name"] for entry in index] == [*AUTH_ROOTS, "test-sign"]
    for entry in index:
        cert = load_pem(pki.directory / entry["cert"])
        key = serialization.load_pem_private_key(
            (pki.directory / entry["key"]).read_bytes(), password=None
        )
        assert isinstance(key, rsa.RSAPrivateKey)
        assert key.public_key().public_numbers() == rsa_public(cert).public_numbers()
        assert entry["serial"] == cert.serial_number
        assert entry["key_id"] == ext(cert, x509.SubjectKeyIdentifier).value.digest.hex()
    assert root_cert(pki, "test-sign").subject == TEST_SIGN_ROOT_NAME


# --------------------------------------------------------------------------- a good card


def test_good_auth_certificate_is_shaped_like_production(pki: TestPkiManifest) -> None:
    der = pki.load_profile("card-001").auth_cert
    print(f"user-auth certificate: {len(der)} bytes DER (production sample: 1583)")
    assert 1450 <= len(der) <= 1650
    assert der[:2] == b"\x30\x82"
    cert = x509.load_der_x509_certificate(der)
    entry = pki.card("card-001")
    root = root_cert(pki, entry.root or "")
    assert cert.version is x509.Version.v3
    assert cert.issuer == TEST_AUTH_ROOT_NAME
    assert signed_by(cert, root)
    assert isinstance(cert.signature_hash_algorithm, hashes.SHA256)
    key = rsa_public(cert)
    assert key.key_size == 2048 and key.public_numbers().e == 65537

    # Subject: C and a 23-character CN whose characters 15-19 are the municipality code.
    assert [a.oid for a in cert.subject] == [NameOID.COUNTRY_NAME, NameOID.COMMON_NAME]
    cn = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    assert isinstance(cn, str)
    assert re.fullmatch(r"9\d{5}E\d[A-N]{6}\d{5}003A", cn), cn

    assert [(e.oid, e.critical) for e in cert.extensions] == [
        (x509.KeyUsage.oid, True),
        (x509.ExtendedKeyUsage.oid, False),
        (x509.CertificatePolicies.oid, True),
        (x509.IssuerAlternativeName.oid, False),
        (x509.CRLDistributionPoints.oid, False),
        (x509.AuthorityInformationAccess.oid, False),
        (x509.AuthorityKeyIdentifier.oid, False),
        (x509.SubjectKeyIdentifier.oid, False),
    ]
    usage = ext(cert, x509.KeyUsage).value
    assert usage == x509.KeyUsage(True, False, False, False, False, False, False, False, False)
    assert list(ext(cert, x509.ExtendedKeyUsage).value) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    policies = ext(cert, x509.CertificatePolicies).value
    assert policies == x509.CertificatePolicies(
        [
            x509.PolicyInformation(
                x509.ObjectIdentifier(USER_AUTH_POLICY), ["http://www.jpki.go.jp/cps.html"]
            )
        ]
    )
    ian = ext(cert, x509.IssuerAlternativeName).value
    assert list(ian) == [x509.DirectoryName(AUTH_JAPANESE_NAME)]

    (point,) = ext(cert, x509.CRLDistributionPoints).value
    assert isinstance(point, x509.DistributionPoint) and point.full_name is not None
    (crldp,) = point.full_name
    assert isinstance(crldp, x509.DirectoryName)  # a dirName only, no URL
    assert crldp.value.rfc4514_string().endswith(
        "OU=CRL Distribution Points,OU=JPKI for user authentication,O=JPKI-TEST,C=JP"
    )
    assert crldp.value.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "Kiyose-shi CRLDP"
    assert cn[14:19] == "13221"  # Kiyose: the CN and the CRLDP name the same municipality

    (access,) = ext(cert, x509.AuthorityInformationAccess).value
    assert isinstance(access, x509.AccessDescription)
    assert access.access_method == AuthorityInformationAccessOID.OCSP
    assert isinstance(access.access_location, x509.UniformResourceIdentifier)

    aki = ext(cert, x509.AuthorityKeyIdentifier).value
    assert aki == x509.AuthorityKeyIdentifier(
        key_identifier=ext(root, x509.SubjectKeyIdentifier).value.digest,
        authority_cert_issuer=[x509.DirectoryName(root.subject)],
        authority_cert_serial_number=root.serial_number,
    )
    assert ext(cert, x509.SubjectKeyIdentifier).value == (
        x509.SubjectKeyIdentifier.from_public_key(key)
    )
    with pytest.raises(x509.ExtensionNotFound):
        cert.extensions.get_extension_for_class(x509.BasicConstraints)


def test_good_card_holds_the_matching_private_key(pki: TestPkiManifest) -> None:
    profile = pki.load_profile("card-001")
    key = serialization.load_pem_private_key(profile.auth_key_pem, password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    cert = x509.load_der_x509_certificate(profile.auth_cert)
    assert key.public_key().public_numbers() == rsa_public(cert).public_numbers()
    assert x509.load_der_x509_certificate(profile.auth_ca_cert) == root_cert(pki, NEWEST_ROOT)


def test_not_after_is_2359_jst_on_the_fifth_birthday_after_issuance(
    pki: TestPkiManifest,
) -> None:
    for entry in pki.cards:
        if entry.not_after is None or entry.not_before is None:
            continue
        assert entry.not_after.time() == time(14, 59, 59), entry.name
        years = (entry.not_after - entry.not_before) / timedelta(days=365.25)
        assert 4 < years <= 5.01, entry.name


def test_fifth_birthday_rule_matches_the_production_sample() -> None:
    # Issued 2022-11-23T17:29:27Z (24 Nov in Japan), notAfter 2027-09-23T14:59:59Z (§5.1).
    issued = datetime(2022, 11, 23, 17, 29, 27, tzinfo=UTC)
    assert fifth_birthday_after(issued, (9, 23)) == datetime(2027, 9, 23, 14, 59, 59, tzinfo=UTC)
    # A birthday on the (JST) issuance day is not "after" it; the next day's is the first.
    assert fifth_birthday_after(issued, (11, 24)).astimezone(JST).date() == date(2027, 11, 24)
    assert fifth_birthday_after(issued, (11, 25)).astimezone(JST).date() == date(2026, 11, 25)


def test_serials_are_one_sequential_four_byte_counter_in_issuance_order(
    pki: TestPkiManifest,
) -> None:
    issued = sorted(
        (entry.not_before, entry.serial)
        for entry in pki.cards
        if entry.serial is not None and entry.not_before is not None and entry.name != "twin"
    )
    serials = [serial for _, serial in issued]
    assert serials == list(range(FIRST_USER_SERIAL, FIRST_USER_SERIAL + len(serials)))
    for entry in pki.cards:
        if entry.serial is None:
            continue
        der = pki.load_profile(entry.name).auth_cert
        assert der[13:15] == b"\x02\x04", entry.name  # tbs: SEQ hdr 4, [0] v3 5, INTEGER
        assert 0 < entry.serial <= 0x7FFF_FFFF


def test_good_cards_span_root_generations(pki: TestPkiManifest) -> None:
    good = [c for c in pki.cards if c.expected is Reason.OK and c.name != "twin"]
    assert [c.name for c in good] == ["card-001", "card-002", "card-003"]
    newest = [c for c in good if c.root == NEWEST_ROOT]
    assert len(newest) > len(good) / 2
    assert any(c.root == "test-gen2" for c in good)


def test_the_twin_is_card_001_under_another_root_with_its_own_key_and_pin(
    pki: TestPkiManifest,
) -> None:
    one, twin = pki.card("card-001"), pki.card("twin")
    assert twin.serial == one.serial and twin.expected is Reason.OK
    assert {one.root, twin.root} == {NEWEST_ROOT, "test-gen2"}
    assert twin.issuer_key_id != one.issuer_key_id
    assert twin.issuer_key_id == pki.root(str(twin.root)).key_id
    assert twin.pin != one.pin and twin.pin is not None
    a, b = pki.load_profile("card-001"), pki.load_profile("twin")
    assert a.auth_key_pem != b.auth_key_pem and a.sign_cert != b.sign_cert
    # The worst case for a terminal: the head of EF 000A (serial, issuer DN, validity,
    # subject) is byte for byte card-001's; only the issuer's key and signature differ.
    assert a.auth_cert[:256] == b.auth_cert[:256]
    assert a.auth_cert != b.auth_cert and a.auth_cert[-32:] != b.auth_cert[-32:]
    ca, cb = auth_cert(pki, "card-001"), auth_cert(pki, "twin")
    assert ca.subject == cb.subject and ca.issuer == cb.issuer
    assert signed_by(cb, root_cert(pki, str(twin.root)))
    assert not signed_by(cb, root_cert(pki, str(one.root)))


# --------------------------------------------------------------------------- broken cards


@pytest.mark.parametrize("name", sorted(EXPECTED_VERDICTS))
def test_each_certificate_is_broken_in_exactly_its_intended_way(
    pki: TestPkiManifest, name: str
) -> None:
    if pki.card(name).kind == "non_jpki":
        return
    trusted = [root_cert(pki, r) for r in AUTH_ROOTS]
    assert defects(auth_cert(pki, name), trusted, NOW) == EXPECTED_DEFECTS.get(name, set())


def test_forged_issuer_claims_a_trusted_root_but_is_signed_by_another_key(
    pki: TestPkiManifest,
) -> None:
    cert = auth_cert(pki, "forged-issuer")
    newest = root_cert(pki, NEWEST_ROOT)
    aki = ext(cert, x509.AuthorityKeyIdentifier).value
    assert aki.key_identifier == ext(newest, x509.SubjectKeyIdentifier).value.digest
    assert aki.authority_cert_serial_number == newest.serial_number
    assert cert.issuer == newest.subject
    assert not signed_by(cert, newest)
    assert signed_by(cert, root_cert(pki, "rogue-root"))


def test_unknown_issuer_uses_the_same_dn_and_serial_as_a_trusted_root(
    pki: TestPkiManifest,
) -> None:
    cert = auth_cert(pki, "unknown-issuer")
    rogue = root_cert(pki, "rogue-root")
    newest = root_cert(pki, NEWEST_ROOT)
    assert rogue.subject == newest.subject and rogue.serial_number == newest.serial_number
    assert cert.issuer == TEST_AUTH_ROOT_NAME
    aki = ext(cert, x509.AuthorityKeyIdentifier).value
    assert aki.key_identifier == ext(rogue, x509.SubjectKeyIdentifier).value.digest
    assert signed_by(cert, rogue)
    assert not (pki.trust_dir / "rogue-root.pem").exists()


def test_bad_signature_is_one_flipped_bit_of_a_valid_signature(pki: TestPkiManifest) -> None:
    der = pki.load_profile("bad-signature").auth_cert
    newest = root_cert(pki, NEWEST_ROOT)
    assert not signed_by(x509.load_der_x509_certificate(der), newest)
    assert signed_by(x509.load_der_x509_certificate(flip_signature_bit(der)), newest)


def test_wrong_usage_lacks_only_digital_signature(pki: TestPkiManifest) -> None:
    usage = ext(auth_cert(pki, "wrong-usage"), x509.KeyUsage)
    assert usage.critical
    assert usage.value == x509.KeyUsage(
        False, False, True, False, False, False, False, False, False
    )


@pytest.mark.parametrize("later", [timedelta(0), timedelta(days=30)])
def test_terminald_verifier_reaches_the_manifest_verdicts(
    pki: TestPkiManifest, later: timedelta
) -> None:
    trust = TrustStore.from_paths([pki.trust_dir])
    for entry in pki.cards:
        profile = pki.load_profile(entry.name)
        if not profile.auth_cert:
            continue
        try:
            verify_certificate(profile.auth_cert, trust, NOW + later)
            verdict = "ok"
        except CertificateRejected as exc:
            verdict = exc.problem.value
        # Cards refused for their PIN state or their kind have a good certificate.
        want = entry.expected if entry.name in EXPECTED_DEFECTS else Reason.OK
        assert verdict == want.value, entry.name


# --------------------------------------------------------------------------- manifest and files


def test_manifest_lists_every_card_with_its_verdict(pki: TestPkiManifest) -> None:
    assert {c.name: c.expected for c in pki.cards} == EXPECTED_VERDICTS
    assert sorted(p.name for p in (pki.directory / "cards").iterdir()) == sorted(
        f"{name}.json" for name in EXPECTED_VERDICTS
    )


def test_manifest_file_round_trips(pki: TestPkiManifest) -> None:
    assert TestPkiManifest.load(pki.directory) == pki
    raw = json.loads((pki.directory / MANIFEST_NAME).read_text())
    assert raw["trust_dir"] == "trust"
    assert raw["cards"][0]["serial"] == pki.cards[0].serial  # decimal integer


@pytest.mark.parametrize("name", sorted(EXPECTED_VERDICTS))
def test_manifest_agrees_with_the_profile(pki: TestPkiManifest, name: str) -> None:
    entry = pki.card(name)
    text = pki.profile_path(name).read_text()
    profile = CardProfile.from_json(text)
    assert profile == CardProfile.load(pki.profile_path(name))
    assert CardProfile.from_json(profile.to_json()) == profile
    assert (profile.name, profile.kind) == (name, entry.kind)
    assert profile.auth_pin == entry.pin
    assert profile.auth_tries == entry.auth_tries
    assert profile.sign_password == entry.sign_password
    if entry.kind == "non_jpki":
        assert profile.atr == OTHER_CARD_ATR
        assert not profile.auth_cert and not profile.sign_cert and entry.serial is None
        return
    assert profile.atr == MYNUMBER_CONTACT_ATR
    cert = x509.load_der_x509_certificate(profile.auth_cert)
    key_id = ext(cert, x509.AuthorityKeyIdentifier).value.key_identifier
    assert entry.serial == cert.serial_number
    assert key_id is not None and entry.issuer_key_id == key_id.hex()
    assert entry.not_after == cert.not_valid_after_utc
    assert entry.not_before == cert.not_valid_before_utc
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == entry.common_name
    (point,) = ext(cert, x509.CRLDistributionPoints).value
    assert point.full_name is not None
    (crldp,) = point.full_name
    assert isinstance(crldp, x509.DirectoryName)
    assert crldp.value.rfc4514_string() == entry.crl_distribution_point
    if entry.kind == "face_auth":
        assert profile.auth_pin is None and profile.sign_password is None
        assert not profile.sign_cert and not profile.sign_key_pem
        return
    assert entry.pin is not None and re.fullmatch(r"\d{4}", entry.pin)
    assert entry.sign_password is not None
    assert re.fullmatch(r"[A-Z0-9]{6,16}", entry.sign_password)
    expected_tries = {"last-try": 1, "blocked": 0}.get(name, 3)
    assert profile.auth_tries == expected_tries


@pytest.mark.parametrize("name", ["card-001", "expired", "unknown-issuer"])
def test_signing_certificate_chains_to_the_signing_root(pki: TestPkiManifest, name: str) -> None:
    profile = pki.load_profile(name)
    sign_cert = x509.load_der_x509_certificate(profile.sign_cert)
    sign_root = x509.load_der_x509_certificate(profile.sign_ca_cert)
    assert sign_root == root_cert(pki, "test-sign")
    assert signed_by(sign_cert, sign_root)
    key = serialization.load_pem_private_key(profile.sign_key_pem, password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    assert key.public_key().public_numbers() == rsa_public(sign_cert).public_numbers()
    assert profile.sign_key_pem != profile.auth_key_pem


# --------------------------------------------------------------------------- rebuilding


def test_rebuilding_replaces_the_directory_cleanly(tmp_path: Path) -> None:
    out = tmp_path / "pki"
    first = build_test_pki(out, cards=2, now=NOW)
    second = build_test_pki(out, cards=1, now=NOW)
    assert not (out / "cards" / "card-002.json").exists()
    assert [c.name for c in second.cards if c.name.startswith("card-")] == ["card-001"]
    assert first.root(NEWEST_ROOT).key_id != second.root(NEWEST_ROOT).key_id
    assert load_pem(out / "trust" / f"{NEWEST_ROOT}.pem") == load_pem(
        out / second.root(NEWEST_ROOT).cert
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pki"]  # no staging leftovers


def test_refuses_to_replace_a_directory_that_is_not_a_test_pki(tmp_path: Path) -> None:
    (tmp_path / "precious.txt").write_text("mine")
    with pytest.raises(TestPkiError):
        build_test_pki(tmp_path, cards=1, now=NOW)
    assert (tmp_path / "precious.txt").read_text() == "mine"


def test_cli_prints_where_everything_is(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "pki"
    assert main(["sim", "pki", "--out", str(out), "--cards", "1"]) == 0
    printed = capsys.readouterr().out
    assert str(out / "trust") in printed
    manifest = TestPkiManifest.load(out)
    for entry in manifest.cards:
        line = next(line for line in printed.splitlines() if line.split()[:1] == [entry.name])
        assert entry.expected.value in line
        if entry.pin is not None:
            assert entry.pin in line


def test_cli_rejects_a_bad_card_count(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sim", "pki", "--out", str(tmp_path / "x"), "--cards", "0"]) == 2
    assert "--cards" in capsys.readouterr().err


def test_every_card_gets_its_manifest_verdict_from_the_whole_terminal(
    pki: TestPkiManifest,
) -> None:
    """The contract with the virtual card and the authenticator, end to end in process."""
    card_module = pytest.importorskip("terminald.sim.card")
    inprocess = pytest.importorskip("terminald.sim.inprocess")
    from terminald.core.auth import Authenticator, AuthSettings, PinRequest

    authenticator = Authenticator(
        TrustStore.from_paths([pki.trust_dir]), AuthSettings(terminal_id="test-gate")
    )
    for entry in pki.cards:
        card = card_module.VirtualJpkiCard(pki.load_profile(entry.name))
        connection = inprocess.InProcessConnection(card)
        result = authenticator.begin(connection, NOW)
        if isinstance(result, PinRequest):
            assert entry.pin is not None
            result = authenticator.finish(result, entry.pin, NOW)
        assert result.reason is entry.expected, entry.name
