"""Signed bundles: the envelope around a snapshot or a delta.

Layout (big-endian; docs/revocation.md)::

    magic          4   b"TDRV"
    format         u8  3 (1 had no coverage, 2 no base digest; both refused: rebuild)
    kind           u8  1 = snapshot, 2 = delta
    flags          u16 0 (reserved)
    version        u64 monotonic, >= 1
    base_version   u64 0 for a snapshot; for a delta the exact version it applies to
    issued_at      i64 Unix seconds
    valid_until    i64 Unix seconds, > issued_at
    signer         8   key id of the back-office key that signed (keys.key_id_of)
    base_digest    32  0 for a snapshot; for a delta the SHA-256 content digest of the
                       exact set it applies to (serials.content_digest)
    body_length    u32
    issuer_count   u16
    header_crc     u32 over the 86 bytes above
    body           body_length bytes (terminald.revocation.codec)
    signature      64  Ed25519 over every byte before it

The signature covers the whole header (so version, times and base cannot be altered) and
the body. A delta names its base by version *and* content: a delta built against another
set that carries the same version number does not apply. The per-block CRCs are not a
security measure: they locate a transmission error
to one block so the link can resend just that part and an error message can name it.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import IntEnum

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from terminald.revocation.codec import (
    decode_delta_body,
    decode_snapshot_body,
    encode_delta_body,
    encode_snapshot_body,
)
from terminald.revocation.errors import BundleRejected, RejectReason, RevocationFormatError
from terminald.revocation.keys import TrustedKeys, key_id_of
from terminald.revocation.serials import DIGEST_SIZE, RevocationDelta, RevocationSet

MAGIC = b"TDRV"
# 2: each issuer states its coverage (whole issuer or CRL partitions). A format-1 bundle
# is refused, not read as "whole issuer": it may have come from a partitioned CRL, and
# nothing was deployed with it.
# 3: a delta carries the content digest of its base. A format-2 delta names its base by
# version only, so one built against another set of that version applied silently; format
# 2 is refused (nothing was deployed with it either).
FORMAT_VERSION = 3
_REBUILD = {
    1: "bundle format 1 carries no coverage and is no longer accepted: "
    "rebuild it with this version (terminald revocation build)",
    2: "bundle format 2 does not bind a delta to its base's content and is no longer "
    "accepted: rebuild it with this version (terminald revocation build)",
}
SIGNATURE_SIZE = 64
DEFAULT_MAX_SIZE = 64 * 1024 * 1024
_HEAD = struct.Struct(">4sBBHQQqq8s32sIH")
NO_DIGEST = bytes(DIGEST_SIZE)
_CRC = struct.Struct(">I")
HEADER_SIZE = _HEAD.size + _CRC.size
_U64_MAX = 2**64 - 1
# datetime cannot represent later instants; refusing them keeps the decoder total.
_MAX_TIME = int(datetime(9999, 12, 31, tzinfo=UTC).timestamp())


class BundleKind(IntEnum):
    SNAPSHOT = 1
    DELTA = 2

    @property
    def label(self) -> str:
        return self.name.lower()


@dataclass(frozen=True)
class BundleHeader:
    kind: BundleKind
    version: int
    base_version: int
    issued_at: datetime
    valid_until: datetime
    signer_key_id: bytes
    issuer_count: int
    body_length: int
    base_digest: bytes = NO_DIGEST

    @property
    def size(self) -> int:
        return HEADER_SIZE + self.body_length + SIGNATURE_SIZE


@dataclass(frozen=True)
class Bundle:
    header: BundleHeader
    content: RevocationSet | RevocationDelta

    @property
    def snapshot(self) -> RevocationSet:
        if not isinstance(self.content, RevocationSet):
            raise TypeError("not a snapshot bundle")
        return self.content

    @property
    def delta(self) -> RevocationDelta:
        if not isinstance(self.content, RevocationDelta):
            raise TypeError("not a delta bundle")
        return self.content


def _unix(when: datetime) -> int:
    if when.tzinfo is None:
        raise ValueError("bundle times must be timezone-aware")
    return int(when.timestamp())


def encode_bundle(
    content: RevocationSet | RevocationDelta,
    *,
    version: int,
    issued_at: datetime,
    valid_until: datetime,
    signing_key: Ed25519PrivateKey,
    base_version: int = 0,
) -> bytes:
    """Encode and sign. A delta needs ``base_version`` and carries its base's content digest
    (``content.base_digest``, set by ``diff``); a snapshot has neither."""
    if isinstance(content, RevocationSet):
        kind, body, digest = BundleKind.SNAPSHOT, encode_snapshot_body(content), NO_DIGEST
        if base_version:
            raise ValueError("a snapshot has no base version")
    else:
        kind, body, digest = BundleKind.DELTA, encode_delta_body(content), content.base_digest
        if digest == NO_DIGEST:
            raise ValueError("a delta needs its base's content digest")
        if not 1 <= base_version < version:
            raise ValueError(f"a delta needs 1 <= base version < version ({version})")
    if not 1 <= version <= _U64_MAX:
        raise ValueError("version must be 1..2**64-1")
    issued, until = _unix(issued_at), _unix(valid_until)
    if until <= issued:
        raise ValueError("valid-until must be after the issue time")
    if issued < 0 or until > _MAX_TIME:
        raise ValueError("bundle times must lie between 1970 and 9999-12-31")
    head = _HEAD.pack(
        MAGIC,
        FORMAT_VERSION,
        kind,
        0,
        version,
        base_version,
        issued,
        until,
        key_id_of(signing_key.public_key()),
        digest,
        len(body),
        len(content.issuers),
    )
    signed = head + _CRC.pack(zlib.crc32(head)) + body
    return signed + signing_key.sign(signed)


def _time(value: int, what: str) -> datetime:
    if not 0 <= value <= _MAX_TIME:
        raise RevocationFormatError(f"{what} {value} is not a usable time")
    return datetime.fromtimestamp(value, UTC)


def parse_header(data: bytes, max_size: int = DEFAULT_MAX_SIZE) -> BundleHeader:
    """Check the envelope (magic, format, header checksum, exact length) and read it."""
    if len(data) > max_size:
        raise BundleRejected(RejectReason.TOO_LARGE, f"{len(data)} bytes > limit {max_size}")
    if len(data) < HEADER_SIZE + SIGNATURE_SIZE:
        raise RevocationFormatError(f"{len(data)} bytes is too short for a bundle")
    fields = _HEAD.unpack_from(data)
    magic, fmt, kind, flags, version, base, issued, until, signer, digest, body_len, issuers = (
        fields
    )
    if magic != MAGIC:
        raise RevocationFormatError(f"not a revocation bundle (magic {magic!r})")
    if fmt in _REBUILD:
        raise RevocationFormatError(_REBUILD[fmt])
    if fmt != FORMAT_VERSION:
        raise RevocationFormatError(f"bundle format {fmt} is not supported (want {FORMAT_VERSION})")
    (crc,) = _CRC.unpack_from(data, _HEAD.size)
    if zlib.crc32(data[: _HEAD.size]) != crc:
        raise RevocationFormatError("bundle header checksum mismatch")
    if kind not in (BundleKind.SNAPSHOT, BundleKind.DELTA) or flags:
        raise RevocationFormatError(f"unknown bundle kind {kind} or flags {flags}")
    if version < 1 or (kind == BundleKind.SNAPSHOT) != (base == 0) or base >= max(version, 1):
        raise RevocationFormatError(f"inconsistent version {version} / base {base}")
    if (kind == BundleKind.SNAPSHOT) != (digest == NO_DIGEST):
        raise RevocationFormatError("a snapshot has no base digest and a delta must have one")
    if HEADER_SIZE + body_len + SIGNATURE_SIZE != len(data):
        raise RevocationFormatError(
            f"length {len(data)} does not match the header "
            f"({HEADER_SIZE + body_len + SIGNATURE_SIZE}): truncated or padded"
        )
    issued_at, valid_until = _time(issued, "issue time"), _time(until, "valid-until")
    if valid_until <= issued_at:
        raise RevocationFormatError("valid-until is not after the issue time")
    return BundleHeader(
        BundleKind(kind), version, base, issued_at, valid_until, signer, issuers, body_len, digest
    )


def decode_content(data: bytes, header: BundleHeader) -> RevocationSet | RevocationDelta:
    end = HEADER_SIZE + header.body_length
    if header.kind == BundleKind.SNAPSHOT:
        return decode_snapshot_body(data, HEADER_SIZE, end, header.issuer_count)
    return decode_delta_body(data, HEADER_SIZE, end, header.issuer_count, header.base_digest)


def signature_valid(data: bytes, header: BundleHeader, key: Ed25519PublicKey) -> bool:
    signed_end = HEADER_SIZE + header.body_length
    try:
        key.verify(data[signed_end:], data[:signed_end])
    except InvalidSignature:
        return False
    return True


def verify_signature(data: bytes, header: BundleHeader, trusted: TrustedKeys) -> None:
    key = trusted.get(header.signer_key_id)
    if key is None:
        raise BundleRejected(
            RejectReason.UNKNOWN_KEY,
            f"signed by key {header.signer_key_id.hex()}, which is not a trusted back-office key",
        )
    if not signature_valid(data, header, key):
        # Name the damaged block if a checksum can find it; otherwise it was tampered with.
        try:
            decode_content(data, header)
            where = "the signed bytes were altered or the signature is wrong"
        except RevocationFormatError as exc:
            where = str(exc)
        raise BundleRejected(RejectReason.BAD_SIGNATURE, f"signature does not verify ({where})")


def open_bundle(data: bytes, trusted: TrustedKeys, max_size: int = DEFAULT_MAX_SIZE) -> Bundle:
    """Parse, verify the signature against ``trusted``, then decode (in that order)."""
    header = parse_header(data, max_size)
    verify_signature(data, header, trusted)
    return Bundle(header, decode_content(data, header))


def read_unverified(data: bytes, max_size: int = DEFAULT_MAX_SIZE) -> Bundle:
    """Parse and decode without checking the signature (inspection tools only)."""
    header = parse_header(data, max_size)
    return Bundle(header, decode_content(data, header))
