"""The terminal's state: the last snapshot and the deltas applied since, as one blob.

The terminal keeps the signed bundles themselves, not a re-encoding, so every start
re-verifies the back office's signatures and nothing on disk is trusted just because it
is there. Layout (big-endian)::

    magic    4   b"TDRS"
    format   u8  1
    count    u16 bundles, 1..MAX_CHAIN
    entry{count}:  length u32 | bundle bytes
    digest   32  SHA-256 of every byte before it (detects truncation and corruption
                 before any bundle is parsed)
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Sequence
from dataclasses import dataclass

from terminald.revocation.acceptance import Installed, check_sequence
from terminald.revocation.bundle import DEFAULT_MAX_SIZE, BundleHeader, BundleKind, open_bundle
from terminald.revocation.errors import RevocationFormatError
from terminald.revocation.keys import TrustedKeys
from terminald.revocation.serials import RevocationSet, apply_delta

MAGIC = b"TDRS"
FORMAT_VERSION = 1
MAX_CHAIN = 1000
_HEAD = struct.Struct(">4sBH")
_LEN = struct.Struct(">I")
_DIGEST = 32


def encode_chain(bundles: Sequence[bytes]) -> bytes:
    if not 1 <= len(bundles) <= MAX_CHAIN:
        raise ValueError(f"a chain holds 1..{MAX_CHAIN} bundles")
    parts = [_HEAD.pack(MAGIC, FORMAT_VERSION, len(bundles))]
    for bundle in bundles:
        parts += [_LEN.pack(len(bundle)), bundle]
    body = b"".join(parts)
    return body + hashlib.sha256(body).digest()


def chain_digest(data: bytes) -> bytes:
    return data[-_DIGEST:]


def decode_chain(data: bytes) -> list[bytes]:
    if len(data) < _HEAD.size + _DIGEST:
        raise RevocationFormatError(f"state file of {len(data)} bytes is truncated")
    if hashlib.sha256(data[:-_DIGEST]).digest() != data[-_DIGEST:]:
        raise RevocationFormatError("state file digest mismatch: truncated or corrupt")
    magic, fmt, count = _HEAD.unpack_from(data)
    if magic != MAGIC or fmt != FORMAT_VERSION:
        raise RevocationFormatError(f"not a revocation state file (magic {magic!r}/{fmt})")
    if not 1 <= count <= MAX_CHAIN:
        raise RevocationFormatError(f"state file lists {count} bundles")
    offset, end = _HEAD.size, len(data) - _DIGEST
    bundles = []
    for _ in range(count):
        if offset + _LEN.size > end:
            raise RevocationFormatError("state file entry header truncated")
        (length,) = _LEN.unpack_from(data, offset)
        offset += _LEN.size
        if offset + length > end:
            raise RevocationFormatError("state file entry truncated")
        bundles.append(data[offset : offset + length])
        offset += length
    if offset != end:
        raise RevocationFormatError("stray bytes in the state file")
    return bundles


@dataclass(frozen=True)
class Replayed:
    """The set a chain amounts to, and the headers that describe it."""

    revocations: RevocationSet
    snapshot: BundleHeader
    latest: BundleHeader


def replay(
    bundles: Sequence[bytes], trusted: TrustedKeys, max_size: int = DEFAULT_MAX_SIZE
) -> Replayed:
    """Verify every bundle and apply them in order: a snapshot then deltas on it."""
    if not bundles:
        raise RevocationFormatError("empty chain")
    first = open_bundle(bundles[0], trusted, max_size)
    if first.header.kind != BundleKind.SNAPSHOT:
        raise RevocationFormatError("a chain must start with a snapshot")
    revocations = first.snapshot
    latest = first.header
    for data in bundles[1:]:
        bundle = open_bundle(data, trusted, max_size)
        check_sequence(Installed(latest.version, latest.issued_at), bundle.header)
        if bundle.header.kind != BundleKind.DELTA:
            raise RevocationFormatError("a chain holds one snapshot, first")
        revocations = apply_delta(revocations, bundle.delta)
        latest = bundle.header
    return Replayed(revocations, first.header, latest)
