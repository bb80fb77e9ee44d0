"""Transport segments on the wire: flags, ACK blocks (cumulative + SACK + credit), data.

A segment is the plaintext of one session record (docs/protocol.md §3)::

    flags u8 | [ACK block, interactive lane] | [ACK block, bulk lane] | [seq u32 | fragment]

    flags   0x01 DATA (seq and fragment follow)   0x02 lane of the data (1 = bulk)
            0x04 FIRST fragment of a message      0x08 LAST fragment of a message
            0x10 POLL: "acknowledge now" (end of a burst; hands a half-duplex line over)
            0x20 ACK block for the interactive lane follows
            0x40 ACK block for the bulk lane follows
            0x80 reserved, must be 0
    ACK block  cum u32 (next sequence number expected) | credit u8 (segments the receiver
               accepts from cum on, 1-255) | sack_len u8 (0-32) | SACK bitmap (bit i,
               least significant bit of byte 0 first, = segment cum + 1 + i was received)

Integers are big-endian. A segment without DATA carries at least one ACK block or POLL.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum
from typing import Final

DATA: Final = 0x01
LANE_BULK: Final = 0x02
FIRST: Final = 0x04
LAST: Final = 0x08
POLL: Final = 0x10
ACK_INTERACTIVE: Final = 0x20
ACK_BULK: Final = 0x40
_RESERVED: Final = 0x80

MAX_SEQ: Final = 0xFFFF_FFFF
MAX_CREDIT: Final = 255
MAX_SACK_BYTES: Final = 32  # 256 bits: more than MAX_CREDIT - 1 segments beyond cum
ACK_BLOCK_SIZE: Final = 6  # without its SACK bytes
DATA_HEADER_SIZE: Final = 1 + 4  # flags + seq
# Room kept in every data segment for both ACK blocks (without SACK), so an ACK due can
# ride on a full data segment instead of costing a frame of its own.
PIGGYBACK_ROOM: Final = 2 * ACK_BLOCK_SIZE
_ACK: Final = struct.Struct(">IBB")
_SEQ: Final = struct.Struct(">I")


class Lane(IntEnum):
    """A sequence space of its own: a lost bulk segment never holds up interactive ones."""

    INTERACTIVE = 0
    BULK = 1


class SegmentError(ValueError):
    """A segment that does not parse; the message names what was wrong."""


@dataclass(frozen=True, slots=True)
class AckBlock:
    """What a receiver holds of one lane: ``cum`` = next expected seq; ``sack`` bit i = cum+1+i."""

    cum: int
    credit: int
    sack: int = 0

    def received(self, seq: int) -> bool:
        """Whether this block says segment ``seq`` was received."""
        if seq < self.cum:
            return True
        offset = seq - self.cum - 1
        return offset >= 0 and bool(self.sack >> offset & 1)


@dataclass(frozen=True, slots=True)
class Segment:
    """A decoded segment. ``lane`` is None when it carries no data."""

    acks: tuple[AckBlock | None, AckBlock | None] = (None, None)  # by lane
    poll: bool = False
    lane: Lane | None = None
    seq: int = 0
    first: bool = False
    last: bool = False
    data: bytes = b""


def ack_block_size(block: AckBlock) -> int:
    """Encoded size of an ACK block in bytes."""
    return ACK_BLOCK_SIZE + (block.sack.bit_length() + 7) // 8


def encode_segment(segment: Segment) -> bytes:
    """The segment's bytes. Raises SegmentError on a field out of range."""
    flags = POLL if segment.poll else 0
    parts: list[bytes] = []
    for lane, block in zip(Lane, segment.acks, strict=True):
        if block is None:
            continue
        if not 0 <= block.cum <= MAX_SEQ or not 1 <= block.credit <= MAX_CREDIT:
            raise SegmentError(f"ACK block cum {block.cum} or credit {block.credit} out of range")
        sack_len = (block.sack.bit_length() + 7) // 8
        if block.sack < 0 or sack_len > MAX_SACK_BYTES:
            raise SegmentError(f"SACK bitmap of {sack_len} bytes exceeds {MAX_SACK_BYTES}")
        flags |= ACK_BULK if lane is Lane.BULK else ACK_INTERACTIVE
        parts.append(_ACK.pack(block.cum, block.credit, sack_len))
        parts.append(block.sack.to_bytes(sack_len, "little"))
    if segment.lane is not None:
        if not 0 <= segment.seq <= MAX_SEQ:
            raise SegmentError(f"sequence number {segment.seq} out of range")
        flags |= DATA | (LANE_BULK if segment.lane is Lane.BULK else 0)
        flags |= (FIRST if segment.first else 0) | (LAST if segment.last else 0)
        parts.append(_SEQ.pack(segment.seq))
        parts.append(segment.data)
    elif segment.first or segment.last or segment.data:
        raise SegmentError("fragment flags or data on a segment without a lane")
    elif not segment.poll and segment.acks == (None, None):
        raise SegmentError("a segment needs data, an ACK block or POLL")
    return bytes([flags]) + b"".join(parts)


def decode_segment(raw: bytes) -> Segment:
    """Parse one segment. Raises SegmentError naming what was wrong; never anything else."""
    if not raw:
        raise SegmentError("empty segment")
    flags = raw[0]
    if flags & _RESERVED:
        raise SegmentError(f"reserved flag bit set in {flags:#04x}")
    at = 1
    acks: list[AckBlock | None] = [None, None]
    for lane, bit in ((Lane.INTERACTIVE, ACK_INTERACTIVE), (Lane.BULK, ACK_BULK)):
        if not flags & bit:
            continue
        if len(raw) < at + ACK_BLOCK_SIZE:
            raise SegmentError(f"ACK block of lane {lane.name} truncated")
        cum, credit, sack_len = _ACK.unpack_from(raw, at)
        at += ACK_BLOCK_SIZE
        if credit == 0:
            raise SegmentError(f"credit 0 in the ACK block of lane {lane.name}")
        if sack_len > MAX_SACK_BYTES or len(raw) < at + sack_len:
            raise SegmentError(f"SACK bitmap of {sack_len} bytes too long or truncated")
        acks[lane] = AckBlock(cum, credit, int.from_bytes(raw[at : at + sack_len], "little"))
        at += sack_len
    poll = bool(flags & POLL)
    pair = (acks[0], acks[1])
    if not flags & DATA:
        if flags & (LANE_BULK | FIRST | LAST):
            raise SegmentError(f"fragment flags without DATA in {flags:#04x}")
        if at != len(raw):
            raise SegmentError(f"{len(raw) - at} stray bytes after the ACK blocks")
        if not poll and pair == (None, None):
            raise SegmentError("segment with neither data, ACK nor POLL")
        return Segment(acks=pair, poll=poll)
    if len(raw) < at + 4:
        raise SegmentError("sequence number truncated")
    (seq,) = _SEQ.unpack_from(raw, at)
    return Segment(
        acks=pair,
        poll=poll,
        lane=Lane.BULK if flags & LANE_BULK else Lane.INTERACTIVE,
        seq=seq,
        first=bool(flags & FIRST),
        last=bool(flags & LAST),
        data=bytes(raw[at + 4 :]),
    )
