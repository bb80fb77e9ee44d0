"""Transport parts by hand: segments on the wire, RFC 6298, one end fed segments."""

from __future__ import annotations

import pytest

from terminald.link.transport import (
    Lane,
    Transport,
    TransportConfig,
    TransportExhausted,
    TransportFull,
)
from terminald.link.transport_rto import RttEstimator
from terminald.link.transport_wire import (
    AckBlock,
    Segment,
    SegmentError,
    decode_segment,
    encode_segment,
)

# -- segments on the wire -----------------------------------------------------------------


def test_segment_round_trips() -> None:
    segments = [
        Segment(lane=Lane.BULK, seq=7, first=True, last=False, data=b"abc"),
        Segment(acks=(AckBlock(3, 16, 0b101), None), poll=True),
        Segment(acks=(AckBlock(0, 1), AckBlock(2**32 - 1, 255, 1 << 253)), lane=Lane.INTERACTIVE),
        Segment(poll=True),
    ]
    for segment in segments:
        assert decode_segment(encode_segment(segment)) == segment


def test_known_segment_bytes() -> None:
    raw = encode_segment(
        Segment(acks=(None, AckBlock(5, 16, 0b11)), lane=Lane.BULK, seq=9, first=True, data=b"x")
    )
    # flags DATA|LANE_BULK|FIRST|ACK_BULK, then cum 5, credit 16, 1 SACK byte, seq 9, data.
    assert raw == bytes([0x47]) + b"\x00\x00\x00\x05\x10\x01\x03" + b"\x00\x00\x00\x09x"


@pytest.mark.parametrize(
    ("raw", "what"),
    [
        (b"", "empty"),
        (b"\x80", "reserved"),
        (b"\x00", "neither"),
        (b"\x04", "without DATA"),
        (b"\x20\x00\x00", "truncated"),
        (b"\x20\x00\x00\x00\x01\x00\x00", "credit 0"),
        (b"\x20\x00\x00\x00\x01\x10\x21" + bytes(33), "SACK"),
        (b"\x20\x00\x00\x00\x01\x10\x02\x01", "SACK"),
        (b"\x20\x00\x00\x00\x01\x10\x00\xff", "stray"),
        (b"\x01\x00\x00", "sequence"),
    ],
)
def test_malformed_segments_are_named(raw: bytes, what: str) -> None:
    with pytest.raises(SegmentError, match=what):
        decode_segment(raw)


def test_ack_block_received() -> None:
    block = AckBlock(10, 16, 0b100)
    assert block.received(9) and block.received(13)
    assert not block.received(10) and not block.received(11) and not block.received(12)


# -- RFC 6298 -----------------------------------------------------------------------------


def test_rto_follows_rfc6298() -> None:
    rtt = RttEstimator(initial_rto=1.0, min_rto=0.01, max_rto=10.0)
    assert rtt.rto == 1.0 and rtt.srtt is None
    rtt.sample(0.1)  # §2.2: SRTT = R, RTTVAR = R/2, RTO = SRTT + 4 RTTVAR
    assert rtt.srtt == pytest.approx(0.1) and rtt.rttvar == pytest.approx(0.05)
    assert rtt.rto == pytest.approx(0.3)
    rtt.sample(0.2)  # §2.3
    assert rtt.rttvar == pytest.approx(0.75 * 0.05 + 0.25 * 0.1)
    assert rtt.srtt == pytest.approx(0.875 * 0.1 + 0.125 * 0.2)
    rtt.backoff()
    assert rtt.rto == pytest.approx(2 * (rtt.srtt + 4 * rtt.rttvar))
    for _ in range(10):
        rtt.backoff()
    assert rtt.rto == 10.0
    floor = RttEstimator(initial_rto=1.0, min_rto=0.2, max_rto=10.0)
    floor.sample(0.001)
    assert floor.rto == 0.2


# -- one end, by hand ---------------------------------------------------------------------


def small(**overrides: object) -> TransportConfig:
    fields: dict[str, object] = {
        "max_segment": 100,
        "credit": 4,
        "max_queued": 4096,
        "max_message": 4096,
    }
    fields.update(overrides)
    return TransportConfig(**fields)  # type: ignore[arg-type]


def test_config_refuses_out_of_range() -> None:
    with pytest.raises(ValueError, match="credit"):
        small(credit=0)
    with pytest.raises(ValueError, match="credit"):
        small(credit=256)
    with pytest.raises(ValueError, match="max_segment"):
        small(max_segment=20)
    with pytest.raises(ValueError, match="max_message"):
        small(max_message=5000)


def test_send_refuses_too_large_full_and_exhausted() -> None:
    end = Transport(small(max_message=1000, max_queued=1500), 0.0)
    with pytest.raises(ValueError, match="max_message"):
        end.send(Lane.BULK, bytes(1001))
    end.send(Lane.BULK, bytes(1000))
    end.send(Lane.BULK, bytes(500))  # exactly max_queued
    with pytest.raises(TransportFull, match="max_queued"):
        end.send(Lane.BULK, b"")
    assert end.queued(Lane.BULK) == 1500
    end.send(Lane.INTERACTIVE, bytes(400))  # the other lane has its own bound
    end._send[Lane.INTERACTIVE].next_seq = 2**32 - 1
    end.send(Lane.INTERACTIVE, b"one segment fits")
    with pytest.raises(TransportExhausted, match="2\\^32"):
        end.send(Lane.INTERACTIVE, b"no more")
    with pytest.raises(ValueError):
        end.send(7, b"")  # type: ignore[arg-type]


def test_before_any_credit_only_one_segment_per_lane() -> None:
    end = Transport(small(), 0.0)
    end.send(Lane.BULK, bytes(500))  # six fragments of 83 bytes
    end.send(Lane.INTERACTIVE, b"status?")
    out = [decode_segment(raw) for raw in end.poll(0.0)]
    assert [(s.lane, s.seq) for s in out] == [(Lane.INTERACTIVE, 0), (Lane.BULK, 0)]
    assert out[-1].poll  # nothing more may go: ask for the ACK at once
    # The peer's ACK opens the window to its credit (4): three more bulk segments.
    ack = encode_segment(Segment(acks=(AckBlock(1, 4), AckBlock(1, 4))))
    end.on_segment(ack, 0.1)
    out = [decode_segment(raw) for raw in end.poll(0.1)]
    assert [s.seq for s in out] == [1, 2, 3, 4]
    assert end.in_flight(Lane.BULK) == 4
    assert end.stats.peer_credit[Lane.BULK] == 4


def test_unsent_data_cannot_be_acknowledged_and_nothing_changes() -> None:
    end = Transport(small(), 0.0)
    end.send(Lane.BULK, b"abc")
    end.poll(0.0)
    bogus = encode_segment(Segment(acks=(None, AckBlock(5, 4))))
    assert end.on_segment(bogus, 0.1) == []
    assert end.stats.malformed == 1
    assert end.queued(Lane.BULK) == 3 and end.in_flight(Lane.BULK) == 1
    assert end.stats.peer_credit[Lane.BULK] is None


def test_oversize_segment_and_garbage_are_counted() -> None:
    end = Transport(small(), 0.0)
    assert end.on_segment(bytes(101), 0.0) == []
    assert end.on_segment(b"\xff\xff", 0.0) == []
    assert end.stats.malformed == 2 and end.stats.segments_received == 0


def test_karn_no_sample_from_a_retransmission() -> None:
    end = Transport(small(initial_rto=1.0), 0.0)
    end.send(Lane.INTERACTIVE, b"ping")
    end.poll(0.0)
    assert end.next_deadline() == pytest.approx(1.0)
    again = [decode_segment(raw) for raw in end.poll(1.0)]
    assert [s.seq for s in again] == [0] and end.stats.timeouts == 1
    assert end.stats.rto == pytest.approx(2.0)  # backoff
    end.on_segment(encode_segment(Segment(acks=(AckBlock(1, 4), None))), 1.05)
    assert end.stats.srtt is None  # ambiguous: which transmission was acknowledged?
    assert end.idle()
    end.send(Lane.INTERACTIVE, b"pong")
    end.poll(2.0)
    end.on_segment(encode_segment(Segment(acks=(AckBlock(2, 4), None))), 2.05)
    assert end.stats.srtt == pytest.approx(0.05)


def test_sack_hole_is_retransmitted_before_new_data() -> None:
    end = Transport(small(), 0.0)
    end.on_segment(encode_segment(Segment(acks=(None, AckBlock(0, 4)))), 0.0)
    for n in range(6):
        end.send(Lane.BULK, bytes([n]) * 10)
    assert [decode_segment(r).seq for r in end.poll(0.0)] == [0, 1, 2, 3]
    # 1 was lost: the receiver has 0, 2 and 3 (cum 1, SACK bits for 2 and 3).
    end.on_segment(encode_segment(Segment(acks=(None, AckBlock(1, 4, 0b11)))), 0.2)
    assert end.stats.fast_retransmits == 1
    assert [decode_segment(r).seq for r in end.poll(0.2)] == [1, 4]


def test_reassembly_drops_a_message_without_its_last_fragment() -> None:
    end = Transport(small(), 0.0)
    seg = Segment(lane=Lane.BULK, seq=0, first=True, data=b"half")
    assert end.on_segment(encode_segment(seg), 0.0) == []
    seg = Segment(lane=Lane.BULK, seq=1, first=True, last=True, data=b"whole")
    assert end.on_segment(encode_segment(seg), 0.0) == [(Lane.BULK, b"whole")]
    assert end.stats.broken_messages == 1


def test_data_beyond_our_credit_is_refused() -> None:
    end = Transport(small(credit=4), 0.0)
    seg = Segment(lane=Lane.BULK, seq=4, first=True, last=True, data=b"far")
    assert end.on_segment(encode_segment(seg), 0.0) == []
    assert end.stats.out_of_window == 1
    (ack,) = [decode_segment(raw) for raw in end.poll(0.0)]
    assert ack.acks[Lane.BULK] == AckBlock(0, 4, 0)


def test_a_stale_ack_changes_nothing() -> None:
    end = Transport(small(), 0.0)
    end.on_segment(encode_segment(Segment(acks=(AckBlock(0, 4), AckBlock(0, 4)))), 0.0)
    for n in range(3):
        end.send(Lane.BULK, bytes([n]) * 10)
    end.poll(0.0)
    end.on_segment(encode_segment(Segment(acks=(None, AckBlock(2, 4)))), 0.1)
    assert end.in_flight(Lane.BULK) == 1
    # A late copy of an older ACK (credit 1, cum 1) neither rewinds nor shrinks anything.
    end.on_segment(encode_segment(Segment(acks=(None, AckBlock(1, 1)))), 0.2)
    assert end.in_flight(Lane.BULK) == 1
    assert end.stats.peer_credit[Lane.BULK] == 4
    assert end.stats.fast_retransmits == 0
