"""The X.509 side of the test PKI: J-LIS-shaped names, dates, roots and user certificates.

Facts copied from production (shared/reference/jpki-card.md §5): roots carry the real
roots' extensions in their order, user-authentication certificates follow the production
sample extension for extension, notAfter is 23:59:59 JST. See terminald.sim.testpki.
"""

from __future__ import annotations

import enum
import os
import secrets
import string
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID

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
