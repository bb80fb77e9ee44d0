"""Rice-coded blocks of sorted serials, vectorised with numpy.

For serials revoked at random, gaps between neighbours are geometric, and a Rice code with
the right parameter k is within about 1 % of the entropy bound (reference
revocation-and-serial.md §0: measured 1.004–1.014x). Each block picks its own k, so a block
in a dense region and one in a sparse region are both coded near their local bound.

Block layout (big-endian)::

    count      u16   serials in the block, 1..BLOCK_MAX
    k          u8    Rice parameter, 0..MAX_K
    first      u32   the first serial, stored whole so the block decodes on its own
    unary_len  u32   bytes of the unary stream
    crc32      u32   over the 11 bytes above and both streams
    unary      unary_len bytes: per gap, q = (gap-1) >> k zero bits then a one bit
    low        ceil((count-1)*k/8) bytes: per gap, the low k bits of gap-1, MSB first

Both streams are zero-padded to a byte; the decoder insists on canonical padding, so one
set has exactly one encoding.
"""

from __future__ import annotations

import math
import struct
import zlib

import numpy as np
import numpy.typing as npt

from terminald.revocation.errors import RevocationFormatError
from terminald.revocation.serials import MAX_SERIAL, SerialArray

BLOCK_MAX = 4096
MAX_K = 31
_HEAD = struct.Struct(">HBII")
_CRC = struct.Struct(">I")
BLOCK_OVERHEAD = _HEAD.size + _CRC.size


def _cost(gaps: npt.NDArray[np.int64], k: int) -> int:
    return int(gaps.size) * (k + 1) + int(np.sum(gaps >> k))


def best_parameter(gaps: npt.NDArray[np.int64]) -> int:
    """The k that minimises the coded size of ``gaps`` (each gap-1 >= 0)."""
    if gaps.size == 0:
        return 0
    mean = float(gaps.mean())
    # For geometric gaps the optimum is near log2(mean * ln 2); the cost is convex in k,
    # so walk downhill from there.
    k = min(MAX_K, max(0, int(math.log2(mean * math.log(2))) if mean > 1 else 0))
    cost = _cost(gaps, k)
    for step in (-1, 1):
        while 0 <= k + step <= MAX_K:
            nxt = _cost(gaps, k + step)
            if nxt >= cost:
                break
            k, cost = k + step, nxt
    return k


def encode_block(values: SerialArray) -> bytes:
    """Encode 1..BLOCK_MAX sorted, distinct serials."""
    count = int(values.size)
    if not 1 <= count <= BLOCK_MAX:
        raise ValueError(f"a block holds 1..{BLOCK_MAX} serials, got {count}")
    wide = values.astype(np.int64)
    gaps: npt.NDArray[np.int64] = wide[1:] - wide[:-1] - 1
    k = best_parameter(gaps)
    unary = b""
    low = b""
    if count > 1:
        ends = np.cumsum((gaps >> k) + 1) - 1
        bits = np.zeros(int(ends[-1]) + 1, dtype=np.uint8)
        bits[ends] = 1
        unary = np.packbits(bits).tobytes()
        if k:
            shifts = np.arange(k - 1, -1, -1, dtype=np.int64)
            low_bits = ((gaps[:, None] >> shifts) & 1).astype(np.uint8)
            low = np.packbits(low_bits.ravel()).tobytes()
    head = _HEAD.pack(count, k, int(values[0]), len(unary))
    crc = zlib.crc32(low, zlib.crc32(unary, zlib.crc32(head)))
    return head + _CRC.pack(crc) + unary + low


def _read_fields(low: bytes, count: int, k: int) -> npt.NDArray[np.int64]:
    """``count`` k-bit big-endian fields packed back to back in ``low``."""
    # Each field lies inside the 8 bytes starting at its first byte, so gather those 8
    # bytes as one big-endian u64, shift the field to the top, then down to the bottom.
    padded = np.frombuffer(low + bytes(8), dtype=np.uint8)
    starts = np.arange(count, dtype=np.int64) * k
    windows = np.lib.stride_tricks.sliding_window_view(padded, 8)[starts >> 3]
    words = windows.copy().view(">u8").ravel().astype(np.uint64)
    shifted = words << (starts & 7).astype(np.uint64)
    fields: npt.NDArray[np.int64] = (shifted >> np.uint64(64 - k)).astype(np.int64)
    return fields


def decode_block(data: bytes, offset: int, limit: int | None = None) -> tuple[SerialArray, int]:
    """Decode the block at ``offset`` (not reading past ``limit``); returns its serials and
    the offset after it.

    Every length is checked against the bytes actually present before anything is
    allocated, so memory and time stay proportional to ``len(data)``.
    """
    limit = len(data) if limit is None else min(limit, len(data))
    end_head = offset + BLOCK_OVERHEAD
    if end_head > limit:
        raise RevocationFormatError(f"block at byte {offset}: header truncated")
    count, k, first, unary_len = _HEAD.unpack_from(data, offset)
    (crc,) = _CRC.unpack_from(data, offset + _HEAD.size)
    if not 1 <= count <= BLOCK_MAX:
        raise RevocationFormatError(f"block at byte {offset}: count {count} out of range")
    if k > MAX_K:
        raise RevocationFormatError(f"block at byte {offset}: Rice parameter {k} > {MAX_K}")
    low_len = ((count - 1) * k + 7) // 8
    end = end_head + unary_len + low_len
    if end > limit:
        raise RevocationFormatError(f"block at byte {offset}: payload truncated")
    unary = data[end_head : end_head + unary_len]
    low = data[end_head + unary_len : end]
    head = data[offset : offset + _HEAD.size]
    if zlib.crc32(low, zlib.crc32(unary, zlib.crc32(head))) != crc:
        raise RevocationFormatError(f"block at byte {offset}: checksum mismatch")
    if count == 1:
        if unary_len:
            raise RevocationFormatError(f"block at byte {offset}: stray unary bytes")
        return np.array([first], dtype=np.uint32), end
    # Each gap needs at least one unary bit: refuse before unpacking a huge stream.
    if unary_len * 8 < count - 1:
        raise RevocationFormatError(f"block at byte {offset}: unary stream too short")
    ends = np.flatnonzero(np.unpackbits(np.frombuffer(unary, dtype=np.uint8)))
    if ends.size != count - 1 or int(ends[-1]) // 8 != unary_len - 1:
        raise RevocationFormatError(f"block at byte {offset}: unary stream malformed")
    quotients = np.diff(ends, prepend=-1) - 1
    if int(quotients.max()) > MAX_SERIAL >> k:  # would overflow before the range check
        raise RevocationFormatError(f"block at byte {offset}: serial beyond 2**32-1")
    gaps = quotients << k
    if k:
        if (count - 1) * k % 8 and low[-1] & ((1 << (8 - (count - 1) * k % 8)) - 1):
            raise RevocationFormatError(f"block at byte {offset}: low-bit padding not zero")
        gaps |= _read_fields(low, count - 1, k)
    values = np.cumsum(gaps + 1) + first
    if int(values[-1]) > MAX_SERIAL:
        raise RevocationFormatError(f"block at byte {offset}: serial beyond 2**32-1")
    out = np.empty(count, dtype=np.uint32)
    out[0] = first
    out[1:] = values
    return out, end
