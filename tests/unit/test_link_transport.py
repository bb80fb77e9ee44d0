"""Transport: two ends over a simulated serial line (deterministic, no clock read)."""

from __future__ import annotations

import random

import pytest

from terminald.link.frame import MAX_PAYLOAD
from terminald.link.transport import Lane
from tests.unit.link_transport_sim import (
    MAX_SEGMENT,
    RATE,
    Sim,
    byte_errors,
    config,
    random_loss,
    wire_bytes,
)

# -- two ends over the simulated line -----------------------------------------------------


def traffic(sim: Sim, seed: int, count: int) -> dict[tuple[str, Lane], list[bytes]]:
    """Queue ``count`` random messages each way on each lane; return what was sent."""
    rng = random.Random(seed)
    sent: dict[tuple[str, Lane], list[bytes]] = {}
    for name in ("a", "b"):
        for lane in Lane:
            msgs = [rng.randbytes(rng.choice([0, 1, 50, 1024, 3000, 5000])) for _ in range(count)]
            for index, msg in enumerate(msgs):
                # A counter up front makes every message distinct, so order is checked.
                msg = index.to_bytes(2, "big") + msg
                msgs[index] = msg
                sim.ends[name].send(lane, msg)
            sent[(name, lane)] = msgs
    return sent


def assert_exactly_once_in_order(sim: Sim, sent: dict[tuple[str, Lane], list[bytes]]) -> None:
    for (name, lane), msgs in sent.items():
        other = "b" if name == "a" else "a"
        assert sim.messages(other, lane) == msgs, (name, lane)
    assert sim.stalls == 0
    assert sim.a.idle() and sim.b.idle()


def everything_delivered(total: int) -> object:
    return lambda s: len(s.delivered["a"]) + len(s.delivered["b"]) == total and s.a.idle()


@pytest.mark.parametrize("half", [False, True])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_loss_and_duplicates_both_lanes_both_ways(half: bool, seed: int) -> None:
    sim = Sim(
        config(half_duplex=half),
        config(half_duplex=half, initiator=False),
        drop=random_loss(0.15),
        duplicate=0.05,
        seed=seed,
    )
    sent = traffic(sim, seed, 12)
    sim.run(lambda s: sum(map(len, s.delivered.values())) == 48 and s.a.idle() and s.b.idle())
    assert_exactly_once_in_order(sim, sent)
    assert sim.a.stats.retransmits + sim.b.stats.retransmits > 0
    assert sim.a.stats.duplicates + sim.b.stats.duplicates > 0
    assert sim.collisions == 0


@pytest.mark.parametrize("half", [False, True])
def test_burst_loss(half: bool) -> None:
    def burst(sender: str, index: int, length: int, rng: random.Random) -> bool:
        return 10 <= index < 30  # twenty segments in a row, each direction

    sim = Sim(config(half_duplex=half), config(half_duplex=half, initiator=False), drop=burst)
    sent = traffic(sim, 7, 10)
    sim.run(lambda s: sum(map(len, s.delivered.values())) == 40 and s.a.idle() and s.b.idle())
    assert_exactly_once_in_order(sim, sent)
    assert sim.a.stats.timeouts > 0
    assert sim.collisions == 0


@pytest.mark.parametrize("half", [False, True])
def test_credit_is_never_exceeded(half: bool) -> None:
    credit = 5
    sim = Sim(
        config(half_duplex=half),
        config(half_duplex=half, initiator=False, credit=credit),
        drop=random_loss(0.1),
        seed=4,
    )
    for n in range(60):
        sim.a.send(Lane.BULK, bytes([n]) * 700)
    worst = 0

    def watch(s: Sim) -> bool:
        nonlocal worst
        worst = max(worst, s.a.in_flight(Lane.BULK))
        if s.a.stats.peer_credit[Lane.BULK] is None:
            assert s.a.in_flight(Lane.BULK) <= 1  # nothing heard yet: one segment
        return len(s.delivered["b"]) == 60

    sim.run(watch)
    assert worst == credit  # the window was used, and never more
    assert sim.b.stats.out_of_window == 0


def test_interactive_waits_behind_at_most_one_bulk_frame() -> None:
    sim = Sim(config(), config())
    for n in range(100):
        sim.a.send(Lane.BULK, bytes([n + 1]) * 1024)
    asked: list[float] = []

    def ask(at: float) -> None:
        def action(s: Sim) -> None:
            asked.append(s.now)
            s.a.send(Lane.INTERACTIVE, b"status?")

        sim.at(at, action)

    for when in (1.0, 2.345, 4.5, 6.789):
        ask(when)
    sim.run(lambda s: len(s.messages("b", Lane.INTERACTIVE)) == 4)
    frame_time = wire_bytes(1024 + 5) / RATE
    for when in asked:
        # Bulk transmissions that began after the request and before the answer went out.
        answer = next(x for x in sim.log if x.segment.lane is Lane.INTERACTIVE and x.start >= when)
        jumped = [
            x
            for x in sim.log
            if x.sender == "a" and x.segment.lane is Lane.BULK and when <= x.start < answer.start
        ]
        assert jumped == []
        assert answer.start - when <= frame_time  # only the frame already on the wire
    delivered = [t for t, lane, _ in sim.delivered["b"] if lane is Lane.INTERACTIVE]
    assert all(
        t - w <= frame_time + wire_bytes(40) / RATE for t, w in zip(delivered, asked, strict=True)
    )


def test_rto_adapts_to_the_round_trip() -> None:
    sim = Sim(config(min_rto=0.05), config(min_rto=0.05))
    for n in range(40):
        sim.a.send(Lane.INTERACTIVE, bytes([n]) * 100)
    sim.run(lambda s: len(s.delivered["b"]) == 40 and s.a.idle())
    fast_srtt, fast_rto = sim.a.stats.srtt, sim.a.stats.rto
    assert fast_srtt is not None and fast_srtt < 0.1
    sim.latency = 0.4  # a slow converter appears: 0.8 s more per round trip
    for batch in range(2, 6):
        for n in range(40):
            sim.a.send(Lane.INTERACTIVE, bytes([n]) * 100)
        sim.run(lambda s, batch=batch: len(s.delivered["b"]) == 40 * batch and s.a.idle())
    slow_srtt = sim.a.stats.srtt
    assert slow_srtt is not None and slow_srtt > 0.7
    assert sim.a.stats.rto > slow_srtt > fast_rto
    assert sim.a.stats.timeouts <= 2  # the first slow round trips may time out, then no more


def test_half_duplex_sends_bursts_and_gets_one_ack_per_burst() -> None:
    burst = 6
    sim = Sim(
        config(half_duplex=True, max_burst=burst),
        config(half_duplex=True, initiator=False, max_burst=burst),
    )
    for n in range(60):
        sim.a.send(Lane.BULK, bytes([n]) * 1024)
    sim.run(lambda s: len(s.delivered["b"]) == 60 and s.a.idle())
    assert sim.collisions == 0
    bursts: list[int] = []
    run = 0
    for sent in sim.log:
        if sent.sender == "a":
            run += sent.segment.lane is not None
            if sent.segment.poll:
                bursts.append(run)
                run = 0
        else:
            # B only ever answers: one ACK segment handing the line back, no data.
            assert sent.segment.poll and sent.segment.lane is None
            assert sent.segment.acks[Lane.BULK] is not None
    replies = [x for x in sim.log if x.sender == "b"]
    assert len(replies) == len(bursts)  # one ACK per burst, nothing else from B
    assert max(bursts) == burst and sum(bursts) == 60
    assert bursts[0] == 1  # before B's credit is known only one segment goes


def test_half_duplex_responder_speaks_only_when_polled() -> None:
    sim = Sim(config(half_duplex=True), config(half_duplex=True, initiator=False))
    sim.b.send(Lane.INTERACTIVE, b"door opened")
    sim.run(lambda s: s.messages("a", Lane.INTERACTIVE) == [b"door opened"] and s.b.idle())
    first_b = next(x for x in sim.log if x.sender == "b")
    polls_before = [x for x in sim.log if x.sender == "a" and x.start < first_b.start]
    assert polls_before and polls_before[-1].segment.poll  # the idle host handed it the line
    assert sim.collisions == 0


def test_large_messages_are_fragmented_and_reassembled() -> None:
    sim = Sim(config(max_message=64 * 1024), config(max_message=64 * 1024), drop=random_loss(0.1))
    big = random.Random(5).randbytes(64 * 1024)
    sim.a.send(Lane.BULK, big)
    sim.run(lambda s: len(s.delivered["b"]) == 1)
    assert sim.messages("b", Lane.BULK) == [big]
    assert sim.a.stats.data_sent >= 64 * 1024 // sim.a.config.fragment_size


# -- efficiency (a property of the protocol in the simulation, not of this machine) ---------


def bulk_efficiency(half: bool, byte_error_rate: float, count: int = 600) -> tuple[float, Sim]:
    """Payload bytes delivered / (line capacity × time) for 1024-byte bulk messages."""
    drop = byte_errors(byte_error_rate) if byte_error_rate else None
    sim = Sim(config(half_duplex=half), config(half_duplex=half, initiator=False), drop=drop)
    for n in range(count):
        sim.a.send(Lane.BULK, (n % 251 + 1).to_bytes(1, "big") * 1024)
    sim.run(lambda s: len(s.delivered["b"]) == count)
    assert len(sim.messages("b", Lane.BULK)) == count
    return count * 1024 / (RATE * sim.now), sim


def test_bulk_efficiency(capsys: pytest.CaptureFixture[str]) -> None:
    rows = []
    for half in (False, True):
        for rate in (0.0, 1e-5):
            efficiency, sim = bulk_efficiency(half, rate)
            rows.append((half, rate, efficiency, sim))
    with capsys.disabled():
        print("\nbulk efficiency, 1024-byte messages, 115200 baud, simulated")
        print(f"{'line':<12}{'byte errors':>12}{'efficiency':>12}{'retransmits':>13}{'acks':>7}")
        for half, rate, efficiency, sim in rows:
            line = "half duplex" if half else "full duplex"
            retx, acks = sim.a.stats.retransmits, sim.b.stats.acks_sent
            print(f"{line:<12}{rate:>12g}{efficiency:>12.4f}{retx:>13}{acks:>7}")
    full_clean, full_noisy = rows[0][2], rows[1][2]
    assert full_clean >= 0.95
    assert full_noisy >= 0.90
    assert rows[2][2] >= 0.90  # half duplex, clean: turnarounds and ACKs cost a little


def test_a_segment_fits_a_frame() -> None:
    assert MAX_SEGMENT + 24 == MAX_PAYLOAD


def test_half_duplex_interactive_goes_next_within_a_burst() -> None:
    sim = Sim(config(half_duplex=True), config(half_duplex=True, initiator=False))
    for n in range(40):
        sim.a.send(Lane.BULK, bytes([n + 1]) * 1024)
    asked: list[float] = []

    def ask(s: Sim) -> None:
        asked.append(s.now)
        s.a.send(Lane.INTERACTIVE, b"mode?")

    sim.at(2.0, ask)
    sim.run(lambda s: len(s.messages("b", Lane.INTERACTIVE)) == 1)
    (when,) = asked
    answer = next(x for x in sim.log if x.segment.lane is Lane.INTERACTIVE)
    bulk_between = [
        x
        for x in sim.log
        if x.sender == "a" and x.segment.lane is Lane.BULK and when <= x.start < answer.start
    ]
    # Mid-burst it goes next; if the line was just handed over, it goes first in the next turn.
    assert bulk_between == []
    assert sim.collisions == 0
