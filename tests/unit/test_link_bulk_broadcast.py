"""Broadcast chunks (sealing) and the broadcast plan: one line, many terminals, independent loss."""

from __future__ import annotations

import os
import random
from dataclasses import dataclass

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from terminald.link.broadcast import SEAL_OVERHEAD, open_chunk, seal_chunk
from terminald.link.bulk import (
    BroadcastPlan,
    BulkChunk,
    BulkError,
    BulkMessage,
    BulkOffer,
    BulkReceiver,
    bulk_from_wire,
)
from tests.fuzzing import FUZZ
from tests.unit.link_bulk_support import Installer, MemoryStore, content, transfer_id

KEY = bytes(range(32))
X = b"transfer"
HEADER = bytes([1, 0x7F, 2])


def test_a_sealed_chunk_opens_to_its_index_and_data() -> None:
    payload = seal_chunk(KEY, X, 5, HEADER, 77, b"hello" * 200)
    assert len(payload) == 1000 + SEAL_OVERHEAD == 1036
    assert open_chunk(KEY, X, HEADER, payload) == (77, b"hello" * 200)


@pytest.mark.parametrize("position", [0, 7, 8, 15, 16, 20, 30, -1])
def test_a_flipped_bit_anywhere_is_refused(position: int) -> None:
    payload = bytearray(seal_chunk(KEY, X, 5, HEADER, 77, b"data" * 10))
    payload[position] ^= 0x01
    with pytest.raises(BulkError):
        open_chunk(KEY, X, HEADER, bytes(payload))


def test_wrong_key_transfer_or_header_is_refused() -> None:
    payload = seal_chunk(KEY, X, 5, HEADER, 1, b"data")
    with pytest.raises(BulkError, match="authentication"):
        open_chunk(bytes(32), X, HEADER, payload)
    with pytest.raises(BulkError, match="transfer"):
        open_chunk(KEY, b"another!", HEADER, payload)
    with pytest.raises(BulkError, match="authentication"):
        open_chunk(KEY, X, bytes([1, 0x05, 2]), payload)  # sent to one terminal, not all
    with pytest.raises(BulkError, match="out of bounds"):
        open_chunk(KEY, X, HEADER, payload[:SEAL_OVERHEAD])


@pytest.mark.fuzz
@FUZZ
@given(st.binary(max_size=120), st.binary(min_size=3, max_size=3))
def test_fuzz_open_chunk_raises_only_bulk_error(payload: bytes, header: bytes) -> None:
    try:
        open_chunk(KEY, payload[:8], header, payload)
    except BulkError:
        return
    raise AssertionError("a forged chunk opened")


def offered_receiver(size: int = 4096) -> tuple[BulkReceiver, BulkOffer]:
    plan = BroadcastPlan(content(size), "config", transfer_id(), KEY, [1], HEADER, chunk_size=512)
    receiver = BulkReceiver(MemoryStore(), Installer(), max_size=1 << 20)
    offer = plan.next_unicast(1)
    assert isinstance(offer, BulkOffer)
    receiver.on_message(offer, 0.0)
    return receiver, offer


@pytest.mark.fuzz
@FUZZ
@given(st.binary(max_size=600))
def test_fuzz_a_receiver_keeps_its_state_on_forged_broadcasts(payload: bytes) -> None:
    receiver, offer = offered_receiver()
    before = receiver.held.to_bytes() if receiver.held else b""
    forged = offer.transfer_id + payload[8:]
    for candidate in (payload, forged):
        with pytest.raises(BulkError):
            receiver.on_broadcast(HEADER, candidate, 0.0)
    assert receiver.held is not None and receiver.held.to_bytes() == before


def test_a_receiver_without_a_group_key_refuses_broadcasts() -> None:
    receiver = BulkReceiver(MemoryStore(), Installer(), max_size=1 << 20)
    with pytest.raises(BulkError, match="no broadcast"):
        receiver.on_broadcast(HEADER, seal_chunk(KEY, X, 0, HEADER, 0, b"x"), 0.0)


# -- the plan on a simulated multi-drop line ----------------------------------------------


@dataclass
class Tally:
    broadcast: int = 0  # chunk frames on the BROADCAST channel
    unicast: int = 0  # chunk frames on sessions, retransmissions included
    control: int = 0  # offers, states, status requests, missing lists, done, result

    @property
    def chunk_frames(self) -> int:
        return self.broadcast + self.unicast

    @property
    def line_bytes(self) -> int:
        """An estimate of the bytes on the line for 1024-byte chunks: frame 3 + CRC 4 + COBS
        ≈ 5 + delimiter 1 on each; broadcast +36 (broadcast.py); unicast +12 chunk array +5
        transport + 24 session record; a control message ≈ 60 bytes of msgpack + 29 + 13."""
        return (
            self.broadcast * (1024 + 36 + 13)
            + self.unicast * (1024 + 41 + 13)
            + (self.control * (60 + 29 + 13))
        )


def wire(message: BulkMessage) -> BulkMessage:
    return bulk_from_wire(msgpack.unpackb(msgpack.packb(message.to_wire())))


def simulate(
    terminals: int, loss: float | list[float], seed: int, size: int = 200 * 1024
) -> tuple[Tally, BroadcastPlan, dict[int, Installer]]:
    """Every frame is lost for each terminal independently with its ``loss``; unicast
    frames are retransmitted until they arrive (what the reliable transport does)."""
    rng = random.Random(seed)
    losses = loss if isinstance(loss, list) else [loss] * terminals
    addresses = list(range(1, terminals + 1))
    data = content(size, seed)
    plan = BroadcastPlan(
        data, "revocation", transfer_id(), os.urandom(32), addresses, HEADER, chunk_size=1024
    )
    installers = {a: Installer() for a in addresses}
    receivers = {a: BulkReceiver(MemoryStore(), installers[a], max_size=1 << 24) for a in addresses}
    tally = Tally()

    def answer(address: int, replies: list[BulkMessage]) -> None:
        for reply in replies:
            tally.control += 1
            plan.on_reply(address, wire(reply))  # type: ignore[arg-type]

    for _ in range(10_000):
        if plan.finished:
            break
        for address in addresses:
            while (message := plan.next_unicast(address)) is not None:
                if isinstance(message, BulkChunk):
                    tally.unicast += 1
                    while rng.random() < losses[address - 1]:
                        tally.unicast += 1
                else:
                    tally.control += 1
                answer(address, receivers[address].on_message(wire(message), 0.0))  # type: ignore[arg-type]
        while (payload := plan.next_broadcast()) is not None:
            tally.broadcast += 1
            for address in addresses:
                if rng.random() >= losses[address - 1]:
                    answer(address, receivers[address].on_broadcast(HEADER, payload, 0.0))
    else:
        raise AssertionError("the plan did not finish")
    for address in addresses:
        assert installers[address].calls[0][2] == data
    return tally, plan, installers


@pytest.mark.parametrize("loss", [0.0, 0.01, 0.02])
def test_broadcast_to_eight_costs_little_more_than_to_one(loss: float) -> None:
    one, _, _ = simulate(1, loss, seed=3)
    eight, plan, _ = simulate(8, loss, seed=3)
    assert all(o is not None and o.installed for o in plan.outcomes.values())
    ratio = eight.chunk_frames / one.chunk_frames
    bytes_ratio = eight.line_bytes / one.line_bytes
    print(
        f"\nloss {loss:.0%}: one terminal {one.chunk_frames} chunk frames "
        f"({one.control} control), eight {eight.chunk_frames} ({eight.broadcast} broadcast, "
        f"{eight.unicast} unicast, {eight.control} control): ratio {ratio:.3f} in chunk "
        f"frames, {bytes_ratio:.3f} in estimated line bytes"
    )
    assert eight.broadcast >= 200  # every chunk went out once at least
    assert ratio <= 1.2 and bytes_ratio <= 1.2


def test_a_terminal_on_a_bad_line_is_finished_over_its_session() -> None:
    tally, plan, _ = simulate(4, [0.01, 0.01, 0.01, 0.6], seed=5, size=64 * 1024)
    assert all(o is not None and o.installed for o in plan.outcomes.values())
    assert tally.unicast > 0  # the rounds ran out: the rest went unicast
    assert tally.broadcast < 64 * 3 + 1  # at most three broadcast rounds


def test_a_refusing_or_lost_terminal_does_not_stop_the_others() -> None:
    data = content(8 * 1024)
    plan = BroadcastPlan(data, "revocation", transfer_id(), KEY, [1, 2, 3], HEADER, chunk_size=1024)
    small = BulkReceiver(MemoryStore(), Installer(), max_size=1024)
    good = BulkReceiver(MemoryStore(), Installer(), max_size=1 << 20)
    for address, receiver in ((1, small), (2, good)):
        offer = plan.next_unicast(address)
        for reply in receiver.on_message(offer, 0.0):  # type: ignore[arg-type]
            plan.on_reply(address, reply)  # type: ignore[arg-type]
    assert plan.next_unicast(3) is not None  # offered, never answers
    assert plan.next_broadcast() is None  # terminal 3 still owes its answer
    plan.lost(3, "no answer")
    frames = 0
    while (payload := plan.next_broadcast()) is not None:
        frames += 1
        for reply in good.on_broadcast(HEADER, payload, 0.0):
            plan.on_reply(2, reply)  # type: ignore[arg-type]
    outcomes = plan.outcomes
    assert frames == 8
    assert outcomes[1] is not None and outcomes[1].reason == "refused: too-big"
    assert outcomes[2] is not None and outcomes[2].installed
    assert outcomes[3] is not None and outcomes[3].reason == "no answer"
    assert plan.finished
    assert plan.progress.acknowledged == 8 * 1024


def test_a_plan_refuses_bad_addresses() -> None:
    for addresses in ([], [1, 1], [0x7F]):
        with pytest.raises(BulkError):
            BroadcastPlan(b"x", "config", X, KEY, addresses, HEADER)


def test_plan_progress_counts_what_was_broadcast_and_what_terminals_hold() -> None:
    data = content(3 * 1024 + 1)
    plan = BroadcastPlan(data, "config", transfer_id(), KEY, [1, 2], HEADER, chunk_size=1024)
    receivers = {a: BulkReceiver(MemoryStore(), Installer(), max_size=1 << 20) for a in (1, 2)}
    for address, receiver in receivers.items():
        for reply in receiver.on_message(plan.next_unicast(address), 0.0):  # type: ignore[arg-type]
            plan.on_reply(address, reply)  # type: ignore[arg-type]
    assert plan.progress.broadcast == 0 and plan.progress.total == 2 * len(data)
    for _ in range(4):
        payload = plan.next_broadcast()
        assert payload is not None
        if plan.progress.broadcast < len(data):
            receivers[1].on_broadcast(HEADER, payload, 0.0)  # terminal 2 hears nothing
    assert plan.progress.broadcast == len(data)
    assert plan.next_broadcast() is None  # the round ends: each terminal is asked
    for address, receiver in receivers.items():
        status = plan.next_unicast(address)
        for reply in receiver.on_message(status, 0.0):  # type: ignore[arg-type]
            plan.on_reply(address, reply)  # type: ignore[arg-type]
    per = plan.progress.per_terminal
    assert per[1].acknowledged == 3 * 1024 and per[2].acknowledged == 0


def test_a_slow_installer_does_not_hold_up_the_next_round_for_others() -> None:
    data = content(2 * 1024)
    plan = BroadcastPlan(data, "config", transfer_id(), KEY, [1, 2], HEADER, chunk_size=1024)
    slow = BulkReceiver(MemoryStore(), Installer(verdict=None), max_size=1 << 20)
    deaf = BulkReceiver(MemoryStore(), Installer(), max_size=1 << 20)
    receivers = {1: slow, 2: deaf}

    def answer(address: int, replies: list[BulkMessage]) -> None:
        for reply in replies:
            plan.on_reply(address, reply)  # type: ignore[arg-type]

    for address, receiver in receivers.items():
        answer(address, receiver.on_message(plan.next_unicast(address), 0.0))  # type: ignore[arg-type]
    while (payload := plan.next_broadcast()) is not None:
        answer(1, slow.on_broadcast(HEADER, payload, 0.0))  # terminal 2 hears nothing
    answer(2, deaf.on_message(plan.next_unicast(2), 0.0))  # type: ignore[arg-type]
    assert plan.next_unicast(1) is None  # terminal 1 is installing, nothing to ask
    assert plan.next_broadcast() is not None  # round 2 starts for terminal 2 all the same
