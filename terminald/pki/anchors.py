"""Trust anchors: the pinned J-LIS user-authentication roots, loaded from files.

All J-LIS root generations share one DN (jpki-card.md §5.2), so anchors are
indexed by key identifier, never by name. The production roots published by
J-LIS that we have (2015, 2023) ship in the package; the 2019 root and any test
roots are added by configuration (a directory of PEM/DER files).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from terminald.files import MAX_CERT_FILE_SIZE, read_limited

ANCHOR_SUFFIXES = (".pem", ".crt", ".cer", ".der")
# What cryptography raises for bytes it cannot decode (it decodes each field lazily, on
# first use). On a card's certificate any of these is "malformed"; in an anchor file,
# "not a usable anchor". Never an exception out of the checks.
DECODE_ERRORS: tuple[type[Exception], ...] = (
    ValueError,
    # A name attribute re-tagged as a BIT STRING (outside x500UniqueIdentifier) makes
    # cryptography's NameAttribute raise TypeError while decoding (found by scripts/fuzz).
    TypeError,
    UnsupportedAlgorithm,
    x509.DuplicateExtension,
    x509.UnsupportedGeneralNameType,
    x509.InvalidVersion,
)


class TrustAnchorError(ValueError):
    """A file given as a trust anchor is not a usable self-signed CA certificate."""


def key_identifier(cert: x509.Certificate) -> bytes:
    """The certificate's SKI, or the RFC 5280 §4.2.1.2 method (1) value if it has none."""
    try:
        return cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    except x509.ExtensionNotFound:
        return x509.SubjectKeyIdentifier.from_public_key(cert.public_key()).digest


@dataclass(frozen=True)
class TrustAnchor:
    certificate: x509.Certificate
    key_id: bytes
    source: str

    @property
    def public_key(self) -> rsa.RSAPublicKey:
        key = self.certificate.public_key()
        assert isinstance(key, rsa.RSAPublicKey)  # checked when loaded
        return key

    def valid_at(self, now: datetime) -> bool:
        c = self.certificate
        return c.not_valid_before_utc <= now <= c.not_valid_after_utc


def _check_anchor(cert: x509.Certificate, source: str) -> TrustAnchor:
    try:
        return _checked_anchor(cert, source)
    except DECODE_ERRORS as exc:
        raise TrustAnchorError(f"{source}: undecodable certificate ({exc})") from exc


def _checked_anchor(cert: x509.Certificate, source: str) -> TrustAnchor:
    key = cert.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        raise TrustAnchorError(f"{source}: not an RSA key")
    try:
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound as exc:
        raise TrustAnchorError(f"{source}: no BasicConstraints, not a CA") from exc
    if not constraints.ca:
        raise TrustAnchorError(f"{source}: BasicConstraints says not a CA")
    if cert.issuer != cert.subject:
        raise TrustAnchorError(f"{source}: not self-issued (issuer differs from subject)")
    hash_algorithm = cert.signature_hash_algorithm
    if hash_algorithm is None:
        raise TrustAnchorError(f"{source}: unsupported signature algorithm")
    try:
        key.verify(cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(), hash_algorithm)
    except InvalidSignature as exc:
        raise TrustAnchorError(f"{source}: self-signature does not verify") from exc
    return TrustAnchor(cert, key_identifier(cert), source)


def load_certificates(data: bytes, source: str) -> list[x509.Certificate]:
    """Parse PEM (one or more certificates) or a single DER certificate."""
    try:
        if b"-----BEGIN" in data:
            return x509.load_pem_x509_certificates(data)
        return [x509.load_der_x509_certificate(data)]
    except DECODE_ERRORS as exc:
        raise TrustAnchorError(f"{source}: not a certificate ({exc})") from exc


class TrustStore:
    """Anchors indexed by key identifier."""

    def __init__(self, anchors: Iterable[TrustAnchor]) -> None:
        self._by_key_id: dict[bytes, list[TrustAnchor]] = {}
        for anchor in anchors:
            self._by_key_id.setdefault(anchor.key_id, []).append(anchor)

    @classmethod
    def from_paths(cls, paths: Iterable[Path]) -> TrustStore:
        """Load every certificate file in the given files and directories."""
        anchors: list[TrustAnchor] = []
        for path in paths:
            files = (
                sorted(p for p in path.iterdir() if p.suffix.lower() in ANCHOR_SUFFIXES)
                if path.is_dir()
                else [path]
            )
            if path.is_dir() and not files:
                raise TrustAnchorError(
                    f"{path}: no certificate files ({', '.join(ANCHOR_SUFFIXES)})"
                )
            for file in files:
                data = read_limited(file, MAX_CERT_FILE_SIZE)
                for cert in load_certificates(data, str(file)):
                    anchors.append(_check_anchor(cert, str(file)))
        return cls(anchors)

    @classmethod
    def production(cls) -> TrustStore:
        """The J-LIS user-authentication roots shipped with the package."""
        anchors: list[TrustAnchor] = []
        for entry in sorted(resources.files("terminald.pki").joinpath("roots").iterdir(), key=str):
            if entry.name.endswith(".pem"):
                for cert in load_certificates(entry.read_bytes(), f"builtin:{entry.name}"):
                    anchors.append(_check_anchor(cert, f"builtin:{entry.name}"))
        return cls(anchors)

    def find(self, key_id: bytes) -> list[TrustAnchor]:
        return list(self._by_key_id.get(key_id, ()))

    def anchors(self) -> list[TrustAnchor]:
        return [a for group in self._by_key_id.values() for a in group]

    def __len__(self) -> int:
        return sum(len(a) for a in self._by_key_id.values())
