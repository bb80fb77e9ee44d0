"""Sealing and opening bulk chunks sent once to every terminal (channel 2 BROADCAST, address 0x7F).

Payload: ``transfer id (8) | counter u64 BE | ChaCha20-Poly1305(ciphertext ‖ tag 16)`` over
``index u32 BE | data``, key = the transfer's 32-byte group key (sent to each terminal inside
its own authenticated session in ``bulk.offer``, so only terminals the host authenticated
hold it), nonce = 4 zero bytes ‖ counter (8 bytes little-endian, as Noise's ChaChaPoly and the
session records, docs/protocol.md §2), AAD = the 3 frame header bytes ‖
transfer id ‖ counter. The group key is fresh per transfer and the host never reuses a
counter under it, so nonces never repeat. A replayed frame can only deliver again a chunk of
the same transfer, which the receiver ignores as a duplicate: no counter window is needed.
Overhead per frame: 8 + 8 + 4 + 16 = :data:`SEAL_OVERHEAD` = 36 bytes (before the frame's own).
"""

from __future__ import annotations

import struct
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from terminald.link.bulk_errors import BulkError
from terminald.link.bulk_messages import GROUP_KEY_SIZE, ID_SIZE, MAX_CHUNK_SIZE

HEADER_SIZE: Final = 3  # the frame header: version, address, channel (docs/protocol.md §1)
TAG_SIZE: Final = 16
SEAL_OVERHEAD: Final = ID_SIZE + 8 + 4 + TAG_SIZE
MAX_COUNTER: Final = (1 << 64) - 1
_PREFIX = struct.Struct(">8sQ")
_INDEX = struct.Struct(">I")


def _nonce(counter: int) -> bytes:
    return b"\x00\x00\x00\x00" + counter.to_bytes(8, "little")


def seal_chunk(
    group_key: bytes, transfer_id: bytes, counter: int, header: bytes, index: int, data: bytes
) -> bytes:
    """The BROADCAST payload for chunk ``index``. ``counter`` must be new for this group key
    (the caller counts up from 0). Raises BulkError on a key, id, header, counter, index or
    data of the wrong size."""
    if len(group_key) != GROUP_KEY_SIZE or len(transfer_id) != ID_SIZE:
        raise BulkError("broadcast: group key must be 32 bytes and transfer id 8")
    if len(header) != HEADER_SIZE:
        raise BulkError(f"broadcast: frame header must be {HEADER_SIZE} bytes")
    if not 0 <= counter <= MAX_COUNTER or not 0 <= index < 1 << 32:
        raise BulkError("broadcast: counter must be a u64 and index a u32")
    if not 0 < len(data) <= MAX_CHUNK_SIZE:
        raise BulkError(f"broadcast: chunk data must be 1..{MAX_CHUNK_SIZE} bytes")
    prefix = _PREFIX.pack(transfer_id, counter)
    sealed = ChaCha20Poly1305(group_key).encrypt(
        _nonce(counter), _INDEX.pack(index) + data, header + prefix
    )
    return prefix + sealed


def peek_transfer_id(payload: bytes) -> bytes:
    """The clear transfer id, to find the offer (and so the key) a payload belongs to.
    Raises BulkError when the payload is too short to be a sealed chunk."""
    if len(payload) <= SEAL_OVERHEAD:
        raise BulkError(f"broadcast: payload of {len(payload)} bytes is too short")
    return payload[:ID_SIZE]


def open_chunk(
    group_key: bytes, transfer_id: bytes, header: bytes, payload: bytes
) -> tuple[int, bytes]:
    """``(index, data)`` from a BROADCAST payload. Raises BulkError when the payload is
    too short or too long, names another transfer, or fails authentication (tampered, other
    key, other header)."""
    if len(group_key) != GROUP_KEY_SIZE or len(header) != HEADER_SIZE:
        raise BulkError("broadcast: group key must be 32 bytes and header 3")
    if not SEAL_OVERHEAD < len(payload) <= SEAL_OVERHEAD + MAX_CHUNK_SIZE:
        raise BulkError(f"broadcast: payload of {len(payload)} bytes is out of bounds")
    their_id, counter = _PREFIX.unpack_from(payload)
    if their_id != transfer_id:
        raise BulkError(f"broadcast: chunk of transfer {their_id.hex()}, not {transfer_id.hex()}")
    try:
        plain = ChaCha20Poly1305(group_key).decrypt(
            _nonce(counter), payload[_PREFIX.size :], header + payload[: _PREFIX.size]
        )
    except InvalidTag:
        raise BulkError("broadcast: chunk fails authentication") from None
    (index,) = _INDEX.unpack_from(plain)
    return index, plain[_INDEX.size :]
