"""The terminal's side of the policy traffic, without a line (terminald/daemon/
link_policy.py): waiting questions, late answers, the bound on questions, the callbacks."""

from __future__ import annotations

import logging
import threading
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from terminald.daemon.link_policy import (
    MAX_ASKS,
    AgeQuestions,
    PendingAsks,
    deliver,
    moment_of,
    unix_us,
)
from terminald.link import messages as m

TODAY = date(2026, 11, 30)


class Wire:
    """Records what ``AgeQuestions`` sends; ``up`` says whether a session takes it."""

    def __init__(self, up: bool = True) -> None:
        self.up = up
        self.sent: list[m.AgeQuery] = []
        self.sent_event = threading.Event()

    def send(self, data: bytes) -> bool:
        if not self.up:
            return False
        query = m.decode(data, m.Direction.TERMINAL_TO_HOST)
        assert isinstance(query, m.AgeQuery)
        self.sent.append(query)
        self.sent_event.set()
        return True


def questions(wire: Wire) -> tuple[AgeQuestions, dict[str, int]]:
    counters = dict(AgeQuestions.COUNTERS)
    return AgeQuestions(wire.send, counters), counters


def ask_in_thread(asker: AgeQuestions, timeout_s: float) -> tuple[threading.Thread, list[object]]:
    result: list[object] = []
    thread = threading.Thread(
        target=lambda: result.append(asker.ask(b"\x1a" * 20, 4660, 20, TODAY, timeout_s))
    )
    thread.start()
    return thread, result


def test_an_answer_with_the_question_id_ends_the_wait() -> None:
    wire = Wire()
    asker, counters = questions(wire)
    thread, result = ask_in_thread(asker, 30.0)
    assert wire.sent_event.wait(10)
    (query,) = wire.sent
    asker.settle(m.AgeReply(id=query.id + 1, certificate="valid", over=False))  # not its id
    asker.settle(m.AgeReply(id=query.id, certificate="valid", over=True))
    thread.join(10)
    assert result == [m.AgeAnswer("valid", True)]
    assert counters == {"age_asked": 1, "age_unanswered": 0, "age_late": 1, "age_busy": 0}
    assert asker.pending.waiting == 0


def test_no_session_is_none_and_nothing_waits() -> None:
    asker, counters = questions(Wire(up=False))
    assert asker.ask(b"\x1a", 1, 20, TODAY, 30.0) is None
    assert counters["age_asked"] == 0 and asker.pending.waiting == 0


def test_silence_is_none_and_the_late_answer_is_counted_and_dropped() -> None:
    wire = Wire()
    asker, counters = questions(wire)
    assert asker.ask(b"\x1a", 1, 20, TODAY, 0.05) is None
    asker.settle(m.AgeReply(id=wire.sent[0].id, certificate="valid", over=True))
    assert counters["age_unanswered"] == 1 and counters["age_late"] == 1
    assert asker.pending.waiting == 0


def test_at_most_max_asks_wait_and_the_next_is_refused_at_once() -> None:
    pending = PendingAsks()
    ids = [pending.open() for _ in range(MAX_ASKS)]
    assert None not in ids and len(set(ids)) == MAX_ASKS
    assert pending.open() is None
    pending.close(ids[0])  # type: ignore[arg-type]
    assert pending.open() is not None


def test_a_full_table_counts_busy_without_sending() -> None:
    wire = Wire()
    asker, counters = questions(wire)
    for _ in range(MAX_ASKS):
        asker.pending.open()
    assert asker.ask(b"\x1a", 1, 20, TODAY, 30.0) is None
    assert counters["age_busy"] == 1 and not wire.sent


def test_ids_wrap_past_u32_and_skip_one_still_waiting() -> None:
    pending = PendingAsks()
    pending._next = 0xFFFFFFFE
    first = pending.open()
    assert first == 0xFFFFFFFF
    assert pending.open() == 0  # wrapped
    pending._next = 0xFFFFFFFE
    assert pending.open() == 1  # 0xFFFFFFFF and 0 still wait


def test_a_sender_that_raises_gives_none_and_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    def broken(data: bytes) -> bool:
        raise RuntimeError("a bug")

    asker = AgeQuestions(broken, dict(AgeQuestions.COUNTERS))
    with caplog.at_level(logging.ERROR):
        assert asker.ask(b"\x1a", 1, 20, TODAY, 1.0) is None
    assert "link_age_failed" in caplog.text and asker.pending.waiting == 0


def test_presence_and_partners_reach_the_callbacks_as_aware_times() -> None:
    passages: list[tuple[str, str, datetime, str]] = []
    sightings: list[tuple[str, datetime]] = []

    def feed(message: m.PresenceRelay | m.Partners) -> None:
        deliver(message, now, lambda *a: passages.append(a), lambda *a: sightings.append(a))

    now = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
    at = unix_us(datetime(2026, 11, 30, 7, 59, 59, 1, tzinfo=UTC))
    feed(m.PresenceRelay(id=1, subject="E1", direction="exit", at=at, terminal="g2"))
    feed(m.Partners(id=2, seen=(("g1", 0.0), ("g2", 2.5))))
    assert passages == [("E1", "exit", datetime(2026, 11, 30, 7, 59, 59, 1, tzinfo=UTC), "g2")]
    assert sightings == [("g1", now), ("g2", now - timedelta(seconds=2.5))]


def test_a_callback_that_raises_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    def broken(*_: object) -> None:
        raise ValueError("policy bug")

    with caplog.at_level(logging.ERROR):
        deliver(m.Partners(id=2, seen=(("g1", 0.0),)), datetime.now(UTC), broken, broken)
    assert "link_policy_callback_failed" in caplog.text


def test_no_callbacks_set_is_fine() -> None:
    deliver(m.Partners(id=2, seen=(("g1", 0.0),)), datetime.now(UTC), None, None)


@given(st.integers(0, 253_402_300_799_999_999))
def test_unix_microseconds_round_trip_exactly(us: int) -> None:
    moment = moment_of(us)
    assert moment.tzinfo is UTC and unix_us(moment) == us


def test_a_flood_of_presence_is_bounded_by_the_node_and_delivered_without_a_queue() -> None:
    from types import SimpleNamespace

    from terminald.daemon.link_service import LinkService
    from terminald.link import keys
    from terminald.link.terminal_node import INBOX_MESSAGES
    from terminald.link.transport import Lane
    from tests.unit.test_link_nodes import TERMINAL, host, pump, terminal

    node = terminal()
    office = host({5: keys.public_of(TERMINAL)})
    office.connect(5, 0.0)
    now = pump(office, [node], 0.0)
    sent = 0
    for round_ in range(40):  # the service is not draining: the node's inbox fills
        for _ in range(100):
            at = unix_us(datetime(2026, 11, 30, tzinfo=UTC)) + sent
            msg = m.PresenceRelay(
                id=sent, subject=f"E{sent}", direction="entry", at=at, terminal="g2"
            )
            office.send(5, Lane.INTERACTIVE, m.encode(msg))
            sent += 1
        now = pump(office, [node], now + round_)
        assert len(node.inbox) <= INBOX_MESSAGES
    assert len(node.inbox) == INBOX_MESSAGES and node.stats.inbox_dropped > 0
    passages: list[str] = []
    port = SimpleNamespace(on_input=None, lock=threading.RLock(), wake=lambda: None)
    service = LinkService(node, port, None, None)  # type: ignore[arg-type]
    service.on_presence = lambda subject, *_: passages.append(subject)
    service._drain()
    assert len(passages) == INBOX_MESSAGES and not node.inbox
    assert passages[0] == "E0"  # the oldest first; what overflowed was dropped, not queued
