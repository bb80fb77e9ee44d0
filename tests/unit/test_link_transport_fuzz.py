"""Transport.on_segment on arbitrary input: never raises, state stays bounded."""

from __future__ import annotations

import copy
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from terminald.link.transport import Lane, Transport, TransportConfig
from terminald.link.transport_wire import AckBlock, Segment, encode_segment
from tests.fuzzing import FUZZ
from tests.unit.link_transport_sim import Sim, config, random_loss

CONFIG = TransportConfig(max_segment=200, credit=8, max_message=1000, max_queued=4000)


def primed() -> Transport:
    """An end with data in flight on both lanes, so ACKs have something to act on."""
    end = Transport(CONFIG, 0.0)
    end.send(Lane.BULK, bytes(900))
    end.send(Lane.INTERACTIVE, b"status?")
    end.on_segment(encode_segment(Segment(acks=(AckBlock(0, 8), AckBlock(0, 8)))), 0.0)
    end.poll(0.0)
    return end


def assert_bounded(end: Transport) -> None:
    for lane in Lane:
        recv, send = end._recv[lane], end._send[lane]
        assert all(recv.cum < seq < recv.cum + CONFIG.credit for seq in recv.ooo)
        assert recv.partial is None or len(recv.partial) <= CONFIG.max_message
        assert 0 <= send.queued <= CONFIG.max_queued
        assert send.una <= send.nxt <= send.next_seq
        # A peer may shrink its credit below what is already in flight; never above 255.
        assert send.in_flight() <= 255 and send.window() <= 255
        assert send.lost_count == sum(seg.lost for seg in send.segments)


def state_of(end: Transport) -> object:
    state = copy.deepcopy((end._send, end._recv, end._turn, end._rtt.__dict__))
    return repr(state)


@pytest.mark.fuzz
@FUZZ
@given(raw=st.lists(st.binary(max_size=300), max_size=20))
def test_fuzz_arbitrary_bytes_never_raise(raw: list[bytes]) -> None:
    end = primed()
    for index, segment in enumerate(raw):
        for _lane, message in end.on_segment(segment, 0.01 * index):
            assert len(message) <= CONFIG.max_message
        end.poll(0.01 * index)
        assert_bounded(end)


blocks = st.one_of(
    st.none(),
    st.builds(
        AckBlock,
        cum=st.integers(0, 12),
        credit=st.integers(1, 255),
        sack=st.integers(0, 2**40 - 1),
    ),
)
segments = st.builds(
    Segment,
    acks=st.tuples(blocks, blocks),
    poll=st.booleans(),
    lane=st.one_of(st.none(), st.sampled_from(Lane)),
    seq=st.integers(0, 20),
    first=st.booleans(),
    last=st.booleans(),
    data=st.binary(max_size=150),
)


def encodable(segment: Segment) -> bytes | None:
    if segment.lane is None:
        segment = Segment(acks=segment.acks, poll=True)
    for block in segment.acks:
        if block is not None and block.sack.bit_length() > 256:
            return None
    return encode_segment(segment)


@pytest.mark.fuzz
@FUZZ
@given(script=st.lists(st.tuples(segments, st.floats(0, 2)), max_size=30))
def test_fuzz_well_formed_segments_keep_state_bounded(script: list[tuple[Segment, float]]) -> None:
    end = primed()
    now = 0.0
    for segment, gap in script:
        now += gap
        raw = encodable(segment)
        if raw is None:
            continue
        end.on_segment(raw, now)
        end.poll(now)
        assert_bounded(end)
        deadline = end.next_deadline()
        assert deadline is None or deadline > now or end.poll(now, limit=1)


@pytest.mark.fuzz
@FUZZ
@given(raw=st.binary(max_size=300))
def test_fuzz_a_refused_segment_changes_nothing(raw: bytes) -> None:
    end = primed()
    before, malformed = state_of(end), end.stats.malformed
    end.on_segment(raw, 0.5)
    if end.stats.malformed > malformed:
        assert state_of(end) == before


@pytest.mark.fuzz
@FUZZ
@given(
    seed=st.integers(0, 2**32 - 1),
    loss=st.floats(0, 0.3),
    duplicate=st.floats(0, 0.2),
    half=st.booleans(),
    credit=st.integers(1, 20),
    sizes=st.lists(st.integers(0, 6000), min_size=1, max_size=8),
)
def test_fuzz_lossy_line_delivers_everything_once_in_order(
    seed: int, loss: float, duplicate: float, half: bool, credit: int, sizes: list[int]
) -> None:
    sim = Sim(
        config(half_duplex=half, credit=credit),
        config(half_duplex=half, initiator=False, credit=credit),
        drop=random_loss(loss),
        duplicate=duplicate,
        seed=seed,
    )
    rng = random.Random(seed)
    sent: dict[tuple[str, Lane], list[bytes]] = {}
    for index, size in enumerate(sizes):
        name, lane = rng.choice("ab"), rng.choice(list(Lane))
        message = index.to_bytes(2, "big") + rng.randbytes(size)
        sim.ends[name].send(lane, message)
        sent.setdefault((name, lane), []).append(message)
    sim.run(
        lambda s: sum(map(len, s.delivered.values())) == len(sizes) and s.a.idle() and s.b.idle(),
        limit=100_000,
    )
    for (name, lane), messages in sent.items():
        assert sim.messages("b" if name == "a" else "a", lane) == messages
    assert sim.stalls == 0 and sim.collisions == 0
