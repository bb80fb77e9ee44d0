"""Shared helpers for the revocation tests: keys, sets and bundles with fixed times."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from terminald.revocation import (
    IssuerEntries,
    RevocationDelta,
    RevocationSet,
    encode_bundle,
    serial_array,
)

T0 = datetime(2026, 1, 10, 3, 0, tzinfo=UTC)
DAY = timedelta(days=1)
ISSUER_A = bytes.fromhex("a1" * 20)
ISSUER_B = bytes.fromhex("b2" * 20)


def revocations(
    issuers: dict[bytes, tuple[Iterable[int], Iterable[int]]],
) -> RevocationSet:
    return RevocationSet(
        {k: IssuerEntries(serial_array(r), serial_array(h)) for k, (r, h) in issuers.items()}
    )


def snapshot(
    content: RevocationSet,
    key: Ed25519PrivateKey,
    version: int,
    issued: datetime = T0,
    valid: timedelta = 7 * DAY,
) -> bytes:
    return encode_bundle(
        content, version=version, issued_at=issued, valid_until=issued + valid, signing_key=key
    )


def delta(
    content: RevocationDelta,
    key: Ed25519PrivateKey,
    version: int,
    base: int,
    issued: datetime = T0,
    valid: timedelta = 7 * DAY,
) -> bytes:
    return encode_bundle(
        content,
        version=version,
        base_version=base,
        issued_at=issued,
        valid_until=issued + valid,
        signing_key=key,
    )
