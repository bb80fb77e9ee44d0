"""The terminal's policy traffic on the link: age questions waiting for their answers,
and the back office's presence and partner heartbeats handed to the policy's callbacks.

An age question is asked from the card worker thread (``LinkService.ask_age``) and
answered on the link's worker thread, which settles the waiting slot here. At most
``MAX_ASKS`` questions wait at once (a card is tapped at one reader at a time; a few is
room for a retry); an answer that arrives after its wait ended finds no slot and is
dropped. Presence and heartbeats are delivered as they are read from the node's inbox
(itself bounded), so a flood costs time, never memory.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Final

from terminald.link import messages as m

logger = logging.getLogger("terminald.link")

MAX_ASKS: Final = 4
MAX_WAIT_S: Final = 30.0  # a question longer than this is a caller's mistake
EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)

PresenceHandler = Callable[[str, str, datetime, str], None]
PartnerHandler = Callable[[str, datetime], None]


@dataclass
class _Slot:
    done: threading.Event = field(default_factory=threading.Event)
    answer: m.AgeAnswer | None = None


class PendingAsks:
    """Age questions waiting for an answer, by message id. Thread-safe."""

    def __init__(self, limit: int = MAX_ASKS) -> None:
        self._limit = limit
        self._lock = threading.Lock()
        self._slots: dict[int, _Slot] = {}
        self._next = 0

    def open(self) -> int | None:
        """A fresh id with a slot waiting on it; None when ``limit`` are already waiting."""
        with self._lock:
            if len(self._slots) >= self._limit:
                return None
            while True:  # u32 ids; skip one still waiting after a wrap (never in practice)
                self._next = (self._next + 1) & 0xFFFFFFFF
                if self._next not in self._slots:
                    break
            self._slots[self._next] = _Slot()
            return self._next

    def settle(self, msg_id: int, answer: m.AgeAnswer) -> bool:
        """Hand ``answer`` to the question ``msg_id``; False when none waits (late)."""
        with self._lock:
            slot = self._slots.get(msg_id)
            if slot is None or slot.done.is_set():
                return False
            slot.answer = answer
            slot.done.set()
            return True

    def wait(self, msg_id: int, timeout_s: float) -> m.AgeAnswer | None:
        """The answer to ``msg_id`` within ``timeout_s`` seconds, else None; the slot is
        closed either way, so a later answer is dropped."""
        with self._lock:
            slot = self._slots.get(msg_id)
        try:
            if slot is None or not slot.done.wait(max(0.0, min(timeout_s, MAX_WAIT_S))):
                return None
            return slot.answer
        finally:
            self.close(msg_id)

    def close(self, msg_id: int) -> None:
        with self._lock:
            self._slots.pop(msg_id, None)

    @property
    def waiting(self) -> int:
        with self._lock:
            return len(self._slots)


class AgeQuestions:
    """``LinkService.ask_age`` and the answers' delivery. ``send`` queues an encoded
    ``age.query`` on the interactive lane and says whether a session took it."""

    COUNTERS: Final = {"age_asked": 0, "age_unanswered": 0, "age_late": 0, "age_busy": 0}

    def __init__(self, send: Callable[[bytes], bool], counters: dict[str, int]) -> None:
        self._send = send
        self._counters = counters
        self.pending = PendingAsks()

    def ask(
        self, issuer: bytes, serial: int, age: int, today: date, timeout_s: float
    ) -> m.AgeAnswer | None:
        try:
            return self._ask(issuer, serial, age, today, timeout_s)
        except Exception:  # a bug must not fail a tap: no answer, logged
            logger.exception("event=link_age_failed")
            return None

    def _ask(
        self, issuer: bytes, serial: int, age: int, today: date, timeout_s: float
    ) -> m.AgeAnswer | None:
        msg_id = self.pending.open()
        if msg_id is None:
            self._counters["age_busy"] += 1
            return None
        try:
            query = m.AgeQuery(id=msg_id, issuer=issuer, serial=serial, age=age, date=today)
            try:
                data = m.encode(query)
            except m.MessageError as exc:
                logger.warning("event=link_age_unencodable problem=%r", exc.reason)
                return None
            if not self._send(data):
                return None  # no session
            self._counters["age_asked"] += 1
            answer = self.pending.wait(msg_id, timeout_s)
        finally:
            self.pending.close(msg_id)
        if answer is None:
            self._counters["age_unanswered"] += 1
        return answer

    def settle(self, reply: m.AgeReply) -> None:
        if not self.pending.settle(reply.id, reply.answer()):
            self._counters["age_late"] += 1  # its question gave up waiting: dropped


def moment_of(unix_us: int) -> datetime:
    """Unix microseconds as an aware UTC datetime (exact: no float on the way)."""
    return EPOCH + timedelta(microseconds=unix_us)


def unix_us(moment: datetime) -> int:
    """An aware datetime as Unix microseconds (exact)."""
    return (moment - EPOCH) // timedelta(microseconds=1)


def deliver(
    message: m.PresenceRelay | m.Partners,
    now: datetime,
    on_presence: PresenceHandler | None,
    on_partner_seen: PartnerHandler | None,
) -> None:
    """Hand the back office's policy event to the callbacks the runtime set (the lead
    connects them to ``core.policy.Presence``), on the link's worker thread. ``now``: the
    terminal's wall clock (aware), to turn "seconds ago" into a time. A callback's
    exception is logged, never raised: the link must keep running."""
    try:
        if isinstance(message, m.PresenceRelay):
            if on_presence is not None:
                at = moment_of(message.at)
                on_presence(message.subject, message.direction, at, message.terminal)
        elif on_partner_seen is not None:
            for terminal, seconds in message.seen:
                on_partner_seen(terminal, now - timedelta(seconds=seconds))
    except Exception:
        logger.exception("event=link_policy_callback_failed type=%s", message.TYPE)
