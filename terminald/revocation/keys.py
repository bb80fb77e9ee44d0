"""Back-office Ed25519 keys: key ids, PEM loading, and the terminal's trusted set.

The terminal trusts several public keys at once so the back office can rotate: a new key
is added to the terminals' configuration before it signs anything, the old one is removed
after the last bundle it signed has been superseded.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from terminald.revocation.errors import RevocationError

KEY_ID_SIZE = 8


class KeyFileError(RevocationError):
    """A key file that is not an Ed25519 key of the expected kind."""


def key_id_of(public_key: Ed25519PublicKey) -> bytes:
    """First 8 bytes of SHA-256 over the raw 32-byte public key; names the signer."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).digest()[:KEY_ID_SIZE]


def private_key_pem(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def public_key_pem(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def load_private_key(pem: bytes, source: str) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise KeyFileError(f"{source}: not an unencrypted PEM private key ({exc})") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFileError(f"{source}: is a {type(key).__name__}, not an Ed25519 private key")
    return key


def load_public_keys(pem: bytes, source: str) -> list[Ed25519PublicKey]:
    """Every PEM public key in ``pem`` (a file may hold several, for rotation)."""
    marker = b"-----BEGIN PUBLIC KEY-----"
    chunks = [marker + part for part in pem.split(marker)[1:]]
    if not chunks:
        raise KeyFileError(f"{source}: no PEM public key found")
    keys = []
    for chunk in chunks:
        try:
            key = serialization.load_pem_public_key(chunk)
        except (ValueError, UnsupportedAlgorithm) as exc:
            raise KeyFileError(f"{source}: unreadable public key ({exc})") from exc
        if not isinstance(key, Ed25519PublicKey):
            raise KeyFileError(f"{source}: holds a {type(key).__name__}, not an Ed25519 key")
        keys.append(key)
    return keys


class TrustedKeys:
    """The back-office public keys a terminal accepts bundles from, by key id."""

    def __init__(self, keys: Iterable[Ed25519PublicKey]) -> None:
        self._keys = {key_id_of(k): k for k in keys}
        if not self._keys:
            raise ValueError("at least one trusted back-office key is needed")

    def get(self, key_id: bytes) -> Ed25519PublicKey | None:
        return self._keys.get(key_id)

    def __iter__(self) -> Iterator[bytes]:
        return iter(sorted(self._keys))

    def __len__(self) -> int:
        return len(self._keys)

    def __eq__(self, other: object) -> bool:
        """Equal when the same keys are trusted (a reload that changed none keeps its store)."""
        if not isinstance(other, TrustedKeys):
            return NotImplemented
        return self._raw() == other._raw()

    __hash__ = None  # type: ignore[assignment]  # mutable-looking; never a dict key

    def _raw(self) -> dict[bytes, bytes]:
        raw = serialization.Encoding.Raw, serialization.PublicFormat.Raw
        return {key_id: key.public_bytes(*raw) for key_id, key in self._keys.items()}
