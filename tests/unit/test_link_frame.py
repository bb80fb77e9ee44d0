"""Frames: COBS + CRC-32C round trips, resynchronisation, every bit error caught, bounds."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from terminald.link.frame import (
    BROADCAST,
    FROM_TERMINAL,
    MAX_PAYLOAD,
    PROTOCOL_VERSION,
    Channel,
    Frame,
    FrameDecoder,
    encode_frame,
    max_encoded_size,
    wire_overhead,
)
from tests.fuzzing import FUZZ

GOOD = Frame(address=5, channel=Channel.SESSION, payload=b"hello\x00world")
NEXT = Frame(address=5 | FROM_TERMINAL, channel=Channel.HELLO, payload=b"next")


def test_known_encoding() -> None:
    # version 1, address 5, channel 1, "hi", CRC-32C LE; COBS has no zero inside.
    wire = encode_frame(Frame(address=5, channel=Channel.SESSION, payload=b"hi"))
    assert wire[-1:] == b"\x00" and b"\x00" not in wire[:-1]
    assert FrameDecoder().feed(wire) == [Frame(5, 1, b"hi")]


def test_header_is_version_address_channel() -> None:
    assert GOOD.header() == bytes((PROTOCOL_VERSION, 5, 1))
    assert Frame(BROADCAST, Channel.BROADCAST, b"").header() == b"\x01\x7f\x02"


@pytest.mark.parametrize("size", [0, 1, 253, 254, 255, 1024, 1100, MAX_PAYLOAD])
def test_round_trip_and_exact_overhead(size: int) -> None:
    rng = random.Random(size)
    zero_free = bytes(rng.randrange(1, 256) for _ in range(size))
    frame = Frame(address=0x42, channel=Channel.SESSION, payload=zero_free)
    wire = encode_frame(frame)
    assert len(wire) == size + wire_overhead(size)
    assert FrameDecoder().feed(wire) == [frame]
    with_zeros = Frame(0x42, Channel.SESSION, bytes(rng.randrange(256) for _ in range(size)))
    assert len(encode_frame(with_zeros)) <= size + wire_overhead(size)
    assert FrameDecoder().feed(encode_frame(with_zeros)) == [with_zeros]


@pytest.mark.parametrize(
    ("frame", "what"),
    [
        (Frame(256, 1, b""), "address"),
        (Frame(-1, 1, b""), "address"),
        (Frame(1, 3, b""), "channel"),
        (Frame(1, 1, b"", version=300), "version"),
        (Frame(1, 1, bytes(MAX_PAYLOAD + 1)), "exceeds"),
    ],
)
def test_encode_refuses_out_of_range(frame: Frame, what: str) -> None:
    with pytest.raises(ValueError, match=what):
        encode_frame(frame)


def test_decoder_refuses_a_bad_limit() -> None:
    with pytest.raises(ValueError, match="max_payload"):
        FrameDecoder(max_payload=MAX_PAYLOAD + 1)


def test_every_split_of_the_stream_gives_the_same_frames() -> None:
    frames = [GOOD, NEXT, Frame(0x7F, Channel.BROADCAST, bytes(range(256)) * 2)]
    stream = b"".join(encode_frame(f) for f in frames)
    for cut in range(len(stream) + 1):
        decoder = FrameDecoder()
        assert decoder.feed(stream[:cut]) + decoder.feed(stream[cut:]) == frames
    decoder = FrameDecoder()
    assert [f for byte in stream for f in decoder.feed(bytes([byte]))] == frames


def test_garbage_between_frames_resyncs() -> None:
    rng = random.Random(1)
    decoder = FrameDecoder()
    out: list[Frame] = []
    for _ in range(50):
        garbage = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 300)))
        out += decoder.feed(garbage + b"\x00" + encode_frame(GOOD))
    assert out == [GOOD] * 50
    assert decoder.stats.garbage_bytes > 0


def test_garbage_without_a_delimiter_before_a_frame_is_salvaged() -> None:
    rng = random.Random(2)
    decoder = FrameDecoder()
    for _ in range(50):
        garbage = bytes(rng.randrange(1, 256) for _ in range(rng.randrange(1, 300)))
        assert decoder.feed(garbage + encode_frame(GOOD)) == [GOOD]
    assert decoder.stats.salvaged == 50


def test_garbage_inside_a_frame_drops_that_frame_only() -> None:
    wire = encode_frame(GOOD)
    decoder = FrameDecoder()
    broken = wire[:5] + b"\x13\x37" + wire[5:]
    assert decoder.feed(broken + encode_frame(NEXT)) == [NEXT]
    assert decoder.stats.crc_errors + decoder.stats.malformed == 1


def test_every_single_bit_flip_is_detected_and_the_next_frame_survives() -> None:
    wire = encode_frame(GOOD)
    follow = encode_frame(NEXT)
    for index in range(len(wire)):
        for bit in range(8):
            corrupted = bytearray(wire)
            corrupted[index] ^= 1 << bit
            decoder = FrameDecoder()
            got = decoder.feed(bytes(corrupted) + follow)
            assert got == [NEXT], (index, bit, got)
            stats = decoder.stats
            assert stats.crc_errors + stats.malformed >= 1, (index, bit)


def test_other_version_and_channel_are_counted_and_dropped() -> None:
    import crc32c
    from cobs import cobs

    def raw(body: bytes) -> bytes:
        return cobs.encode(body + crc32c.crc32c(body).to_bytes(4, "little")) + b"\x00"

    decoder = FrameDecoder()
    assert decoder.feed(raw(b"\x02\x05\x01x") + raw(b"\x01\x05\x09x") + raw(b"\x01\x05")) == []
    assert decoder.stats.wrong_version == 1
    assert decoder.stats.bad_channel == 1
    assert decoder.stats.malformed == 1
    assert decoder.stats.frames == 0


def test_oversize_is_bounded_counted_and_resynchronised() -> None:
    decoder = FrameDecoder(max_payload=64)
    limit = max_encoded_size(64)
    assert decoder.feed(b"\x01" * 10_000) == []
    assert decoder.buffered <= limit
    assert decoder.stats.oversize == 1
    assert decoder.feed(b"\x00" + encode_frame(GOOD)) == [GOOD]
    too_big = encode_frame(Frame(1, Channel.SESSION, bytes(range(1, 101))))
    assert decoder.feed(too_big + encode_frame(NEXT)) == [NEXT]
    assert decoder.stats.oversize == 2


def test_a_long_run_ending_in_a_good_frame_still_yields_it() -> None:
    decoder = FrameDecoder(max_payload=64)
    assert decoder.feed(b"\x01" * 5000 + encode_frame(GOOD)) == [GOOD]


@pytest.mark.fuzz
@FUZZ
@given(
    chunks=st.lists(
        st.one_of(
            st.binary(max_size=3000),
            st.sampled_from([b"\x00", b"\x01" * 400]),
            st.binary(max_size=300).map(lambda p: encode_frame(Frame(9, Channel.SESSION, p))),
        ),
        max_size=8,
    ),
    limit=st.integers(0, 300),
)
def test_fuzz_decoder_never_raises_and_stays_bounded(chunks: list[bytes], limit: int) -> None:
    decoder = FrameDecoder(max_payload=limit)
    whole = FrameDecoder(max_payload=limit)
    got: list[Frame] = []
    for chunk in chunks:
        got += decoder.feed(chunk)
        assert decoder.buffered <= max_encoded_size(limit)
    assert got == whole.feed(b"".join(chunks))
    assert decoder.stats == whole.stats
    assert whole.buffered <= max_encoded_size(limit)
    assert all(len(f.payload) <= limit for f in got)


@pytest.mark.fuzz
@FUZZ
@given(
    payloads=st.lists(st.binary(max_size=600), min_size=1, max_size=5),
    noise=st.binary(max_size=40),
    at=st.integers(0, 10_000),
)
def test_fuzz_good_frames_survive_noise_between_them(
    payloads: list[bytes], noise: bytes, at: int
) -> None:
    frames = [Frame(3, Channel.SESSION, p) for p in payloads]
    wires = [encode_frame(f) for f in frames]
    where = at % len(wires)
    stream = b"".join(wires[:where]) + noise + b"\x00" + b"".join(wires[where:])
    assert FrameDecoder().feed(stream) == frames
