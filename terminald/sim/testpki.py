"""A test PKI shaped like J-LIS's user-authentication PKI, and the virtual cards it issues.

Facts copied from production (shared/reference/jpki-card.md §5):

* Three root generations share ONE distinguished name and differ only by key, serial and
  validity (§5.2), so a terminal must pick the issuer by Authority Key Identifier and then
  check the signature. The test roots use J-LIS's own test DN (``O=JPKI-TEST``).
* Roots carry the extensions of the real roots: KeyUsage critical keyCertSign+cRLSign,
  SubjectAltName dirName (the Japanese DN), BasicConstraints critical CA:TRUE,
  CRLDistributionPoints dirName, SubjectKeyIdentifier, in that order (``openssl x509 -text``
  on shared/jpki-roots/). notAfter is 23:59:59 JST the day before the 10th anniversary.
* User-authentication certificates follow the production sample extension for extension and
  in the same order (§5.1); the serial comes from one sequential counter; notAfter is
  23:59:59 JST (14:59:59Z) on the 5th birthday after issuance.

Everything here is synthetic: names, municipality assignment, birthdays and PINs. The OCSP
URL uses the reserved ``.invalid`` domain so a test certificate can never make a terminal
contact a real J-LIS server.

This module builds the PKI and is its public face (``__all__``); the pieces live beside it:
``testpki_x509`` (names, dates, roots, user certificates), ``testpki_cards`` (the card set),
``testpki_manifest`` (what was issued) and ``testpki_files`` (writing it to disk).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from terminald.sim.profile import (
    MYNUMBER_CONTACT_ATR,
    OTHER_CARD_ATR,
    CardProfile,
)
from terminald.sim.testpki_cards import (
    NEWEST_ROOT,
    OLDER_ROOT,
    ROGUE_ROOT,
    ROOT_GENERATIONS,
    SIGN_ROOT,
    CardPlan,
    CertFlaw,
    _years_before,
    plan_cards,
    random_birthday,
    random_pin,
    random_sign_password,
)
from terminald.sim.testpki_files import (
    IssuedCard,
    PkiAuthorities,
    TestPkiError,
    check_replaceable,
    key_pem,
    write_pki,
)
from terminald.sim.testpki_manifest import (
    CardEntry,
    RootEntry,
    TestPkiManifest,
)
from terminald.sim.testpki_x509 import (
    _MAX_USER_SERIAL,
    AUTH_JAPANESE_NAME,
    FIRST_USER_SERIAL,
    JST,
    MANIFEST_NAME,
    MAX_CARDS,
    MUNICIPALITIES,
    SIGN_JAPANESE_NAME,
    TEST_AUTH_ROOT_NAME,
    TEST_SIGN_ROOT_NAME,
    Authority,
    Municipality,
    UsageFlaw,
    UserCertificateRequest,
    crl_distribution_point_name,
    fifth_birthday_after,
    flip_signature_bit,
    generate_keys,
    issue_auth_certificate,
    issue_sign_certificate,
    make_root,
    municipality_for,
    root_not_after,
    synthetic_common_name,
)

# --------------------------------------------------------------------------- building

# The test PKI's public face: tests and tools import from here, whichever module
# defines the name.
__all__ = [
    "AUTH_JAPANESE_NAME",
    "FIRST_USER_SERIAL",
    "JST",
    "MANIFEST_NAME",
    "MAX_CARDS",
    "MUNICIPALITIES",
    "NEWEST_ROOT",
    "OLDER_ROOT",
    "TEST_AUTH_ROOT_NAME",
    "TEST_SIGN_ROOT_NAME",
    "CardEntry",
    "CardPlan",
    "IssuedCard",
    "PkiAuthorities",
    "TestPkiError",
    "TestPkiManifest",
    "build_test_pki",
    "crl_distribution_point_name",
    "fifth_birthday_after",
    "flip_signature_bit",
    "issue_card",
    "municipality_for",
    "root_not_after",
]


def _make_authorities(now: datetime, card_key_count: int) -> PkiAuthorities:
    # auth roots + signing root + rogue root + the shared signing key + one per card
    keys = generate_keys(len(ROOT_GENERATIONS) + 3 + card_key_count)
    auth_roots = {
        gen.name: make_root(
            gen.name,
            subject=TEST_AUTH_ROOT_NAME,
            japanese_name=AUTH_JAPANESE_NAME,
            key=keys.pop(),
            serial=gen.serial,
            not_before=_years_before(now, gen.years_ago),
        )
        for gen in ROOT_GENERATIONS
    }
    newest = auth_roots[NEWEST_ROOT].certificate
    sign_root = make_root(
        SIGN_ROOT,
        subject=TEST_SIGN_ROOT_NAME,
        japanese_name=SIGN_JAPANESE_NAME,
        key=keys.pop(),
        serial=0x00BFCE,
        not_before=newest.not_valid_before_utc,
    )
    # Same DN, same serial and dates as the newest root: only the key tells them apart.
    rogue = make_root(
        ROGUE_ROOT,
        subject=TEST_AUTH_ROOT_NAME,
        japanese_name=AUTH_JAPANESE_NAME,
        key=keys.pop(),
        serial=newest.serial_number,
        not_before=newest.not_valid_before_utc,
    )
    return PkiAuthorities(auth_roots, sign_root, rogue, sign_key=keys.pop(), card_keys=keys)


def assign_serials(plans: Iterable[CardPlan], first_serial: int) -> dict[str, int]:
    """One sequential counter in issuance order, like J-LIS's (§5.1): card name → serial."""
    dated = sorted((plan.issued, plan.name) for plan in plans if plan.issued is not None)
    serials = {name: first_serial + index for index, (_, name) in enumerate(dated)}
    if serials and max(serials.values()) > _MAX_USER_SERIAL:
        raise ValueError("serials would not fit in 4 DER bytes")
    return serials


def _der(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.DER)


def _issuer_for(plan: CardPlan, authorities: PkiAuthorities) -> tuple[Authority, Authority]:
    """(the CA the certificate names, the CA whose key signs it)."""
    named = authorities.auth_roots[plan.root]
    if plan.flaw is CertFlaw.UNKNOWN_ISSUER:
        return authorities.rogue, authorities.rogue
    if plan.flaw is CertFlaw.FORGED_ISSUER:
        return named, authorities.rogue
    return named, named


def _profile_path(name: str) -> str:
    return f"cards/{name}.json"


def _issue_non_jpki(plan: CardPlan) -> IssuedCard:
    profile = CardProfile(name=plan.name, kind="non_jpki", atr=OTHER_CARD_ATR, note=plan.note)
    entry = CardEntry(
        name=plan.name,
        profile=_profile_path(plan.name),
        kind=plan.kind,
        expected=plan.expected,
        pin=None,
        auth_tries=profile.auth_tries,
        note=plan.note,
    )
    return IssuedCard(profile, entry)


def issue_card(
    plan: CardPlan,
    authorities: PkiAuthorities,
    *,
    auth_key: rsa.RSAPrivateKey,
    serial: int,
    sign_serial: int,
    municipality: Municipality,
    subject_of: CardEntry | None = None,
) -> IssuedCard:
    """Certificates, keys and secrets of one JPKI or face-authentication card.

    ``subject_of`` copies another card's subject CN and notAfter (for the twin, see
    ``terminald.sim.twin``); otherwise both are drawn at random."""
    assert plan.issued is not None
    not_before = plan.issued.replace(microsecond=0)
    not_after = fifth_birthday_after(not_before, random_birthday())
    common_name = synthetic_common_name(municipality)
    if subject_of is not None:
        assert subject_of.not_after is not None and subject_of.common_name is not None
        not_after, common_name = subject_of.not_after, subject_of.common_name
    auth_request = UserCertificateRequest(
        public_key=auth_key.public_key(),
        serial=serial,
        not_before=not_before,
        not_after=not_after,
        common_name=common_name,
        municipality=municipality,
        usage_flaw=(
            UsageFlaw.KEY_ENCIPHERMENT_ONLY if plan.flaw is CertFlaw.WRONG_USAGE else UsageFlaw.NONE
        ),
    )
    named, signer = _issuer_for(plan, authorities)
    auth_cert = issue_auth_certificate(auth_request, named, signing_key=signer.key)
    auth_der = _der(auth_cert)
    if plan.flaw is CertFlaw.BAD_SIGNATURE:
        auth_der = flip_signature_bit(auth_der)
    profile = CardProfile(
        name=plan.name,
        kind=plan.kind,
        atr=MYNUMBER_CONTACT_ATR,
        auth_cert=auth_der,
        auth_ca_cert=_der(named.certificate),  # EF 000B: what the card claims, unauthenticated
        auth_key_pem=key_pem(auth_key),
        auth_pin=None if plan.kind == "face_auth" else random_pin(),
        auth_tries=plan.auth_tries,
        note=plan.note,
    )
    if plan.kind == "jpki":  # face-auth cards have no signing certificate (§3)
        sign_request = replace(
            auth_request,
            public_key=authorities.sign_key.public_key(),
            serial=sign_serial,
            common_name=synthetic_common_name(municipality),
            usage_flaw=UsageFlaw.NONE,
        )
        profile = replace(
            profile,
            sign_cert=_der(issue_sign_certificate(sign_request, authorities.sign_root)),
            sign_ca_cert=_der(authorities.sign_root.certificate),
            sign_key_pem=key_pem(authorities.sign_key),
            sign_password=random_sign_password(),
        )
    entry = CardEntry(
        name=plan.name,
        profile=_profile_path(plan.name),
        kind=plan.kind,
        expected=plan.expected,
        pin=profile.auth_pin,
        auth_tries=plan.auth_tries,
        sign_password=profile.sign_password,
        root=signer.name,
        serial=serial,
        issuer_key_id=named.key_id.hex(),
        common_name=auth_request.common_name,
        crl_distribution_point=crl_distribution_point_name(municipality).rfc4514_string(),
        not_before=auth_request.not_before,
        not_after=auth_request.not_after,
        note=plan.note or f"issued by {signer.name}",
    )
    return IssuedCard(profile, entry)


def _root_entry(authority: Authority, purpose: str, folder: str) -> RootEntry:
    cert = authority.certificate
    return RootEntry(
        name=authority.name,
        purpose=purpose,
        key_id=authority.key_id.hex(),
        serial=authority.serial,
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        cert=f"{folder}/{authority.name}.pem",
        key=f"{folder}/{authority.name}.key.pem",
    )


def _normalise_now(now: datetime | None) -> datetime:
    if now is None:
        now = datetime.now(UTC)
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return now.astimezone(UTC).replace(microsecond=0)


def build_test_pki(
    out_dir: Path,
    *,
    cards: int = 3,
    now: datetime | None = None,
    first_serial: int = FIRST_USER_SERIAL,
) -> TestPkiManifest:
    """Generate the test PKI and its card profiles into ``out_dir``, replacing it whole.

    ``now`` is the build time every date is relative to (default: the current time); the
    expected verdicts hold at ``now`` and for at least a month after it.
    Raises :class:`TestPkiError` if ``out_dir`` exists and is not a test PKI directory.
    """
    now = _normalise_now(now)
    plans = plan_cards(cards, now)
    check_replaceable(out_dir)
    carded = [plan for plan in plans if plan.kind != "non_jpki"]
    authorities = _make_authorities(now, len(carded) + 1)  # + the twin's key
    serials = assign_serials(plans, first_serial)
    sign_serials = assign_serials(carded, first_serial)  # the signing CA's own counter
    issued: list[IssuedCard] = []
    for index, plan in enumerate(plans):
        if plan.kind == "non_jpki":
            issued.append(_issue_non_jpki(plan))
            continue
        issued.append(
            issue_card(
                plan,
                authorities,
                auth_key=authorities.card_keys.pop(),
                serial=serials[plan.name],
                sign_serial=sign_serials[plan.name],
                municipality=municipality_for(index),
            )
        )
    # Imported here: the twin module builds on this one.
    from terminald.sim.twin import issue_twin

    issued.append(
        issue_twin(
            issued,
            plans,
            authorities,
            auth_key=authorities.card_keys.pop(),
            sign_serial=max(sign_serials.values(), default=first_serial - 1) + 1,
        )
    )
    roots = (
        *(_root_entry(a, "user_auth", "ca") for a in authorities.auth_roots.values()),
        _root_entry(authorities.sign_root, "digital_signature", "ca"),
        _root_entry(authorities.rogue, "untrusted", "untrusted"),
    )
    manifest = TestPkiManifest(out_dir, now, roots, tuple(card.entry for card in issued))
    write_pki(out_dir, authorities, issued, manifest)
    return manifest
