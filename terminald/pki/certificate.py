"""Validation of a JPKI user-authentication certificate against pinned anchors.

The issuer is chosen by the certificate's Authority Key Identifier and then its
signature is checked with that anchor's key: a matching name proves nothing, as
every J-LIS root generation carries the same DN (jpki-card.md §5.2).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import Enum

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID

from terminald.pki.anchors import DECODE_ERRORS, TrustAnchor, TrustStore

# 利用者証明用 certificate policy (jpki-card.md §5.1).
JPKI_USER_AUTH_POLICY = x509.ObjectIdentifier("1.2.392.200149.8.5.1.3.30")
MIN_RSA_BITS = 2048
_ACCEPTED_HASHES = (hashes.SHA256, hashes.SHA384, hashes.SHA512)
_KNOWN_CRITICAL = {
    x509.KeyUsage.oid,
    x509.CertificatePolicies.oid,
    x509.BasicConstraints.oid,
    x509.ExtendedKeyUsage.oid,
}


class CertProblem(Enum):
    MALFORMED = "cert_malformed"
    UNKNOWN_ISSUER = "unknown_issuer"
    SIGNATURE_INVALID = "cert_signature_invalid"
    EXPIRED = "cert_expired"
    NOT_YET_VALID = "cert_not_yet_valid"
    WRONG_USAGE = "cert_wrong_usage"


class CertificateRejected(Exception):
    def __init__(
        self, problem: CertProblem, detail: str, issuer_key_id: bytes | None = None
    ) -> None:
        super().__init__(f"{problem.value}: {detail}")
        self.problem = problem
        self.detail = detail
        # Set once the issuer is proven (a time problem): the log can name the pair.
        self.issuer_key_id = issuer_key_id


@dataclass(frozen=True)
class VerifiedCertificate:
    """A certificate whose chain and usage have been checked once; time is checked per use."""

    der: bytes
    certificate: x509.Certificate
    serial: int
    issuer_key_id: bytes
    anchor: TrustAnchor
    # DER of each CRL distribution point name (revocation/coverage.py): which CRL
    # partition speaks for this certificate. Empty: only whole-issuer data covers it.
    crl_distribution_points: tuple[bytes, ...] = ()
    # Every CRL distribution point names a cRLIssuer (an indirect CRL): no revocation data
    # can speak for this certificate, not even whole-issuer data (its issuer's own CRL
    # need not list it). The revocation check answers unavailable (fail closed).
    indirect_crl_only: bool = False

    @property
    def public_key(self) -> rsa.RSAPublicKey:
        key = self.certificate.public_key()
        assert isinstance(key, rsa.RSAPublicKey)  # checked in verify_certificate
        return key

    @property
    def not_before(self) -> datetime:
        return self.certificate.not_valid_before_utc

    @property
    def not_after(self) -> datetime:
        return self.certificate.not_valid_after_utc

    def check_time(self, now: datetime) -> None:
        """Validity of the certificate and of its anchor at ``now``."""
        issuer = self.issuer_key_id
        if now < self.not_before:
            raise CertificateRejected(
                CertProblem.NOT_YET_VALID,
                f"valid from {self.not_before:%Y-%m-%d %H:%M:%SZ}",
                issuer,
            )
        if now > self.not_after:
            raise CertificateRejected(
                CertProblem.EXPIRED, f"expired {self.not_after:%Y-%m-%d %H:%M:%SZ}", issuer
            )
        if not self.anchor.valid_at(now):
            raise CertificateRejected(
                CertProblem.EXPIRED, f"issuing root {self.anchor.source} is not valid now", issuer
            )


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


def parse_certificate(der: bytes) -> x509.Certificate:
    """Parse and decode every field the checks read; raises MALFORMED otherwise.

    cryptography decodes names, extensions and the key lazily, on first use: decoding
    them here turns a broken AKI, CRLDP, name or key (or a repeated extension) into
    "malformed" at once rather than an exception in a later check.
    """

    def malformed(what: str, exc: Exception) -> CertificateRejected:
        return CertificateRejected(CertProblem.MALFORMED, f"{what} ({_first_line(exc)})")

    try:
        cert = x509.load_der_x509_certificate(der)
    except DECODE_ERRORS as exc:
        raise malformed("not a DER certificate", exc) from exc
    try:
        _ = [extension.value for extension in cert.extensions]
    except x509.DuplicateExtension as exc:
        raise CertificateRejected(
            CertProblem.MALFORMED, f"repeated certificate extension {exc.oid.dotted_string}"
        ) from exc
    except DECODE_ERRORS as exc:
        raise malformed("undecodable certificate extension", exc) from exc
    try:
        _ = (cert.issuer, cert.subject, cert.serial_number, cert.signature)
        _ = (cert.not_valid_before_utc, cert.not_valid_after_utc, cert.tbs_certificate_bytes)
    except DECODE_ERRORS as exc:
        raise malformed("undecodable name, serial or validity", exc) from exc
    try:
        cert.public_key()
    except DECODE_ERRORS as exc:
        raise malformed("undecodable public key", exc) from exc
    return cert


def authority_key_id(cert: x509.Certificate) -> bytes | None:
    try:
        aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    except x509.ExtensionNotFound:
        return None
    return aki.key_identifier


def _signature_verifies(cert: x509.Certificate, anchor: TrustAnchor) -> bool:
    try:
        hash_algorithm = cert.signature_hash_algorithm
    except UnsupportedAlgorithm:  # an algorithm identifier no root of ours signs with
        return False
    if not isinstance(hash_algorithm, _ACCEPTED_HASHES):
        return False
    try:
        anchor.public_key.verify(
            cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(), hash_algorithm
        )
    except InvalidSignature:
        return False
    return cert.issuer == anchor.certificate.subject


def _check_usage(cert: x509.Certificate) -> None:
    def wrong(detail: str) -> CertificateRejected:
        return CertificateRejected(CertProblem.WRONG_USAGE, detail)

    key = cert.public_key()
    if not isinstance(key, rsa.RSAPublicKey) or key.key_size < MIN_RSA_BITS:
        raise wrong("not an RSA key of at least 2048 bits")
    try:
        unknown_critical = [
            e.oid.dotted_string
            for e in cert.extensions
            if e.critical and e.oid not in _KNOWN_CRITICAL
        ]
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
        policies = cert.extensions.get_extension_for_class(x509.CertificatePolicies).value
    except x509.ExtensionNotFound as exc:
        raise wrong(f"missing extension: {exc}") from exc
    except ValueError as exc:
        raise CertificateRejected(CertProblem.MALFORMED, f"undecodable extension: {exc}") from exc
    if unknown_critical:
        raise wrong(f"unknown critical extension {', '.join(unknown_critical)}")
    if not usage.digital_signature:
        raise wrong("keyUsage lacks digitalSignature")
    if JPKI_USER_AUTH_POLICY not in {p.policy_identifier for p in policies}:
        raise wrong("not the JPKI user-authentication policy 1.2.392.200149.8.5.1.3.30")
    try:
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        eku = None
    if eku is not None and ExtendedKeyUsageOID.CLIENT_AUTH not in eku:
        raise wrong("extendedKeyUsage lacks clientAuth")
    try:
        if cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca:
            raise wrong("a CA certificate is not a user certificate")
    except x509.ExtensionNotFound:
        pass


def _crl_points(cert: x509.Certificate) -> list[x509.DistributionPoint]:
    try:
        return list(cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value)
    except x509.ExtensionNotFound:
        return []
    except ValueError as exc:
        raise CertificateRejected(CertProblem.MALFORMED, f"undecodable CRLDP: {exc}") from exc


def crl_distribution_points(cert: x509.Certificate) -> tuple[bytes, ...]:
    """DER names of the certificate's CRL distribution points (directoryName or a name
    relative to the issuer, RFC 5280 §4.2.1.13); raises MALFORMED if undecodable.

    A point with a cRLIssuer is left out: its CRL would be indirect, which the builder
    refuses, so no revocation data can cover it. A certificate with only such points is
    :func:`indirect_crl_only`, which the revocation check must refuse, not treat as a
    certificate without a distribution point.
    """
    names: list[bytes] = []
    for point in _crl_points(cert):
        if point.crl_issuer:
            continue
        if point.relative_name is not None:
            resolved = x509.Name([*cert.issuer.rdns, point.relative_name])
            names.append(resolved.public_bytes())
        for general in point.full_name or ():
            if isinstance(general, x509.DirectoryName):
                names.append(general.value.public_bytes())
    return tuple(dict.fromkeys(names))


def indirect_crl_only(cert: x509.Certificate) -> bool:
    """Whether the certificate has CRL distribution points and every one names a separate
    cRLIssuer: its revocation is published in another issuer's (indirect) CRL, so its own
    issuer's CRLs, whole or partitioned, need not list it. Raises MALFORMED if undecodable.
    """
    points = _crl_points(cert)
    return bool(points) and all(point.crl_issuer for point in points)


INDIRECT_CRL_DETAIL = (
    "the certificate's CRL distribution points all name a separate cRLIssuer (an indirect "
    "CRL), which no revocation data covers"
)


def find_issuer(cert: x509.Certificate, trust: TrustStore) -> TrustAnchor:
    """The anchor named by the AKI whose key verifies the signature; raises otherwise."""
    key_id = authority_key_id(cert)
    if key_id is None:
        raise CertificateRejected(CertProblem.UNKNOWN_ISSUER, "no authorityKeyIdentifier keyid")
    anchors = trust.find(key_id)
    if not anchors:
        raise CertificateRejected(
            CertProblem.UNKNOWN_ISSUER, f"no trusted root with key id {key_id.hex()}"
        )
    anchor = next((a for a in anchors if _signature_verifies(cert, a)), None)
    if anchor is None:
        raise CertificateRejected(
            CertProblem.SIGNATURE_INVALID, f"signature does not verify with root {key_id.hex()}"
        )
    return anchor


def verify_certificate(der: bytes, trust: TrustStore, now: datetime) -> VerifiedCertificate:
    """Chain, usage and time checks; raises :class:`CertificateRejected` with the first problem.

    A card's certificate is untrusted input: whatever in it cannot be decoded, at any
    step, is MALFORMED (the property test in tests/unit/test_certificate_fuzz.py holds it).
    """
    try:
        return _verify(der, trust, now)
    except DECODE_ERRORS as exc:
        raise CertificateRejected(
            CertProblem.MALFORMED, f"undecodable ({_first_line(exc)})"
        ) from exc


def _verify(der: bytes, trust: TrustStore, now: datetime) -> VerifiedCertificate:
    cert = parse_certificate(der)
    anchor = find_issuer(cert, trust)
    _check_usage(cert)
    if cert.serial_number <= 0:
        raise CertificateRejected(CertProblem.MALFORMED, "serial number not positive")
    points = crl_distribution_points(cert)
    verified = VerifiedCertificate(
        der, cert, cert.serial_number, anchor.key_id, anchor, points, indirect_crl_only(cert)
    )
    verified.check_time(now)
    return verified
