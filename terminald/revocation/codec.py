"""The body of a bundle: per issuer, its serial lists as Rice-coded blocks.

Layout (big-endian; see docs/revocation.md)::

    body     := issuer{section_count}, issuers in strictly increasing key-id order
    issuer   := key_id_len u8 (1..64) | key_id | coverage | crc32 u32 (of the fields before)
                | list{2 or 4}
    coverage := mode u8 | name_count u16 | (name_len u16 | name DER){name_count}
    list     := count u32 | block_count u32 | crc32 u32 (of the two fields) | block{block_count}
    block    := see terminald.revocation.rice

Coverage modes: in a snapshot 1 = the whole issuer (no names) or 2 = these partitions
(1..MAX_PARTITIONS names); in a delta 0 = unchanged, 1 = widened to the whole issuer, 2 =
these partitions added. Names are DER X.501 Names in strictly increasing byte order.

A snapshot has two lists per issuer (revoked, on hold); a delta has four (revoked added,
revoked removed, on hold added, on hold removed). Every block but the last of a list holds
exactly BLOCK_MAX serials, so a set has one encoding.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable, Sequence
from typing import TypeVar

import numpy as np

from terminald.revocation.coverage import MAX_PARTITIONS, WHOLE, Coverage, check_name
from terminald.revocation.errors import RevocationFormatError
from terminald.revocation.rice import BLOCK_MAX, BLOCK_OVERHEAD, decode_block, encode_block
from terminald.revocation.serials import (
    MAX_KEY_ID_LENGTH,
    IssuerChanges,
    IssuerEntries,
    RevocationDelta,
    RevocationSet,
    SerialArray,
    empty_serials,
)

_LIST_HEAD = struct.Struct(">II")
_CRC = struct.Struct(">I")
_COVERAGE_HEAD = struct.Struct(">BH")
_NAME_LEN = struct.Struct(">H")
MAX_ISSUERS = 0xFFFF
UNCHANGED, WHOLE_ISSUER, PARTITIONS = 0, 1, 2


def encode_list(serials: SerialArray) -> bytes:
    blocks = [
        encode_block(serials[i : i + BLOCK_MAX]) for i in range(0, int(serials.size), BLOCK_MAX)
    ]
    head = _LIST_HEAD.pack(int(serials.size), len(blocks))
    return b"".join([head, _CRC.pack(zlib.crc32(head)), *blocks])


def decode_list(data: bytes, offset: int, end: int) -> tuple[SerialArray, int]:
    """Decode the list at ``offset`` (not reading past ``end``)."""
    if offset + _LIST_HEAD.size + _CRC.size > end:
        raise RevocationFormatError(f"list at byte {offset}: header truncated")
    count, block_count = _LIST_HEAD.unpack_from(data, offset)
    (crc,) = _CRC.unpack_from(data, offset + _LIST_HEAD.size)
    if zlib.crc32(data[offset : offset + _LIST_HEAD.size]) != crc:
        raise RevocationFormatError(f"list at byte {offset}: header checksum mismatch")
    offset += _LIST_HEAD.size + _CRC.size
    if block_count != -(-count // BLOCK_MAX):
        raise RevocationFormatError(f"list at byte {offset}: {block_count} blocks for {count}")
    if block_count * BLOCK_OVERHEAD > end - offset:
        raise RevocationFormatError(f"list at byte {offset}: more blocks than bytes")
    parts: list[SerialArray] = []
    previous = -1
    for index in range(block_count):
        block, offset = decode_block(data, offset, end)
        expected = BLOCK_MAX if index < block_count - 1 else count - BLOCK_MAX * index
        if block.size != expected:
            raise RevocationFormatError(f"block ending at byte {offset}: wrong serial count")
        if int(block[0]) <= previous:
            raise RevocationFormatError(f"block ending at byte {offset}: serials out of order")
        previous = int(block[-1])
        parts.append(block)
    out = np.concatenate(parts) if parts else empty_serials().copy()
    out.setflags(write=False)
    return out, offset


def encode_coverage(coverage: Coverage | None) -> bytes:
    """Snapshot: WHOLE or partitions; delta: also None (unchanged)."""
    if coverage is None:
        return _COVERAGE_HEAD.pack(UNCHANGED, 0)
    names = coverage.names()
    mode = WHOLE_ISSUER if coverage.whole else PARTITIONS
    parts = [_COVERAGE_HEAD.pack(mode, len(names))]
    for name in names:
        parts += [_NAME_LEN.pack(len(name)), name]
    return b"".join(parts)


def decode_coverage(data: bytes, offset: int, end: int, delta: bool) -> tuple[Coverage | None, int]:
    """Coverage at ``offset``; bounded by ``end`` and MAX_PARTITIONS, canonical or refused."""
    where = f"coverage at byte {offset}"
    if offset + _COVERAGE_HEAD.size > end:
        raise RevocationFormatError(f"{where}: truncated")
    mode, count = _COVERAGE_HEAD.unpack_from(data, offset)
    offset += _COVERAGE_HEAD.size
    if mode == WHOLE_ISSUER or (mode == UNCHANGED and delta):
        if count:
            raise RevocationFormatError(f"{where}: mode {mode} carries no names, got {count}")
        return (WHOLE if mode == WHOLE_ISSUER else None), offset
    if mode != PARTITIONS or not 1 <= count <= MAX_PARTITIONS:
        raise RevocationFormatError(f"{where}: bad mode {mode} or name count {count}")
    if count * (_NAME_LEN.size + 1) > end - offset:
        raise RevocationFormatError(f"{where}: {count} names do not fit")
    names: list[bytes] = []
    for _ in range(count):
        if offset + _NAME_LEN.size > end:
            raise RevocationFormatError(f"{where}: name truncated")
        (length,) = _NAME_LEN.unpack_from(data, offset)
        offset += _NAME_LEN.size
        if offset + length > end:
            raise RevocationFormatError(f"{where}: name of {length} bytes truncated")
        name = data[offset : offset + length]
        offset += length
        try:
            check_name(name)
        except ValueError as exc:
            raise RevocationFormatError(f"{where}: bad partition name: {exc}") from None
        if names and name <= names[-1]:
            raise RevocationFormatError(f"{where}: names out of order or repeated")
        names.append(name)
    return Coverage(frozenset(names)), offset


def _encode_issuer(key_id: bytes, coverage: Coverage | None, lists: Sequence[SerialArray]) -> bytes:
    head = bytes([len(key_id)]) + key_id + encode_coverage(coverage)
    return b"".join([head, _CRC.pack(zlib.crc32(head)), *(encode_list(s) for s in lists)])


def _decode_issuer(
    data: bytes, offset: int, end: int, list_count: int
) -> tuple[bytes, Coverage | None, list[SerialArray], int]:
    start = offset
    if offset >= end:
        raise RevocationFormatError(f"issuer at byte {offset}: truncated")
    length = data[offset]
    if not 1 <= length <= MAX_KEY_ID_LENGTH or offset + 1 + length > end:
        raise RevocationFormatError(f"issuer at byte {offset}: bad key id length {length}")
    key_id = data[offset + 1 : offset + 1 + length]
    coverage, offset = decode_coverage(data, offset + 1 + length, end, delta=list_count == 4)
    if offset + _CRC.size > end:
        raise RevocationFormatError(f"issuer at byte {start}: header truncated")
    (crc,) = _CRC.unpack_from(data, offset)
    if zlib.crc32(data[start:offset]) != crc:
        raise RevocationFormatError(f"issuer at byte {start}: header checksum mismatch")
    offset += _CRC.size
    lists = []
    for _ in range(list_count):
        serials, offset = decode_list(data, offset, end)
        lists.append(serials)
    return key_id, coverage, lists, offset


_T = TypeVar("_T")


def _encode_body(
    items: dict[bytes, _T],
    coverage_of: Callable[[_T], Coverage | None],
    lists_of: Callable[[_T], Sequence[SerialArray]],
) -> bytes:
    if len(items) > MAX_ISSUERS:
        raise ValueError(f"at most {MAX_ISSUERS} issuers fit in a bundle")
    return b"".join(
        _encode_issuer(k, coverage_of(items[k]), lists_of(items[k])) for k in sorted(items)
    )


def _decode_body(
    data: bytes, offset: int, end: int, issuer_count: int, list_count: int
) -> dict[bytes, tuple[Coverage | None, list[SerialArray]]]:
    out: dict[bytes, tuple[Coverage | None, list[SerialArray]]] = {}
    previous = b""
    for _ in range(issuer_count):
        key_id, coverage, lists, offset = _decode_issuer(data, offset, end, list_count)
        if key_id <= previous:
            raise RevocationFormatError(f"issuer {key_id.hex()}: out of order or repeated")
        previous = key_id
        out[key_id] = (coverage, lists)
    if offset != end:
        raise RevocationFormatError(f"{end - offset} stray bytes after the last issuer")
    return out


def encode_snapshot_body(revocations: RevocationSet) -> bytes:
    return _encode_body(
        dict(revocations.issuers), lambda e: e.coverage, lambda e: (e.revoked, e.hold)
    )


def decode_snapshot_body(data: bytes, offset: int, end: int, issuer_count: int) -> RevocationSet:
    issuers: dict[bytes, IssuerEntries] = {}
    raw = _decode_body(data, offset, end, issuer_count, 2)
    for key_id, (coverage, (revoked, hold)) in raw.items():
        assert coverage is not None  # decode_coverage allows "unchanged" in deltas only
        try:
            issuers[key_id] = IssuerEntries(revoked, hold, coverage)
        except ValueError as exc:
            raise RevocationFormatError(f"issuer {key_id.hex()}: {exc}") from exc
    return RevocationSet(issuers)


def encode_delta_body(delta: RevocationDelta) -> bytes:
    return _encode_body(dict(delta.issuers), lambda c: c.coverage_added, lambda c: c.lists())


def decode_delta_body(
    data: bytes, offset: int, end: int, issuer_count: int, base_digest: bytes
) -> RevocationDelta:
    """The delta at ``offset``; ``base_digest`` comes from the (signed) bundle header."""
    raw = _decode_body(data, offset, end, issuer_count, 4)
    return RevocationDelta(
        {
            key_id: IssuerChanges(lists[0], lists[1], lists[2], lists[3], coverage)
            for key_id, (coverage, lists) in raw.items()
        },
        base_digest,
    )
