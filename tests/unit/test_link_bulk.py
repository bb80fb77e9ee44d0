"""Bulk transfer, host and terminal state machines talking through msgpack (docs/protocol.md §5)."""

from __future__ import annotations

import random
from collections.abc import Callable

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from terminald.link.bulk import (
    BulkChunk,
    BulkDone,
    BulkError,
    BulkMessage,
    BulkMissing,
    BulkOffer,
    BulkReceiver,
    BulkResult,
    BulkSender,
    BulkState,
    BulkStatus,
    ChunkStoreError,
    InstallVerdict,
    bulk_from_wire,
    chunk_tag,
)
from terminald.link.bulk_ranges import MAX_RANGES
from tests.fuzzing import FUZZ
from tests.unit.link_bulk_support import Installer, MemoryStore, content, transfer_id

CHUNK = 256


def wire(message: BulkMessage) -> BulkMessage:
    return bulk_from_wire(msgpack.unpackb(msgpack.packb(message.to_wire())))


def run(
    sender: BulkSender,
    receiver: BulkReceiver,
    *,
    lose: Callable[[BulkMessage], bool] = lambda m: False,
    steps: int | None = None,
) -> list[BulkMessage]:
    """Pump messages both ways until the sender has nothing to send (or after ``steps``
    messages); returns what was sent."""
    sent: list[BulkMessage] = []
    for _ in range(steps or 100_000):
        message = sender.next_message()
        if message is None:
            return sent
        sent.append(message)
        if lose(message):
            continue
        assert isinstance(message, BulkOffer | BulkChunk | BulkStatus)
        for reply in receiver.on_message(wire(message), now=0.0):  # type: ignore[arg-type]
            assert isinstance(reply, BulkState | BulkMissing | BulkDone | BulkResult)
            sender.on_reply(wire(reply))  # type: ignore[arg-type]
    assert steps is not None, "no end"
    return sent


def chunks_in(sent: list[BulkMessage]) -> list[int]:
    return [m.index for m in sent if isinstance(m, BulkChunk)]


def pair(size: int, **receiver_options: object) -> tuple[BulkSender, BulkReceiver, MemoryStore]:
    store = MemoryStore()
    installer = receiver_options.pop("installer", Installer())
    receiver = BulkReceiver(store, installer, max_size=1 << 20, **receiver_options)  # type: ignore[arg-type]
    sender = BulkSender(content(size), "revocation", transfer_id(), chunk_size=CHUNK)
    return sender, receiver, store


def test_a_clean_transfer_installs_the_exact_bytes_once() -> None:
    installer = Installer()
    sender, receiver, _ = pair(10 * CHUNK + 17, installer=installer)
    sent = run(sender, receiver)
    assert sender.outcome is not None and sender.outcome.installed
    assert [(k, d) for k, _, d in installer.calls] == [("revocation", content(10 * CHUNK + 17))]
    assert chunks_in(sent) == list(range(11))  # each chunk once, the short last one included
    assert sender.progress.acknowledged == sender.progress.total == 10 * CHUNK + 17


def test_chunks_that_do_not_fit_are_refused_without_a_change() -> None:
    sender, receiver, store = pair(3 * CHUNK + 5)
    receiver.on_message(sender.next_message(), 0.0)  # type: ignore[arg-type]
    tag = chunk_tag(sender.offer.transfer_id)
    bad = [
        BulkChunk(tag, 3, b"x" * CHUNK),  # the last chunk is 5 bytes
        BulkChunk(tag, 0, b"x" * (CHUNK - 1)),
        BulkChunk(tag, 4, b"x" * 5),  # past the end
        BulkChunk(tag ^ 1, 0, b"x" * CHUNK),  # another transfer
    ]
    for chunk in bad:
        with pytest.raises(BulkError):
            receiver.on_message(chunk, 0.0)
    assert receiver.held is not None and receiver.held.held == 0 and store.writes == 0


def test_a_duplicate_chunk_is_not_written_again() -> None:
    sender, receiver, store = pair(3 * CHUNK)
    run(sender, receiver, steps=1)
    first = sender.next_message()
    assert isinstance(first, BulkChunk)
    assert receiver.on_message(first, 0.0) == []
    assert receiver.on_message(first, 0.0) == []
    assert store.writes == 1


@pytest.mark.parametrize("window", [1, 8, 32])
def test_a_line_cut_resends_only_what_was_lost_in_flight(window: int) -> None:
    sender, receiver, _ = pair(100 * CHUNK)
    delivered = 0
    lost: list[int] = []

    def cut(message: BulkMessage) -> bool:
        nonlocal delivered
        if isinstance(message, BulkChunk):
            if delivered >= 40:
                lost.append(message.index)
                return True
            delivered += 1
        return False

    run(sender, receiver, lose=cut, steps=40 + window + 2)  # the rest is in flight, then cut
    lost = lost[:window]
    sender.start()  # a new session: offer again
    sent = run(sender, receiver)
    assert sender.outcome is not None and sender.outcome.installed
    resent = chunks_in(sent)
    assert set(resent) == set(range(40, 100))
    assert len(resent) == 60  # the lost window and what had not been sent yet, each once


def test_a_restarted_terminal_resumes_from_what_it_had_made_durable() -> None:
    installer = Installer()
    sender, receiver, store = pair(50 * CHUNK, installer=installer)
    run(sender, receiver, steps=31)  # offer + 30 chunks
    receiver.on_message(BulkStatus(sender.offer.transfer_id), 0.0)  # syncs
    receiver.on_message(sender.next_message(), 0.0)  # type: ignore[arg-type]  # one more, unsynced
    # Restart: a new receiver over the same store forgets the unsynced chunk.
    receiver = BulkReceiver(store, installer, max_size=1 << 20)
    sender.start()
    sent = run(sender, receiver)
    assert sender.outcome is not None and sender.outcome.installed
    assert chunks_in(sent) == list(range(30, 50))
    assert installer.calls[0][2] == content(50 * CHUNK)


def test_a_status_to_a_terminal_that_forgot_makes_the_host_offer_again() -> None:
    installer = Installer()
    sender, receiver, store = pair(20 * CHUNK, installer=installer)
    run(sender, receiver, steps=11)
    receiver.on_message(BulkStatus(sender.offer.transfer_id), 0.0)
    # The terminal restarts mid-transfer; the host, unaware, asks for status.
    receiver = BulkReceiver(store, installer, max_size=1 << 20)
    reply = receiver.on_message(BulkStatus(sender.offer.transfer_id), 0.0)
    assert reply == [BulkState(sender.offer.transfer_id, False, reason="unknown-transfer")]
    sender.request_status()
    assert isinstance(sender.next_message(), BulkStatus)
    sender.on_reply(reply[0])  # type: ignore[arg-type]
    sent = run(sender, receiver)
    assert isinstance(sent[0], BulkOffer)
    assert sender.outcome is not None and sender.outcome.installed
    assert chunks_in(sent) == list(range(10, 20))


def test_a_restarted_host_with_a_new_id_resumes_the_same_content() -> None:
    sender, receiver, _ = pair(20 * CHUNK)
    run(sender, receiver, steps=11)
    again = BulkSender(content(20 * CHUNK), "revocation", transfer_id(), chunk_size=CHUNK)
    sent = run(again, receiver)
    assert again.outcome is not None and again.outcome.installed
    assert chunks_in(sent) == list(range(10, 20))


def test_random_cuts_never_resend_more_than_was_in_flight() -> None:
    rng = random.Random(7)
    for _ in range(20):
        sender, receiver, _ = pair(64 * CHUNK)
        in_flight_lost = 0
        total_chunks = 0
        while sender.outcome is None:
            window = rng.randint(1, 16)
            budget = rng.randint(1, 40)
            seen = 0

            def cut(message: BulkMessage, budget: int = budget) -> bool:
                nonlocal seen, in_flight_lost
                seen += 1
                if seen > budget:
                    in_flight_lost += isinstance(message, BulkChunk)
                    return True
                return False

            sent = run(sender, receiver, lose=cut, steps=budget + window)
            total_chunks += len(chunks_in(sent))
            sender.start()
        assert sender.outcome.installed
        assert total_chunks <= 64 + in_flight_lost


def test_a_sha_mismatch_discards_the_spool_and_the_host_sends_it_all_again() -> None:
    installer = Installer()
    sender, receiver, store = pair(8 * CHUNK, installer=installer)
    run(sender, receiver, steps=8)  # offer and 7 chunks
    entry = store.entries[sender.offer.sha256]
    entry.data[0] ^= 0xFF  # the disk lies about a chunk it claims
    sent = run(sender, receiver)
    assert store.discards >= 1
    assert chunks_in(sent) == [7, *range(8)]
    assert sender.outcome is not None and sender.outcome.installed
    assert len(installer.calls) == 1


def test_repeated_sha_mismatches_end_in_failure() -> None:
    sender, receiver, store = pair(4 * CHUNK)
    store.lie = True
    sent = run(sender, receiver)
    assert sender.outcome is not None and not sender.outcome.installed
    assert sender.outcome.reason == "sha-mismatch (3 times)"
    assert len(chunks_in(sent)) == 3 * 4  # the cap: three full attempts, no more
    assert store.discards == 3


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ("kind", "unknown-kind"),
        ("size", "too-big"),
        ("full", "no-space"),
    ],
)
def test_an_offer_is_refused_with_a_reason(change: str, reason: str) -> None:
    store = MemoryStore(full=change == "full")
    receiver = BulkReceiver(store, Installer(), max_size=4 * CHUNK, kinds=frozenset({"config"}))
    kind = "revocation" if change == "kind" else "config"
    size = 5 * CHUNK if change == "size" else 2 * CHUNK
    sender = BulkSender(content(size), kind, transfer_id(), chunk_size=CHUNK)
    run(sender, receiver)
    assert sender.outcome is not None and not sender.outcome.installed
    assert sender.outcome.reason == f"refused: {reason}"
    assert receiver.active is None


def test_an_install_in_progress_makes_a_terminal_busy_and_the_verdict_goes_back() -> None:
    installer = Installer(verdict=None)
    sender, receiver, _ = pair(4 * CHUNK, installer=installer)
    run(sender, receiver)
    assert sender.outcome is None and sender.progress.acknowledged == 4 * CHUNK
    other = BulkSender(content(100), "config", transfer_id(), chunk_size=CHUNK)
    run(other, receiver)
    assert other.outcome is not None and other.outcome.reason == "refused: busy"
    # A status meanwhile repeats the done; the verdict, when it comes, ends the transfer.
    assert receiver.on_message(BulkStatus(sender.offer.transfer_id), 0.0) == [
        BulkDone(sender.offer.transfer_id, "ok")
    ]
    result = receiver.finish_install(sender.offer.transfer_id, InstallVerdict(False, "older\n"))
    sender.on_reply(wire(result))  # type: ignore[arg-type]
    assert sender.outcome is not None and sender.outcome.reason == "older"
    with pytest.raises(BulkError):
        receiver.finish_install(sender.offer.transfer_id, InstallVerdict(True))


def test_a_store_failure_mid_transfer_is_reported_not_raised() -> None:
    sender, receiver, store = pair(4 * CHUNK)
    run(sender, receiver, steps=2)
    store.fail_writes = ChunkStoreError("disk gone")
    replies = receiver.on_message(sender.next_message(), 0.0)  # type: ignore[arg-type]
    assert replies == [BulkDone(sender.offer.transfer_id, "store-error")]
    assert receiver.active is None


def test_a_reply_for_another_transfer_or_out_of_turn_is_refused() -> None:
    sender, _, _ = pair(4 * CHUNK)
    with pytest.raises(BulkError):
        sender.on_reply(BulkDone(b"\1" * 8, "ok"))
    with pytest.raises(BulkError):
        sender.on_reply(BulkMissing(sender.offer.transfer_id, (), False, 0))
    assert isinstance(sender.next_message(), BulkOffer)


def test_a_terminal_refuses_a_host_message() -> None:
    _, receiver, _ = pair(CHUNK)
    with pytest.raises(BulkError):
        receiver.on_message(BulkDone(b"\1" * 8, "ok"), 0.0)  # type: ignore[arg-type]


def test_a_fragmented_bitmap_past_the_run_limit_still_completes() -> None:
    chunks, size = 4 * MAX_RANGES, 64
    data = content(chunks * size)
    store = MemoryStore()
    receiver = BulkReceiver(store, Installer(), max_size=1 << 20)
    sender = BulkSender(data, "revocation", transfer_id(), chunk_size=size)
    file = store.open(sender.offer.sha256, len(data), size, 0.0)
    for index in range(0, chunks, 2):  # every other chunk held: 2 × MAX_RANGES runs
        file.write(index, data[index * size : (index + 1) * size], 0.0)
    file.sync()
    sent = run(sender, receiver)
    assert sender.outcome is not None and sender.outcome.installed
    resent = chunks_in(sent)
    assert set(range(1, chunks, 2)) <= set(resent)
    # The state named only the first MAX_RANGES held runs: the rest was sent again, ignored.
    assert len(resent) == chunks // 2 + MAX_RANGES


ops = st.lists(
    st.one_of(
        st.tuples(st.just("offer"), st.integers(1, 3000), st.sampled_from([64, 100, 256])),
        st.tuples(st.just("chunk"), st.booleans(), st.integers(0, 60), st.integers(1, 300)),
        st.tuples(st.just("status"), st.booleans()),
    ),
    max_size=40,
)


def snapshot(receiver: BulkReceiver, store: MemoryStore) -> tuple[object, ...]:
    held = receiver.held.to_bytes() if receiver.held is not None else None
    return (receiver.active, held, store.writes, store.discards, len(store.entries))


@pytest.mark.fuzz
@FUZZ
@given(ops)
def test_fuzz_a_receiver_changes_nothing_on_what_it_refuses(
    steps: list[tuple[object, ...]],
) -> None:
    store = MemoryStore()
    receiver = BulkReceiver(store, Installer(), max_size=2048)
    ids = [bytes([n]) * 8 for n in range(3)]
    for n, step in enumerate(steps):
        offer = receiver.active
        message: BulkMessage
        if step[0] == "offer":
            size, chunk_size = int(step[1]), int(step[2])  # type: ignore[call-overload]
            message = BulkOffer(ids[n % 3], "config", size, chunk_size, bytes(32))
        elif step[0] == "chunk":
            tag = chunk_tag(offer.transfer_id) if offer and step[1] else 0x12345678
            message = BulkChunk(tag, int(step[2]), b"\xab" * int(step[3]))  # type: ignore[call-overload]
        else:
            x = offer.transfer_id if offer and step[1] else b"\xee" * 8
            message = BulkStatus(x)
        before = snapshot(receiver, store)
        try:
            replies = receiver.on_message(message, 0.0)  # type: ignore[arg-type]
        except BulkError:
            assert snapshot(receiver, store) == before
            continue
        for reply in replies:
            assert wire(reply) == reply


def test_a_restarted_host_learns_how_a_finished_transfer_ended_without_resending() -> None:
    installer = Installer(verdict=InstallVerdict(False, "not newer than the installed one"))
    sender, receiver, _ = pair(6 * CHUNK, installer=installer)
    run(sender, receiver)
    again = BulkSender(content(6 * CHUNK), "revocation", transfer_id(), chunk_size=CHUNK)
    sent = run(again, receiver)
    assert chunks_in(sent) == []
    assert again.outcome is not None
    assert again.outcome.reason == "not newer than the installed one"
    assert len(installer.calls) == 1


def test_progress_moves_with_transport_acknowledgements_and_status_replies() -> None:
    sender, receiver, _ = pair(4 * CHUNK + 10)
    run(sender, receiver, steps=1)
    assert sender.progress.acknowledged == 0 and sender.progress.total == 4 * CHUNK + 10
    for _ in range(5):
        message = sender.next_message()
        assert isinstance(message, BulkChunk)
        if message.index < 4:  # the short last chunk stays in flight
            receiver.on_message(message, 0.0)
            sender.delivered(message.index)
    assert sender.progress.acknowledged == 4 * CHUNK
    sender.delivered(99)  # out of range: ignored
    assert sender.progress.acknowledged == 4 * CHUNK


@pytest.mark.parametrize(
    ("transfer", "kind", "group_key", "chunk_size"),
    [
        (b"short", "config", None, 1024),
        (bytes(8), "", None, 1024),
        (bytes(8), "config", b"k" * 31, 1024),
        (bytes(8), "config", None, 63),
    ],
)
def test_a_sender_refuses_a_transfer_it_could_not_describe(
    transfer: bytes, kind: str, group_key: bytes | None, chunk_size: int
) -> None:
    with pytest.raises(BulkError):
        BulkSender(b"data", kind, transfer, chunk_size=chunk_size, group_key=group_key)
