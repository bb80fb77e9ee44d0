"""The signed enrolment set ("TDEN"): the envelope around a full content or a delta.

Layout (big-endian; docs/enrolment.md)::

    magic          4   b"TDEN"
    format         u8  1
    kind           u8  1 = full, 2 = delta
    flags          u16 0 (reserved)
    version        u64 >= 1, only ever goes up
    base_version   u64 0 for a full set; for a delta the exact version it applies to
    issued_at      i64 Unix seconds
    valid_until    i64 Unix seconds, > issued_at
    signer         8   key id of the back-office key (revocation.keys.key_id_of)
    base_digest    32  0 for a full set; for a delta the content digest of its base
    content_digest 32  the content digest after this set (a delta: after applying it)
    body_length    u32 bytes of the compressed body
    raw_length     u32 bytes of the body once decompressed (bounds the inflation)
    header_crc     u32 over the bytes above
    body           zlib (RFC 1950) of the canonical msgpack body (enrolment/codec.py)
    signature      64  Ed25519 over DOMAIN + every byte before it

The domain string keeps a signature made for another purpose of the same key (a
revocation bundle, a signed link object) from ever verifying as an enrolment set.
"""

from __future__ import annotations

import hashlib
import struct
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import IntEnum
from typing import Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from terminald.enrolment.codec import (
    DIGEST_SIZE,
    MAX_BODY,
    EnrolmentDelta,
    content_digest,
    decode_content,
    decode_delta,
    diff,
    encode_content,
    encode_delta,
)
from terminald.enrolment.errors import EnrolmentFormatError, EnrolmentRejected, RejectReason
from terminald.enrolment.model import EnrolmentContent
from terminald.revocation.keys import KEY_ID_SIZE, TrustedKeys, key_id_of

MAGIC: Final = b"TDEN"
FORMAT_VERSION: Final = 1
DOMAIN: Final = b"terminald enrolment set v1\x00"
SIGNATURE_SIZE: Final = 64
NO_DIGEST: Final = bytes(DIGEST_SIZE)
DEFAULT_MAX_SIZE: Final = 64 * 1024 * 1024
_HEAD = struct.Struct(f">4sBBHQQqq{KEY_ID_SIZE}s32s32sII")
_CRC = struct.Struct(">I")
HEADER_SIZE: Final = _HEAD.size + _CRC.size
_U64_MAX = 2**64 - 1
_MAX_TIME = int(datetime(9999, 12, 31, tzinfo=UTC).timestamp())


class SetKind(IntEnum):
    FULL = 1
    DELTA = 2

    @property
    def label(self) -> str:
        return self.name.lower()


@dataclass(frozen=True)
class SetHeader:
    kind: SetKind
    version: int
    base_version: int
    issued_at: datetime
    valid_until: datetime
    signer_key_id: bytes
    base_digest: bytes
    content_digest: bytes
    body_length: int
    raw_length: int

    @property
    def size(self) -> int:
        return HEADER_SIZE + self.body_length + SIGNATURE_SIZE


@dataclass(frozen=True)
class EnrolmentBundle:
    header: SetHeader
    content: EnrolmentContent | EnrolmentDelta


def _unix(when: datetime) -> int:
    if when.tzinfo is None:
        raise ValueError("set times must be timezone-aware")
    return int(when.timestamp())


def encode_set(
    content: EnrolmentContent,
    *,
    version: int,
    issued_at: datetime,
    valid_until: datetime,
    signing_key: Ed25519PrivateKey,
    base: tuple[int, EnrolmentContent] | None = None,
) -> bytes:
    """Sign ``content`` as a full set, or (``base`` = (version, content) of the set it
    follows) as the delta from that base. ValueError for inconsistent arguments."""
    if not 1 <= version <= _U64_MAX:
        raise ValueError("version must be 1..2**64-1")
    issued, until = _unix(issued_at), _unix(valid_until)
    if until <= issued:
        raise ValueError("valid-until must be after the issue time")
    if issued < 0 or until > _MAX_TIME:
        raise ValueError("set times must lie between 1970 and 9999-12-31")
    raw = encode_content(content)
    digest = hashlib.sha256(raw).digest()  # = content_digest(content), without encoding twice
    if base is None:
        kind, base_version, base_digest = SetKind.FULL, 0, NO_DIGEST
    else:
        base_version, base_content = base
        if not 1 <= base_version < version:
            raise ValueError(f"a delta needs 1 <= base version < version ({version})")
        kind, base_digest = SetKind.DELTA, content_digest(base_content)
        raw = encode_delta(diff(base_content, content))
    head = (kind, version, base_version, issued, until, base_digest, digest)
    return _seal(head, signing_key, raw)


def _seal(
    fields: tuple[SetKind, int, int, int, int, bytes, bytes], key: Ed25519PrivateKey, raw: bytes
) -> bytes:
    kind, version, base_version, issued, until, base_digest, digest = fields
    if len(raw) > MAX_BODY:
        raise ValueError(f"the body is {len(raw)} bytes (at most {MAX_BODY})")
    body = zlib.compress(raw, 9)
    head = _HEAD.pack(
        MAGIC,
        FORMAT_VERSION,
        kind,
        0,
        version,
        base_version,
        issued,
        until,
        key_id_of(key.public_key()),
        base_digest,
        digest,
        len(body),
        len(raw),
    )
    signed = head + _CRC.pack(zlib.crc32(head)) + body
    return signed + key.sign(DOMAIN + signed)


def _time(value: int, what: str) -> datetime:
    if not 0 <= value <= _MAX_TIME:
        raise EnrolmentFormatError(f"header.{what}: {value} is not a usable time")
    return datetime.fromtimestamp(value, UTC)


def parse_header(data: bytes, max_size: int = DEFAULT_MAX_SIZE) -> SetHeader:
    """Check the envelope (magic, format, checksum, exact length) and read the header.
    EnrolmentRejected(TOO_LARGE) past ``max_size``; EnrolmentFormatError otherwise."""
    if len(data) > max_size:
        raise EnrolmentRejected(RejectReason.TOO_LARGE, f"{len(data)} bytes > limit {max_size}")
    if len(data) < HEADER_SIZE + SIGNATURE_SIZE:
        raise EnrolmentFormatError(f"{len(data)} bytes is too short for an enrolment set")
    (magic, fmt, kind, flags, version, base, issued, until, signer, base_digest, digest, body_len,
     raw_len) = _HEAD.unpack_from(data)  # fmt: skip
    if magic != MAGIC:
        raise EnrolmentFormatError(f"header.magic: {magic!r}, not an enrolment set (TDEN)")
    if fmt != FORMAT_VERSION:
        raise EnrolmentFormatError(f"header.format: {fmt} is not supported (want 1)")
    (crc,) = _CRC.unpack_from(data, _HEAD.size)
    if zlib.crc32(data[: _HEAD.size]) != crc:
        raise EnrolmentFormatError("header: checksum mismatch (damaged in transit?)")
    if kind not in (SetKind.FULL, SetKind.DELTA) or flags:
        raise EnrolmentFormatError(f"header.kind: unknown kind {kind} or flags {flags}")
    if version < 1 or (kind == SetKind.FULL) != (base == 0) or base >= version:
        raise EnrolmentFormatError(f"header.base_version: {base} does not fit version {version}")
    if (kind == SetKind.FULL) != (base_digest == NO_DIGEST):
        raise EnrolmentFormatError("header.base_digest: a full set has none, a delta needs one")
    if HEADER_SIZE + body_len + SIGNATURE_SIZE != len(data):
        raise EnrolmentFormatError(
            f"header.body_length: {len(data)} bytes do not match the header "
            f"({HEADER_SIZE + body_len + SIGNATURE_SIZE}): truncated or padded"
        )
    if raw_len > MAX_BODY:
        raise EnrolmentFormatError(f"header.raw_length: {raw_len} (at most {MAX_BODY})")
    issued_at, valid_until = _time(issued, "issued_at"), _time(until, "valid_until")
    if valid_until <= issued_at:
        raise EnrolmentFormatError("header.valid_until: not after the issue time")
    return SetHeader(
        SetKind(kind), version, base, issued_at, valid_until, signer, base_digest, digest,
        body_len, raw_len,
    )  # fmt: skip


def verify_signature(data: bytes, header: SetHeader, trusted: TrustedKeys) -> None:
    key = trusted.get(header.signer_key_id)
    if key is None:
        raise EnrolmentRejected(
            RejectReason.UNKNOWN_KEY,
            f"signed by key {header.signer_key_id.hex()}, not a trusted back-office key",
        )
    end = HEADER_SIZE + header.body_length
    try:
        key.verify(data[end:], DOMAIN + data[:end])
    except InvalidSignature:
        raise EnrolmentRejected(
            RejectReason.BAD_SIGNATURE,
            "the signature does not verify: the set was altered or signed by another key",
        ) from None


def decode_body(data: bytes, header: SetHeader) -> EnrolmentContent | EnrolmentDelta:
    """Inflate (never past ``raw_length``) and decode; EnrolmentFormatError on a fault.
    A full body must hash to the header's content digest (the body is the canonical
    encoding, so its hash is :func:`content_digest`, without encoding it again)."""
    inflater = zlib.decompressobj()
    try:
        raw = inflater.decompress(
            data[HEADER_SIZE : HEADER_SIZE + header.body_length], header.raw_length
        )
    except zlib.error as exc:
        raise EnrolmentFormatError(f"body: not zlib data ({exc})") from None
    if len(raw) != header.raw_length or not inflater.eof or inflater.unconsumed_tail:
        raise EnrolmentFormatError(
            f"body: inflates to other than the {header.raw_length} bytes the header states"
        )
    if header.kind == SetKind.FULL:
        if hashlib.sha256(raw).digest() != header.content_digest:
            raise EnrolmentRejected(
                RejectReason.DIGEST_MISMATCH,
                "the content does not match the digest it was signed with",
            )
        return decode_content(raw)
    return decode_delta(raw)


def open_set(
    data: bytes, trusted: TrustedKeys, max_size: int = DEFAULT_MAX_SIZE
) -> EnrolmentBundle:
    """Parse the header, verify the signature against ``trusted``, then decode (in that
    order: nothing unsigned is inflated). A full set's content digest is checked here; a
    delta's after it is applied (:func:`terminald.enrolment.acceptance.apply_set`)."""
    header = parse_header(data, max_size)
    verify_signature(data, header, trusted)
    return EnrolmentBundle(header, decode_body(data, header))


def read_unverified(data: bytes, max_size: int = DEFAULT_MAX_SIZE) -> EnrolmentBundle:
    """Parse and decode without the signature (inspection and building only)."""
    header = parse_header(data, max_size)
    return EnrolmentBundle(header, decode_body(data, header))
