"""Helpers for the audit log's tests: a root, a card certificate it issued, evidence."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from terminald.pki.anchors import TrustAnchor, TrustStore, key_identifier
from terminald.store.audit import AuditEntry

AT = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Card:
    der: bytes
    key: rsa.RSAPrivateKey
    issuer: bytes  # the root's key id

    def evidence(self, challenge: bytes) -> tuple[bytes, bytes, bytes]:
        signature = self.key.sign(challenge, padding.PKCS1v15(), hashes.SHA256())
        return challenge, signature, self.der


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def root(cn: str = "audit test root") -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    return _root(cn)  # one key per name, however it is called (cache keys by arguments)


@functools.cache
def _root(cn: str) -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(_name(cn))
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(AT - timedelta(days=1))
        .not_valid_after(AT + timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def trust(cn: str = "audit test root") -> TrustStore:
    cert = root(cn)[1]
    return TrustStore([TrustAnchor(cert, key_identifier(cert), "test")])


def card(serial: int = 4660, cn: str = "audit test root") -> Card:
    return _card(serial, cn)


@functools.cache
def _card(serial: int, cn: str) -> Card:
    root_key, root_cert = root(cn)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(f"card {serial}"))
        .issuer_name(root_cert.subject)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(AT - timedelta(days=1))
        .not_valid_after(AT + timedelta(days=365))
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()), False
        )
        .sign(root_key, hashes.SHA256())
    )
    return Card(cert.public_bytes(serialization.Encoding.DER), key, key_identifier(root_cert))


def grant(challenge: bytes = b"challenge", serial: int = 4660, **kw: object) -> AuditEntry:
    c = card(serial)
    return AuditEntry(
        AT,
        "gate-1",
        "granted",
        "ok",
        serial,
        "front desk",
        evidence=c.evidence(challenge),
        issuer_key_id=c.issuer,
        subject="E1001",
        pin_verified=True,
        **kw,  # type: ignore[arg-type]
    )


def refusal(i: int, **kw: object) -> AuditEntry:
    return AuditEntry(AT, "gate-1", "refused", "pin_wrong", i, None, f"row {i}", **kw)  # type: ignore[arg-type]
