"""The body of a bundle: per issuer, its serial lists as Rice-coded blocks.

Layout (big-endian; see docs/revocation.md)::

    body    := issuer{section_count}, issuers in strictly increasing key-id order
    issuer  := key_id_len u8 (1..64) | key_id | crc32 u32 (of the two fields) | list{2 or 4}
    list    := count u32 | block_count u32 | crc32 u32 (of the two fields) | block{block_count}
    block   := see terminald.revocation.rice

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
MAX_ISSUERS = 0xFFFF


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


def _encode_issuer(key_id: bytes, lists: Sequence[SerialArray]) -> bytes:
    head = bytes([len(key_id)]) + key_id
    return b"".join([head, _CRC.pack(zlib.crc32(head)), *(encode_list(s) for s in lists)])


def _decode_issuer(
    data: bytes, offset: int, end: int, list_count: int
) -> tuple[bytes, list[SerialArray], int]:
    if offset >= end:
        raise RevocationFormatError(f"issuer at byte {offset}: truncated")
    length = data[offset]
    if not 1 <= length <= MAX_KEY_ID_LENGTH or offset + 1 + length + _CRC.size > end:
        raise RevocationFormatError(f"issuer at byte {offset}: bad key id length {length}")
    head = data[offset : offset + 1 + length]
    (crc,) = _CRC.unpack_from(data, offset + 1 + length)
    if zlib.crc32(head) != crc:
        raise RevocationFormatError(f"issuer at byte {offset}: header checksum mismatch")
    offset += 1 + length + _CRC.size
    lists = []
    for _ in range(list_count):
        serials, offset = decode_list(data, offset, end)
        lists.append(serials)
    return head[1:], lists, offset


_T = TypeVar("_T")


def _encode_body(items: dict[bytes, _T], lists_of: Callable[[_T], Sequence[SerialArray]]) -> bytes:
    if len(items) > MAX_ISSUERS:
        raise ValueError(f"at most {MAX_ISSUERS} issuers fit in a bundle")
    return b"".join(_encode_issuer(k, lists_of(items[k])) for k in sorted(items))


def _decode_body(
    data: bytes, offset: int, end: int, issuer_count: int, list_count: int
) -> dict[bytes, list[SerialArray]]:
    out: dict[bytes, list[SerialArray]] = {}
    previous = b""
    for _ in range(issuer_count):
        key_id, lists, offset = _decode_issuer(data, offset, end, list_count)
        if key_id <= previous:
            raise RevocationFormatError(f"issuer {key_id.hex()}: out of order or repeated")
        previous = key_id
        out[key_id] = lists
    if offset != end:
        raise RevocationFormatError(f"{end - offset} stray bytes after the last issuer")
    return out


def encode_snapshot_body(revocations: RevocationSet) -> bytes:
    return _encode_body(dict(revocations.issuers), lambda e: (e.revoked, e.hold))


def decode_snapshot_body(data: bytes, offset: int, end: int, issuer_count: int) -> RevocationSet:
    issuers: dict[bytes, IssuerEntries] = {}
    for key_id, (revoked, hold) in _decode_body(data, offset, end, issuer_count, 2).items():
        try:
            issuers[key_id] = IssuerEntries(revoked, hold)
        except ValueError as exc:
            raise RevocationFormatError(f"issuer {key_id.hex()}: {exc}") from exc
    return RevocationSet(issuers)


def encode_delta_body(delta: RevocationDelta) -> bytes:
    return _encode_body(dict(delta.issuers), lambda c: c.lists())


def decode_delta_body(data: bytes, offset: int, end: int, issuer_count: int) -> RevocationDelta:
    raw = _decode_body(data, offset, end, issuer_count, 4)
    return RevocationDelta({key_id: IssuerChanges(*lists) for key_id, lists in raw.items()})
