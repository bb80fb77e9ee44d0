"""Frames on the serial line: COBS, a 0x00 delimiter and a CRC-32C (docs/protocol.md §1).

Before COBS a frame is ``version u8 | address u8 | channel u8 | payload | crc32c u32``
(little-endian, over every byte before it). COBS (PyPI ``cobs``) removes every 0x00, and
one 0x00 ends the frame, so a receiver finds the next frame boundary after any garbage
without looking at timing. COBS adds at most one byte per 254 (plus one).

Pure: bytes in, frames out. The decoder returns every well-formed frame whatever its
address; filtering by address is the endpoint's job.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from enum import IntEnum
from typing import Final

import crc32c
from cobs import cobs

PROTOCOL_VERSION: Final = 1
BROADCAST: Final = 0x7F  # host -> every terminal
FROM_TERMINAL: Final = 0x80  # top bit of address marks a frame sent by a terminal
# A 1024-byte bulk chunk plus its message, transport and session overhead fits with room.
MAX_PAYLOAD: Final[int] = 2048

HEADER_SIZE: Final = 3
CRC_SIZE: Final = 4
DELIMITER: Final = b"\x00"
_CRC: Final = struct.Struct("<I")
# Where a frame can start: a COBS code byte >= 2, then the version byte itself.
_FRAME_START: Final = re.compile(rb"[\x02-\xff]" + re.escape(bytes([PROTOCOL_VERSION])))
_SALVAGE_TRIES: Final = 32


class Channel(IntEnum):
    """What a frame's payload is: a plaintext hello, a session record, a broadcast chunk."""

    HELLO = 0
    SESSION = 1
    BROADCAST = 2


_CHANNELS: Final = frozenset(int(c) for c in Channel)


@dataclass(frozen=True, slots=True)
class Frame:
    """One frame: ``address`` 0x00-0xFF, ``channel`` 0-255 (a :class:`Channel` to be sent)."""

    address: int
    channel: int
    payload: bytes
    version: int = PROTOCOL_VERSION

    def header(self) -> bytes:
        """The 3 header bytes (version, address, channel): the session's AEAD associated data.

        Raises ValueError if a field does not fit in a byte.
        """
        for name, value in (
            ("version", self.version),
            ("address", self.address),
            ("channel", self.channel),
        ):
            if not 0 <= value <= 0xFF:
                raise ValueError(f"frame {name} {value} is not a byte (0-255)")
        return bytes((self.version, self.address, self.channel))


def _cobs_size(raw_len: int) -> int:
    """The largest COBS encoding of ``raw_len`` bytes: one code byte per 254 data bytes.

    It is exact for data with no 0x00 (each 0x00 becomes a code byte instead of adding one).
    """
    return raw_len + 1 + (raw_len - 1) // 254 if raw_len > 0 else 1


def wire_overhead(payload_len: int) -> int:
    """Bytes on the wire beyond a payload of ``payload_len`` bytes: header, CRC, COBS, 0x00.

    The worst case, exact when the payload has no 0x00 byte (a session record is
    ciphertext, so it is within a byte or two of it); a payload with zeros never costs more.
    """
    if payload_len < 0:
        raise ValueError(f"payload length {payload_len} is negative")
    raw = HEADER_SIZE + payload_len + CRC_SIZE
    return _cobs_size(raw) + len(DELIMITER) - payload_len


def max_encoded_size(max_payload: int = MAX_PAYLOAD) -> int:
    """The longest encoded frame (without its delimiter) for payloads up to ``max_payload``."""
    return _cobs_size(HEADER_SIZE + max_payload + CRC_SIZE)


def encode_frame(frame: Frame) -> bytes:
    """The frame as it goes on the wire: COBS(header + payload + CRC-32C LE) + 0x00.

    Raises ValueError on a version, address or channel outside 0-255, a channel that is
    not a :class:`Channel`, or a payload longer than ``MAX_PAYLOAD``.
    """
    header = frame.header()
    if frame.channel not in _CHANNELS:
        raise ValueError(f"frame channel {frame.channel} is not one of {[int(c) for c in Channel]}")
    if len(frame.payload) > MAX_PAYLOAD:
        raise ValueError(f"frame payload of {len(frame.payload)} bytes exceeds {MAX_PAYLOAD}")
    body = header + bytes(frame.payload)
    return bytes(cobs.encode(body + _CRC.pack(crc32c.crc32c(body)))) + DELIMITER


@dataclass
class FrameStats:
    """Counters of a :class:`FrameDecoder` since it was made."""

    frames: int = 0  # good frames returned
    crc_errors: int = 0
    oversize: int = 0  # runs longer than a maximal frame, or a payload above the limit
    malformed: int = 0  # COBS decode error or shorter than header + CRC
    wrong_version: int = 0
    bad_channel: int = 0
    garbage_bytes: int = 0  # bytes not part of a good frame (delimiters not counted)
    salvaged: int = 0  # good frames found at the end of a run that failed as a whole


class FrameDecoder:
    """Bytes from the line in, frames out; any chunking of the stream gives the same frames.

    The buffer never holds more than one maximal encoded frame. A longer run without a 0x00
    is counted once as ``oversize`` and only its tail is kept (at most one maximal frame).
    When a run fails as a whole (bad CRC, bad COBS, or too long) the decoder looks for a
    good frame of this version at its end (at most 32 candidate starts): a bit error that
    turns a 0x00 delimiter into another byte, or garbage without a 0x00 before a frame,
    otherwise also costs the next good frame.
    Raises ValueError if ``max_payload`` is outside 0-``MAX_PAYLOAD``.
    """

    def __init__(self, max_payload: int = MAX_PAYLOAD) -> None:
        if not 0 <= max_payload <= MAX_PAYLOAD:
            raise ValueError(f"max_payload {max_payload} is outside 0-{MAX_PAYLOAD}")
        self.max_payload = max_payload
        self.stats = FrameStats()
        self._limit = max_encoded_size(max_payload)
        self._buffer = bytearray()
        self._overflowed = False

    @property
    def buffered(self) -> int:
        """Bytes held waiting for a delimiter (never more than one maximal encoded frame)."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[Frame]:
        """Frames completed by ``data``, in order. Never raises on any input."""
        frames: list[Frame] = []
        data = bytes(data)
        view = memoryview(data)
        start = 0
        while start < len(view):
            end = data.find(DELIMITER, start)
            stop = len(view) if end < 0 else end
            self._append(view[start:stop])
            if end < 0:
                break
            start = end + 1
            frame = self._complete()
            if frame is not None:
                frames.append(frame)
        return frames

    def _append(self, chunk: memoryview) -> None:
        if not chunk:
            return
        if len(chunk) > self._limit:
            # Never copy more than one maximal frame in, whatever the caller hands us.
            self.stats.garbage_bytes += len(self._buffer) + len(chunk) - self._limit
            self._buffer.clear()
            if not self._overflowed:
                self.stats.oversize += 1
                self._overflowed = True
            chunk = chunk[-self._limit :]
        self._buffer += chunk
        excess = len(self._buffer) - self._limit
        if excess > 0:
            # Keep only the tail: it may still end in a good frame.
            if not self._overflowed:
                self.stats.oversize += 1
                self._overflowed = True
            del self._buffer[:excess]
            self.stats.garbage_bytes += excess

    def _complete(self) -> Frame | None:
        run = bytes(self._buffer)
        overflowed = self._overflowed
        self._buffer.clear()
        self._overflowed = False
        if not run:
            return None  # back-to-back delimiters: an idle line or a sender's flush
        if not overflowed:
            frame, failure = self._parse(run)
            if failure is None:
                return self._accept(frame)
            if failure not in ("crc_errors", "malformed"):
                self.stats.garbage_bytes += len(run)
                self._count(failure)
                return None
            # Count the failure, then look for a good frame at the end of the run.
            self._count(failure)
        return self._salvage(run)

    def _salvage(self, run: bytes) -> Frame | None:
        # A frame starts with a COBS code byte >= 2 followed by the version byte itself
        # (the version is not 0, so COBS copies it). Only such starts are tried, from the
        # front, and at most _SALVAGE_TRIES of them: a decode and a CRC each, so crafted
        # garbage cannot make a run cost more than a few dozen decodes.
        tail_failure: str | None = None  # a CRC-valid tail that is not a usable frame
        for tries, match in enumerate(_FRAME_START.finditer(run, 1)):
            start = match.start()
            if tries >= _SALVAGE_TRIES or len(run) - start <= HEADER_SIZE + CRC_SIZE:
                break
            frame, failure = self._parse(run[start:])
            if failure is None:
                self.stats.garbage_bytes += start
                self.stats.salvaged += 1
                return self._accept(frame)
            if failure not in ("crc_errors", "malformed"):
                tail_failure = failure
                break
        self.stats.garbage_bytes += len(run)
        if tail_failure is not None:
            self._count(tail_failure)
        return None

    def _accept(self, frame: Frame | None) -> Frame | None:
        if frame is not None:
            self.stats.frames += 1
        return frame

    def _count(self, failure: str) -> None:
        setattr(self.stats, failure, getattr(self.stats, failure) + 1)

    def _parse(self, run: bytes) -> tuple[Frame | None, str | None]:
        """The frame in one delimited run, or the name of the counter its failure goes to."""
        try:
            raw = cobs.decode(run)
        except cobs.DecodeError:
            return None, "malformed"
        if len(raw) < HEADER_SIZE + CRC_SIZE:
            return None, "malformed"
        body = raw[:-CRC_SIZE]
        if _CRC.unpack_from(raw, len(body))[0] != crc32c.crc32c(body):
            return None, "crc_errors"
        version, address, channel = body[0], body[1], body[2]
        if version != PROTOCOL_VERSION:
            return None, "wrong_version"
        if channel not in _CHANNELS:
            return None, "bad_channel"
        payload = bytes(body[HEADER_SIZE:])
        if len(payload) > self.max_payload:
            return None, "oversize"
        return Frame(address=address, channel=channel, payload=payload, version=version), None
