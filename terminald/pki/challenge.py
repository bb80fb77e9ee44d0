"""The challenge the card signs, and the check of its signature.

The card signs SHA-256 over a message that binds 32 fresh random bytes to this
terminal, the purpose of the authentication and the time. A signature is then
evidence of one presentation at one terminal for one purpose, fit for the audit
log, and cannot be replayed elsewhere.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from terminald.pki.anchors import DECODE_ERRORS

NONCE_LENGTH = 32
DOMAIN = b"terminald/jpki-user-auth/v1"
# DER DigestInfo prefix for SHA-256 (RFC 8017 §9.2 note 1).
SHA256_DIGEST_INFO_PREFIX = bytes.fromhex("3031300d060960864801650304020105000420")


def _field(value: bytes) -> bytes:
    return len(value).to_bytes(2, "big") + value


@dataclass(frozen=True, slots=True)
class Challenge:
    terminal_id: str
    purpose: str
    issued_at: datetime
    nonce: bytes

    def __post_init__(self) -> None:
        if len(self.nonce) != NONCE_LENGTH:
            raise ValueError("challenge nonce must be 32 bytes")
        if self.issued_at.tzinfo is None:
            raise ValueError("challenge time must be timezone-aware")

    @property
    def message(self) -> bytes:
        """Length-prefixed fields, so no two distinct challenges encode alike."""
        return b"".join(
            (
                _field(DOMAIN),
                _field(self.terminal_id.encode("utf-8")),
                _field(self.purpose.encode("utf-8")),
                _field(self.issued_at.isoformat(timespec="milliseconds").encode("ascii")),
                _field(self.nonce),
            )
        )

    @property
    def digest_info(self) -> bytes:
        """What the card is given: the card adds PKCS#1 v1.5 padding itself (jpki-card.md §2.4)."""
        return SHA256_DIGEST_INFO_PREFIX + hashlib.sha256(self.message).digest()


def signature_valid(public_key: rsa.RSAPublicKey, challenge: Challenge, signature: bytes) -> bool:
    return message_signature_valid(public_key, challenge.message, signature)


def message_signature_valid(public_key: rsa.RSAPublicKey, message: bytes, signature: bytes) -> bool:
    """For evidence kept in the audit trail: the message as it was signed."""
    try:
        public_key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        return False
    return True


def evidence_valid(certificate_der: bytes, message: bytes, signature: bytes) -> bool:
    """Did the key of this certificate sign this challenge message? (Any parse error: no.)"""
    try:
        key = x509.load_der_x509_certificate(certificate_der).public_key()
    except DECODE_ERRORS:
        return False
    if not isinstance(key, rsa.RSAPublicKey):
        return False
    return message_signature_valid(key, message, signature)
