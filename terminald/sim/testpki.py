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
"""

from __future__ import annotations

import enum
import json
import os
import secrets
import shutil
import string
import tempfile
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID

from terminald.core.reasons import Reason
from terminald.sim.profile import (
    MYNUMBER_CONTACT_ATR,
    OTHER_CARD_ATR,
    CardKind,
    CardProfile,
)

MANIFEST_FORMAT = "terminald-test-pki/1"
MANIFEST_NAME = "manifest.json"
MAX_CARDS = 999  # card-001 … card-999

JST = timezone(timedelta(hours=9), "JST")
_ORG = "JPKI-TEST"
_JLIS = "Japan Agency for Local Authority Information Systems"
_AUTH_OU = "JPKI for user authentication"
_SIGN_OU = "JPKI for digital signature"

# Policies (jpki-card.md §5.1; the signing policy is jsrsasign's "jpki-cp-sign-class20").
USER_AUTH_POLICY = x509.ObjectIdentifier("1.2.392.200149.8.5.1.3.30")
SIGNING_POLICY = x509.ObjectIdentifier("1.2.392.200149.8.5.1.1.20")
CPS_URI = "http://www.jpki.go.jp/cps.html"
# Production says http://ocspauthnorm.jpki.go.jp; ".invalid" can never resolve (RFC 2606).
OCSP_URL = "http://ocspauthnorm.jpki-test.invalid"
SIGN_OCSP_URL = "http://ocspsignnorm.jpki-test.invalid"

FIRST_USER_SERIAL = 0x0100_0001  # 4 DER bytes `02 04 01 00 00 01`, like production serials
_MAX_USER_SERIAL = 0x7FFF_FFFF  # still 4 DER bytes: no leading 00 needed


def _name(*attributes: tuple[x509.ObjectIdentifier, str]) -> x509.Name:
    # cryptography encodes C as PrintableString and the rest as UTF8String, as J-LIS does.
    return x509.Name([x509.NameAttribute(oid, value) for oid, value in attributes])


def _ca_name(unit: str) -> x509.Name:
    return _name(
        (NameOID.COUNTRY_NAME, "JP"),
        (NameOID.ORGANIZATION_NAME, _ORG),
        (NameOID.ORGANIZATIONAL_UNIT_NAME, unit),
        (NameOID.ORGANIZATIONAL_UNIT_NAME, _JLIS),
    )


# The one DN every auth root generation shares (J-LIS's test hierarchy, jpki-card.md §5.2).
TEST_AUTH_ROOT_NAME = _ca_name(_AUTH_OU)
TEST_SIGN_ROOT_NAME = _ca_name(_SIGN_OU)


def _japanese_name(service_unit: str) -> x509.Name:
    """The Japanese DN of a root's SAN and a user certificate's IssuerAltName (§5.1)."""
    return _name(
        (NameOID.COUNTRY_NAME, "JP"),
        (NameOID.ORGANIZATION_NAME, "公的個人認証サービス"),
        (NameOID.ORGANIZATIONAL_UNIT_NAME, service_unit),
        (NameOID.ORGANIZATIONAL_UNIT_NAME, "地方公共団体情報システム機構"),
    )


AUTH_JAPANESE_NAME = _japanese_name("公的個人認証サービス利用者証明用")
# By analogy with the auth one; no signing-root SAN was decoded here (synthetic).
SIGN_JAPANESE_NAME = _japanese_name("公的個人認証サービス署名用")


@dataclass(frozen=True)
class Municipality:
    """Where a card was issued: it names the CRL distribution point and sits in the CN."""

    prefecture: str
    city: str  # as spelled in the CRLDP CN, e.g. "Sapporo-shi-Minami-ku"
    code: str  # 5-digit local-government code, CN characters 15-19 (§5.1, inference)


MUNICIPALITIES = (
    Municipality("Tokyo", "Kiyose-shi", "13221"),
    Municipality("Hokkaido", "Sapporo-shi-Minami-ku", "01106"),
    Municipality("Osaka", "Osaka-shi-Kita-ku", "27127"),
    Municipality("Kanagawa", "Yokohama-shi-Naka-ku", "14104"),
    Municipality("Fukuoka", "Fukuoka-shi-Hakata-ku", "40132"),
)


def municipality_for(index: int) -> Municipality:
    """The municipality of the ``index``-th planned card: the test PKI spreads them round."""
    return MUNICIPALITIES[index % len(MUNICIPALITIES)]


def crl_distribution_point_name(municipality: Municipality, unit: str = _AUTH_OU) -> x509.Name:
    """Per-municipality CRLDP dirName, e.g. ``…, OU=Tokyo, CN=Kiyose-shi CRLDP`` (§5.1)."""
    return _name(
        (NameOID.COUNTRY_NAME, "JP"),
        (NameOID.ORGANIZATION_NAME, _ORG),
        (NameOID.ORGANIZATIONAL_UNIT_NAME, unit),
        (NameOID.ORGANIZATIONAL_UNIT_NAME, "CRL Distribution Points"),
        (NameOID.ORGANIZATIONAL_UNIT_NAME, municipality.prefecture),
        (NameOID.COMMON_NAME, f"{municipality.city} CRLDP"),
    )


# --------------------------------------------------------------------------- dates


def _add_years(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February in a non-leap year
        return day.replace(year=day.year + years, day=28)


def _end_of_jst_day(day: date) -> datetime:
    """23:59:59 JST on ``day``, as UTC: J-LIS notAfter values all read ``…14:59:59Z``."""
    return datetime.combine(day, time(23, 59, 59), JST).astimezone(UTC)


def root_not_after(not_before: datetime) -> datetime:
    """The day before the 10th anniversary, 23:59:59 JST (authca01: 2015-10-20 → 2025-10-19)."""
    issued_jst = not_before.astimezone(JST).date()
    return _end_of_jst_day(_add_years(issued_jst, 10) - timedelta(days=1))


def fifth_birthday_after(issued: datetime, birthday: tuple[int, int]) -> datetime:
    """notAfter of a user-auth certificate: 23:59:59 JST on the 5th birthday after issuance."""
    issued_jst = issued.astimezone(JST).date()
    month, day = birthday
    first = date(issued_jst.year, month, day)
    if first <= issued_jst:
        first = date(issued_jst.year + 1, month, day)
    return _end_of_jst_day(_add_years(first, 4))


# --------------------------------------------------------------------------- authorities


@dataclass(frozen=True)
class Authority:
    """A root certificate and its private key."""

    name: str
    certificate: x509.Certificate
    key: rsa.RSAPrivateKey

    @property
    def key_id(self) -> bytes:
        return self.certificate.extensions.get_extension_for_class(
            x509.SubjectKeyIdentifier
        ).value.digest

    @property
    def serial(self) -> int:
        return self.certificate.serial_number

    @property
    def subject(self) -> x509.Name:
        return self.certificate.subject


def generate_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def generate_keys(count: int) -> list[rsa.RSAPrivateKey]:
    """RSA-2048 keys, in parallel: key generation dominates the build time (~75 ms each)."""
    workers = max(1, min(count, os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda _: generate_key(), range(count)))


def make_root(
    name: str,
    *,
    subject: x509.Name,
    japanese_name: x509.Name,
    key: rsa.RSAPrivateKey,
    serial: int,
    not_before: datetime,
) -> Authority:
    """A self-signed root with the real J-LIS roots' extensions, in their order."""
    public_key = key.public_key()
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(public_key)
        .serial_number(serial)
        .not_valid_before(not_before)
        .not_valid_after(root_not_after(not_before))
        .add_extension(_key_usage(key_cert_sign=True, crl_sign=True), critical=True)
        .add_extension(
            x509.SubjectAlternativeName([x509.DirectoryName(japanese_name)]), critical=False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(_crl_distribution_points(subject), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .sign(key, hashes.SHA256())
    )
    return Authority(name, certificate, key)


def _key_usage(
    *,
    digital_signature: bool = False,
    content_commitment: bool = False,
    key_encipherment: bool = False,
    key_cert_sign: bool = False,
    crl_sign: bool = False,
) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=content_commitment,
        key_encipherment=key_encipherment,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=key_cert_sign,
        crl_sign=crl_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _crl_distribution_points(point: x509.Name) -> x509.CRLDistributionPoints:
    # dirName only, no URL (jpki-card.md §5.1).
    return x509.CRLDistributionPoints(
        [
            x509.DistributionPoint(
                full_name=[x509.DirectoryName(point)],
                relative_name=None,
                reasons=None,
                crl_issuer=None,
            )
        ]
    )


def _authority_key_identifier(
    key_id: bytes, issuer: x509.Name, serial: int
) -> x509.Extension[x509.AuthorityKeyIdentifier]:
    value = x509.AuthorityKeyIdentifier(
        key_identifier=key_id,
        authority_cert_issuer=[x509.DirectoryName(issuer)],
        authority_cert_serial_number=serial,
    )
    return x509.Extension(value.oid, False, value)


def _policies(policy: x509.ObjectIdentifier) -> x509.CertificatePolicies:
    return x509.CertificatePolicies([x509.PolicyInformation(policy, [CPS_URI])])


def _ocsp(url: str) -> x509.AuthorityInformationAccess:
    return x509.AuthorityInformationAccess(
        [
            x509.AccessDescription(
                AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(url)
            )
        ]
    )


# --------------------------------------------------------------------------- user certificates

_CN_LETTERS = "ABCDEFGHIJKLMN"  # covers the letters of the two published CNs (§5.1)


def synthetic_common_name(municipality: Municipality, *, test_prefix: str = "9") -> str:
    """A 23-character subject CN in the production pattern, e.g. ``997794E9AGCIEG13221003A``.

    The one production sample starts with ``8``, the one JPKI-TEST sample with ``9`` (§5.1).
    """
    digits = "".join(secrets.choice(string.digits) for _ in range(5))
    letters = "".join(secrets.choice(_CN_LETTERS) for _ in range(6))
    cn = f"{test_prefix}{digits}E{secrets.choice(string.digits)}{letters}{municipality.code}003A"
    assert len(cn) == 23
    return cn


class UsageFlaw(enum.Enum):
    """How a deliberately wrong-usage certificate is wrong (only one, so the test is exact)."""

    NONE = "none"
    # KeyUsage keyEncipherment instead of digitalSignature: a key that may not sign.
    KEY_ENCIPHERMENT_ONLY = "key_encipherment_only"


@dataclass(frozen=True)
class UserCertificateRequest:
    """What goes into one user-authentication certificate."""

    public_key: rsa.RSAPublicKey
    serial: int
    not_before: datetime
    not_after: datetime
    common_name: str
    municipality: Municipality
    usage_flaw: UsageFlaw = UsageFlaw.NONE


def issue_auth_certificate(
    request: UserCertificateRequest,
    issuer: Authority,
    *,
    signing_key: rsa.RSAPrivateKey | None = None,
) -> x509.Certificate:
    """A user-authentication certificate shaped like the production sample (§5.1).

    ``signing_key`` forges: the certificate still names ``issuer`` (DN and AKI) but is signed
    by another key, as an attacker who copied a real root's public fields would do.
    """
    if not 0 < request.serial <= _MAX_USER_SERIAL:
        raise ValueError(f"serial {request.serial:#x} is not a positive 4-byte integer")
    usage = (
        _key_usage(key_encipherment=True)
        if request.usage_flaw is UsageFlaw.KEY_ENCIPHERMENT_ONLY
        else _key_usage(digital_signature=True)
    )
    aki = _authority_key_identifier(issuer.key_id, issuer.subject, issuer.serial)
    builder = (
        x509.CertificateBuilder()
        .subject_name(
            _name((NameOID.COUNTRY_NAME, "JP"), (NameOID.COMMON_NAME, request.common_name))
        )
        .issuer_name(issuer.subject)
        .public_key(request.public_key)
        .serial_number(request.serial)
        .not_valid_before(request.not_before)
        .not_valid_after(request.not_after)
        .add_extension(usage, critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(_policies(USER_AUTH_POLICY), critical=True)
        .add_extension(
            x509.IssuerAlternativeName([x509.DirectoryName(AUTH_JAPANESE_NAME)]), critical=False
        )
        .add_extension(
            _crl_distribution_points(crl_distribution_point_name(request.municipality)),
            critical=False,
        )
        .add_extension(_ocsp(OCSP_URL), critical=False)
        .add_extension(aki.value, critical=aki.critical)
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(request.public_key), critical=False
        )
    )
    return builder.sign(signing_key or issuer.key, hashes.SHA256())


def issue_sign_certificate(request: UserCertificateRequest, issuer: Authority) -> x509.Certificate:
    """A signing certificate (EF 0001) so a card looks complete to OpenSC's driver.

    Synthetic and minimal: the real one carries name, address, birth date and sex in its
    SAN (§1.2); this one does not, since nothing here reads them.
    """
    m = request.municipality
    subject = _name(
        (NameOID.COUNTRY_NAME, "JP"),
        (NameOID.LOCALITY_NAME, m.prefecture),
        (NameOID.LOCALITY_NAME, m.city),
        (NameOID.COMMON_NAME, request.common_name),
    )
    aki = _authority_key_identifier(issuer.key_id, issuer.subject, issuer.serial)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.subject)
        .public_key(request.public_key)
        .serial_number(request.serial)
        .not_valid_before(request.not_before)
        .not_valid_after(request.not_after)
        .add_extension(_key_usage(digital_signature=True, content_commitment=True), critical=True)
        .add_extension(_policies(SIGNING_POLICY), critical=True)
        .add_extension(
            x509.IssuerAlternativeName([x509.DirectoryName(SIGN_JAPANESE_NAME)]), critical=False
        )
        .add_extension(
            _crl_distribution_points(crl_distribution_point_name(m, _SIGN_OU)), critical=False
        )
        .add_extension(_ocsp(SIGN_OCSP_URL), critical=False)
        .add_extension(aki.value, critical=aki.critical)
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(request.public_key), critical=False
        )
        .sign(issuer.key, hashes.SHA256())
    )


def flip_signature_bit(der: bytes) -> bytes:
    """The certificate with one bit of its signature value flipped; it still parses.

    The signature BIT STRING is the last field of the DER, so its last byte is signature.
    """
    damaged = bytearray(der)
    damaged[-1] ^= 0x01
    return bytes(damaged)


# --------------------------------------------------------------------------- the card set


class CertFlaw(enum.Enum):
    """The deliberately broken certificates; each is the auth cert of its own card."""

    FORGED_ISSUER = "forged-issuer"  # AKI names a trusted root, signed by another key
    UNKNOWN_ISSUER = "unknown-issuer"  # same DN, AKI and signature of an untrusted root
    EXPIRED = "expired"
    NOT_YET_VALID = "not-yet-valid"
    WRONG_USAGE = "wrong-usage"  # UsageFlaw.KEY_ENCIPHERMENT_ONLY
    BAD_SIGNATURE = "bad-signature"  # a good certificate with one signature bit flipped


FLAW_VERDICTS: dict[CertFlaw, Reason] = {
    CertFlaw.FORGED_ISSUER: Reason.CERT_SIGNATURE_INVALID,
    CertFlaw.UNKNOWN_ISSUER: Reason.UNKNOWN_ISSUER,
    CertFlaw.EXPIRED: Reason.CERT_EXPIRED,
    CertFlaw.NOT_YET_VALID: Reason.CERT_NOT_YET_VALID,
    CertFlaw.WRONG_USAGE: Reason.CERT_WRONG_USAGE,
    CertFlaw.BAD_SIGNATURE: Reason.CERT_SIGNATURE_INVALID,
}

_FLAW_NOTES: dict[CertFlaw, str] = {
    CertFlaw.FORGED_ISSUER: "AKI claims a trusted root's key id; signed by an untrusted key",
    CertFlaw.UNKNOWN_ISSUER: "same issuer DN; AKI and signature of an untrusted root",
    CertFlaw.EXPIRED: "notAfter in the past",
    CertFlaw.NOT_YET_VALID: "notBefore in the future",
    CertFlaw.WRONG_USAGE: "KeyUsage keyEncipherment only, no digitalSignature",
    CertFlaw.BAD_SIGNATURE: "one bit of the certificate's signature value flipped",
}


@dataclass(frozen=True)
class RootGeneration:
    """One auth root generation, issued ``years_ago`` before the build time.

    Relative to ``now`` so that a PKI built at any date looks like J-LIS today: with 10-year
    roots issued 11, 7 and 3 years ago the oldest has expired, as authca01 did in 2025.
    Serials copy the real ones' shapes: 1 (authca01) and the JPKI-TEST roots' (§5.2).
    """

    name: str
    years_ago: int
    serial: int


ROOT_GENERATIONS = (
    RootGeneration("test-gen1", 11, 0x01),
    RootGeneration("test-gen2", 7, 0x00BFCD),
    RootGeneration("test-gen3", 3, 0x218887),
)
NEWEST_ROOT = ROOT_GENERATIONS[-1].name
OLDER_ROOT = ROOT_GENERATIONS[-2].name  # still valid: issues the "older generation" cards
SIGN_ROOT = "test-sign"
ROGUE_ROOT = "rogue-root"  # not trusted; copies the newest root's DN and serial


@dataclass(frozen=True)
class CardPlan:
    """One card to issue, before any key or certificate exists."""

    name: str
    expected: Reason
    kind: CardKind = "jpki"
    root: str = NEWEST_ROOT
    issued: datetime | None = None
    flaw: CertFlaw | None = None
    auth_tries: int = 3
    note: str = ""


def _random_time(start: datetime, end: datetime) -> datetime:
    span = int((end - start).total_seconds())
    return start + timedelta(seconds=secrets.randbelow(max(span, 1)))


def _years_before(now: datetime, years: int) -> datetime:
    return datetime.combine(_add_years(now.date(), -years), now.time(), now.tzinfo)


def plan_cards(cards: int, now: datetime) -> list[CardPlan]:
    """The card set: ``cards`` good cards, PIN-state cards, other card kinds, broken certs.

    Issuance windows (days before ``now``) keep every verdict true for months after ``now``:
    a cert lives 4-5 years (until the 5th birthday after issuance).
    """
    if not 1 <= cards <= MAX_CARDS:
        raise ValueError(f"cards must be 1..{MAX_CARDS}, not {cards}")
    days = timedelta(days=1)
    newest_since = _years_before(now, ROOT_GENERATIONS[-1].years_ago) + 7 * days

    def recent() -> datetime:  # under the newest root
        return _random_time(newest_since, now - days)

    def older() -> datetime:  # under the previous root, before the newest existed
        return _random_time(now - 1400 * days, now - 1130 * days)

    plans = [
        CardPlan(
            name=f"card-{index:03d}",
            expected=Reason.OK,
            root=OLDER_ROOT if index % 3 == 0 else NEWEST_ROOT,
            issued=older() if index % 3 == 0 else recent(),
        )
        for index in range(1, cards + 1)
    ]
    plans += [
        CardPlan(
            "last-try",
            Reason.PIN_TRIES_LOW,
            root=OLDER_ROOT,
            issued=older(),
            auth_tries=1,
            note="one PIN try left: a terminal must refuse rather than risk it",
        ),
        CardPlan("blocked", Reason.PIN_BLOCKED, issued=recent(), auth_tries=0),
        CardPlan(
            "face-auth",
            Reason.FACE_AUTH_CARD,
            kind="face_auth",
            issued=recent(),
            note="顔認証マイナンバーカード: no PIN, no signing certificate",
        ),
        CardPlan("non-jpki", Reason.NOT_JPKI_CARD, kind="non_jpki", note="no JPKI application"),
    ]
    for flaw in CertFlaw:
        issued = recent()
        root = NEWEST_ROOT
        if flaw is CertFlaw.EXPIRED:  # 5.3-5.75 years ago: ended 4+ months before now
            issued, root = _random_time(now - 2100 * days, now - 1950 * days), OLDER_ROOT
        elif flaw is CertFlaw.NOT_YET_VALID:
            issued = _random_time(now + 300 * days, now + 400 * days)
        plans.append(
            CardPlan(
                flaw.value,
                FLAW_VERDICTS[flaw],
                root=root,
                issued=issued,
                flaw=flaw,
                note=_FLAW_NOTES[flaw],
            )
        )
    return plans


def random_pin() -> str:
    return f"{secrets.randbelow(10_000):04d}"


def random_sign_password() -> str:
    """6-16 characters, uppercase letters and digits (jpki-card.md §3)."""
    length = 8 + secrets.randbelow(5)
    return "".join(secrets.choice(string.ascii_uppercase + string.digits) for _ in range(length))


def random_birthday() -> tuple[int, int]:
    return 1 + secrets.randbelow(12), 1 + secrets.randbelow(28)  # never 29 February


# --------------------------------------------------------------------------- manifest


@dataclass(frozen=True)
class RootEntry:
    """One CA of the test PKI as recorded in ``ca/index.json`` and the manifest."""

    name: str
    purpose: str  # "user_auth", "digital_signature" or "untrusted"
    key_id: str  # SKI, hex
    serial: int
    not_before: datetime
    not_after: datetime
    cert: str  # path relative to the PKI directory
    key: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "purpose": self.purpose,
            "key_id": self.key_id,
            "serial": self.serial,
            "not_before": self.not_before.isoformat(),
            "not_after": self.not_after.isoformat(),
            "cert": self.cert,
            "key": self.key,
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> RootEntry:
        return cls(
            name=raw["name"],
            purpose=raw["purpose"],
            key_id=raw["key_id"],
            serial=int(raw["serial"]),
            not_before=datetime.fromisoformat(raw["not_before"]),
            not_after=datetime.fromisoformat(raw["not_after"]),
            cert=raw["cert"],
            key=raw["key"],
        )


@dataclass(frozen=True)
class CardEntry:
    """One card profile and the verdict a terminal should reach for it."""

    name: str
    profile: str  # path relative to the PKI directory
    kind: CardKind
    expected: Reason
    pin: str | None
    auth_tries: int
    sign_password: str | None = None
    root: str | None = None  # the CA that signed the auth cert (rogue-root for forgeries)
    serial: int | None = None
    issuer_key_id: str | None = None  # the AKI keyid the certificate claims, hex
    common_name: str | None = None
    crl_distribution_point: str | None = None  # RFC 4514 form of the CRLDP dirName
    not_before: datetime | None = None
    not_after: datetime | None = None
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "profile": self.profile,
            "kind": self.kind,
            "expected": self.expected.value,
            "pin": self.pin,
            "auth_tries": self.auth_tries,
            "sign_password": self.sign_password,
            "root": self.root,
            "serial": self.serial,
            "issuer_key_id": self.issuer_key_id,
            "common_name": self.common_name,
            "crl_distribution_point": self.crl_distribution_point,
            "not_before": _iso_or_none(self.not_before),
            "not_after": _iso_or_none(self.not_after),
            "note": self.note,
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> CardEntry:
        return cls(
            name=raw["name"],
            profile=raw["profile"],
            kind=raw["kind"],
            expected=Reason(raw["expected"]),
            pin=raw["pin"],
            auth_tries=int(raw["auth_tries"]),
            sign_password=raw.get("sign_password"),
            root=raw.get("root"),
            serial=raw.get("serial"),
            issuer_key_id=raw.get("issuer_key_id"),
            common_name=raw.get("common_name"),
            crl_distribution_point=raw.get("crl_distribution_point"),
            not_before=_datetime_or_none(raw.get("not_before")),
            not_after=_datetime_or_none(raw.get("not_after")),
            note=raw.get("note", ""),
        )


def _iso_or_none(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _datetime_or_none(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


@dataclass(frozen=True)
class TestPkiManifest:
    """What :func:`build_test_pki` wrote: ``manifest.json`` in memory."""

    __test__ = False  # not a pytest test class, despite the name

    directory: Path
    generated_at: datetime
    roots: tuple[RootEntry, ...]
    cards: tuple[CardEntry, ...]

    @property
    def trust_dir(self) -> Path:
        """Give this to the terminal as ``--trust``: the trusted auth roots only."""
        return self.directory / "trust"

    @property
    def ca_dir(self) -> Path:
        return self.directory / "ca"

    def card(self, name: str) -> CardEntry:
        for entry in self.cards:
            if entry.name == name:
                return entry
        raise KeyError(name)

    def root(self, name: str) -> RootEntry:
        for entry in self.roots:
            if entry.name == name:
                return entry
        raise KeyError(name)

    def profile_path(self, name: str) -> Path:
        return self.directory / self.card(name).profile

    def load_profile(self, name: str) -> CardProfile:
        return CardProfile.load(self.profile_path(name))

    def to_json(self) -> str:
        raw = {
            "format": MANIFEST_FORMAT,
            "generated_at": self.generated_at.isoformat(),
            "trust_dir": "trust",
            "roots": [root.to_dict() for root in self.roots],
            "cards": [card.to_dict() for card in self.cards],
        }
        return json.dumps(raw, indent=2, ensure_ascii=False) + "\n"

    @classmethod
    def load(cls, directory: Path) -> TestPkiManifest:
        raw = json.loads((directory / MANIFEST_NAME).read_text(encoding="utf-8"))
        if raw.get("format") != MANIFEST_FORMAT:
            raise ValueError(f"{directory}: not a {MANIFEST_FORMAT} manifest")
        return cls(
            directory=directory,
            generated_at=datetime.fromisoformat(raw["generated_at"]),
            roots=tuple(RootEntry.from_dict(r) for r in raw["roots"]),
            cards=tuple(CardEntry.from_dict(c) for c in raw["cards"]),
        )


# --------------------------------------------------------------------------- building


class TestPkiError(Exception):
    """The output directory cannot be used."""

    __test__ = False


@dataclass
class PkiAuthorities:
    """Every CA of one test PKI and the keys still to hand out to cards."""

    auth_roots: dict[str, Authority]
    sign_root: Authority
    rogue: Authority
    sign_key: rsa.RSAPrivateKey  # shared by every card's signing cert, to save key generation
    card_keys: list[rsa.RSAPrivateKey] = field(default_factory=list)


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


def _pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


def _key_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),  # a test PKI: other tools sign CRLs with these keys
    )


def _issuer_for(plan: CardPlan, authorities: PkiAuthorities) -> tuple[Authority, Authority]:
    """(the CA the certificate names, the CA whose key signs it)."""
    named = authorities.auth_roots[plan.root]
    if plan.flaw is CertFlaw.UNKNOWN_ISSUER:
        return authorities.rogue, authorities.rogue
    if plan.flaw is CertFlaw.FORGED_ISSUER:
        return named, authorities.rogue
    return named, named


@dataclass(frozen=True)
class IssuedCard:
    profile: CardProfile
    entry: CardEntry


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
        auth_key_pem=_key_pem(auth_key),
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
            sign_key_pem=_key_pem(authorities.sign_key),
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
    _check_replaceable(out_dir)
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
    _write_pki(out_dir, authorities, issued, manifest)
    return manifest


# --------------------------------------------------------------------------- files


def _check_replaceable(out_dir: Path) -> None:
    """Only ever replace an empty directory or an earlier test PKI: never a user's files."""
    if not out_dir.exists():
        return
    if not out_dir.is_dir():
        raise TestPkiError(f"{out_dir} exists and is not a directory")
    if any(out_dir.iterdir()) and not (out_dir / MANIFEST_NAME).is_file():
        raise TestPkiError(
            f"{out_dir} is not empty and holds no {MANIFEST_NAME}: refusing to replace it"
        )


def _write_file(path: Path, data: bytes, *, private: bool = False) -> None:
    """Write temp, fsync, rename: a reader sees the old file or the whole new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o600 if private else 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_authority(folder: Path, authority: Authority) -> None:
    _write_file(folder / f"{authority.name}.pem", _pem(authority.certificate))
    _write_file(folder / f"{authority.name}.key.pem", _key_pem(authority.key), private=True)


def _write_tree(
    root: Path,
    authorities: PkiAuthorities,
    issued: Sequence[IssuedCard],
    manifest: TestPkiManifest,
) -> None:
    for authority in authorities.auth_roots.values():
        _write_file(root / "trust" / f"{authority.name}.pem", _pem(authority.certificate))
        _write_authority(root / "ca", authority)
    _write_authority(root / "ca", authorities.sign_root)
    ca_index = [entry.to_dict() for entry in manifest.roots if entry.purpose != "untrusted"]
    _write_file(root / "ca" / "index.json", (json.dumps(ca_index, indent=2) + "\n").encode())
    _write_authority(root / "untrusted", authorities.rogue)
    for card in issued:
        card.profile.save(root / card.entry.profile)  # atomic, mode 0600 (keys and PINs)
    _write_file(root / MANIFEST_NAME, manifest.to_json().encode(), private=True)
    for folder in ("trust", "ca", "untrusted", "cards", "."):
        _fsync_dir(root / folder)


def _write_pki(
    out_dir: Path,
    authorities: PkiAuthorities,
    issued: Sequence[IssuedCard],
    manifest: TestPkiManifest,
) -> None:
    """Build the whole tree beside ``out_dir``, then swap it in."""
    parent = out_dir.absolute().parent
    parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=parent, prefix=f".{out_dir.name}.new-"))
    try:
        os.chmod(staging, 0o755)  # noqa: S103 -- like any mkdir; secrets inside are 0600
        _write_tree(staging, authorities, issued, manifest)
        _swap_in(staging, out_dir.absolute())
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _swap_in(staging: Path, target: Path) -> None:
    """Replace ``target`` by ``staging``. A crash between the two renames leaves the old
    tree complete under ``.NAME.old-*`` beside it; never a mix of old and new files."""
    old: Path | None = None
    if target.exists():
        old = target.parent / f".{target.name}.old-{secrets.token_hex(4)}"
        os.rename(target, old)
    os.rename(staging, target)
    _fsync_dir(target.parent)
    if old is not None:
        shutil.rmtree(old)
