"""The back office running a line (``terminald host serve``): it keeps a session with every
terminal, answers their age questions from an :class:`AgeBook`, relays each anti-passback
passage to the partner terminal, and tells each terminal how long ago its partner was
last heard.

- ``age.query`` is answered on the port's reader thread as it arrives (the terminal waits
  a second or two with a card on the reader): from the book, or "unknown"/nil without one.
- An ``event`` whose row is a grant with the attribute ``passback`` = entry|exit and a
  subject is relayed as ``presence`` to the partner of the terminal that sent it
  (``partners``: entry id → exit id, either way round). Terminal ids are the ones each
  terminal proved in its handshake. A passage made while the line was down is not
  relayed later (events are not kept for a session that is not up); the partner's
  heartbeat then grows old and the terminal applies its ``when_unreachable`` rule.
- Every ``heartbeat_s``, and as soon as its session is up, each terminal gets
  ``partners``: the seconds since the back office last heard its partner (a partner never
  heard, or none, is left out: an empty map). Sending it also keeps each session heard
  (the terminal acknowledges it) and gives a terminal its first record of a new session,
  which is when its end starts sending (it cannot ask its age questions before).
- Optionally every ``pull_every_s`` the audit trail is pulled and acknowledged
  (:func:`host_ops.pull_audit`), the rows handed to ``on_rows``.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Final

from terminald.backoffice.age_book import UNKNOWN, AgeBook
from terminald.backoffice.host_link import HostError, HostLink
from terminald.backoffice.host_ops import pull_audit
from terminald.link import messages as m
from terminald.link.messages_policy import DIRECTIONS, MAX_SEEN_S

logger = logging.getLogger("terminald.host")

TICK_S: Final = 0.1
EVENTS_QUEUED: Final = 4096  # events waiting for the relay; more are counted and dropped
EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass
class ServeStats:
    ages_answered: int = 0
    presence_relayed: int = 0
    presence_undeliverable: int = 0  # the partner is unknown, has no session, or refused
    heartbeats: int = 0
    events: int = 0
    events_dropped: int = 0
    rows_pulled: int = 0
    problems: list[str] = field(default_factory=list)  # the newest few, for the CLI


def presence_of(row: m.AuditRow, source: str) -> m.PresenceRelay | None:
    """The ``presence`` a grant row makes (None for any other row). ``source``: the id of
    the terminal that sent it, as its handshake proved."""
    direction = dict(row.attrs).get("passback")
    if row.kind != "granted" or direction not in DIRECTIONS or not row.subject:
        return None
    at = datetime.fromisoformat(row.at)
    return m.PresenceRelay(
        id=0,
        subject=row.subject,
        direction=direction,
        at=max(0, (at - EPOCH) // timedelta(microseconds=1)),
        terminal=source,
    )


def today_utc() -> date:
    """The back office's own date (UTC), which an age question's date must be near."""
    return datetime.now(UTC).date()


class Server:
    """One line's serving loop; ``run`` until ``stop`` is set. Not reusable."""

    def __init__(
        self,
        link: HostLink,
        addresses: list[int],
        *,
        ages: AgeBook | None,
        partners: dict[str, str],
        heartbeat_s: float = 10.0,
        pull_every_s: float | None = None,
        on_event: Callable[[int, m.Event], None] | None = None,
        on_rows: Callable[[int, list[m.AuditRow]], None] | None = None,
        on_answer: Callable[[int, m.AgeQuery, m.AgeAnswer], None] | None = None,
    ) -> None:
        self.link = link
        self.addresses = list(addresses)
        self.ages = ages
        self.heartbeat_s = heartbeat_s
        self.pull_every_s = pull_every_s
        self.on_event = on_event
        self.on_rows = on_rows
        self.on_answer = on_answer
        self.stats = ServeStats()
        self._partner: dict[str, str] = {}
        for entry, exit_ in partners.items():
            self._partner[entry] = exit_
            self._partner[exit_] = entry
        self._events: deque[tuple[int, m.Event]] = deque()
        self._wake = threading.Event()
        self._ids = 0
        self._cursors = dict.fromkeys(self.addresses, 0)
        self._greeted: dict[int, int] = {}  # address → the session count last greeted

    # -- the reader thread ---------------------------------------------------------------

    def _on_request(self, address: int, message: m.Message) -> None:
        if not isinstance(message, m.AgeQuery):
            return  # no other terminal request exists
        answer = UNKNOWN
        if self.ages is not None:
            # Only about today (the back office's clock): no date bisection (age_book.py).
            today = today_utc()
            answer = self.ages.answer(
                message.issuer, message.serial, message.age, message.date, today=today
            )
        reply = m.AgeReply(id=message.id, certificate=answer.certificate, over=answer.over)
        try:
            self.link.send(address, reply)
        except HostError as exc:
            self._problem(f"age.answer to {address}: {exc}")
            return
        self.stats.ages_answered += 1
        if self.on_answer is not None:
            try:
                self.on_answer(address, message, answer)
            except Exception:
                logger.exception("event=host_serve_callback_failed")

    def _on_event(self, address: int, event: m.Event) -> None:
        self.stats.events += 1
        if len(self._events) >= EVENTS_QUEUED:
            self.stats.events_dropped += 1
            return
        self._events.append((address, event))
        self._wake.set()

    # -- the serving thread --------------------------------------------------------------

    def run(self, stop: threading.Event) -> ServeStats:
        self.link.on_request = self._on_request
        self.link.on_event = self._on_event
        try:
            if not self.link.port.wait_open(5.0):
                raise HostError(f"serial port: {self.link.port.problem or 'did not open'}")
            next_beat = next_pull = time.monotonic()
            while not stop.is_set():
                now = time.monotonic()
                self._keep_sessions(now)
                self._relay()
                if now >= next_beat:
                    self._heartbeat(now)
                    next_beat = now + self.heartbeat_s
                if self.pull_every_s is not None and now >= next_pull:
                    self._pull()
                    next_pull = time.monotonic() + self.pull_every_s
                self._wake.wait(TICK_S)
                self._wake.clear()
        finally:
            self.link.on_request = None
            self.link.on_event = None
        return self.stats

    def _keep_sessions(self, now: float) -> None:
        fresh: list[int] = []
        with self.link.port.lock:
            for address in self.addresses:
                peer = self.link.node.peers[address]
                if peer.transport is None and not peer.wanted:
                    self.link.node.connect(address, now)
                elif peer.transport is not None and self._greeted.get(address) != peer.sessions:
                    self._greeted[address] = peer.sessions
                    fresh.append(address)
        self.link.port.wake()
        for address in fresh:
            self._beat(address, now)

    def _terminal_id(self, address: int) -> str | None:
        with self.link.port.lock:
            return self.link.node.peers[address].terminal_id

    def _address_of(self, terminal_id: str) -> int | None:
        with self.link.port.lock:
            for address in self.addresses:
                if self.link.node.peers[address].terminal_id == terminal_id:
                    return address
        return None

    def _next_id(self) -> int:
        self._ids = (self._ids + 1) & 0xFFFFFFFF
        return self._ids

    def _relay(self) -> None:
        while self._events:
            address, event = self._events.popleft()
            if self.on_event is not None:
                try:
                    self.on_event(address, event)
                except Exception:  # the caller's printer: never the relay
                    logger.exception("event=host_serve_callback_failed")
            source = self._terminal_id(address) or event.row.terminal
            presence = presence_of(event.row, source)
            if presence is None:
                continue
            partner = self._partner.get(source)
            target = None if partner is None else self._address_of(partner)
            if target is None:
                self.stats.presence_undeliverable += 1
                self._problem(f"presence from {source}: no partner terminal with a session")
                continue
            try:
                self.link.send(target, replace(presence, id=self._next_id()))
            except HostError as exc:
                self.stats.presence_undeliverable += 1
                self._problem(f"presence to {partner}: {exc}")
                continue
            self.stats.presence_relayed += 1

    def _heartbeat(self, now: float) -> None:
        for address in self.addresses:
            if self.link.node.session_up(address):
                self._beat(address, now)

    def _beat(self, address: int, now: float) -> None:
        own = self._terminal_id(address)
        partner = None if own is None else self._partner.get(own)
        seen: tuple[tuple[str, float], ...] = ()
        if partner is not None:
            partner_address = self._address_of(partner)
            if partner_address is not None:
                with self.link.port.lock:
                    heard = self.link.node.peers[partner_address].heard
                if math.isfinite(heard):
                    seen = ((partner, min(max(0.0, now - heard), MAX_SEEN_S)),)
        try:
            self.link.send(address, m.Partners(id=self._next_id(), seen=seen))
        except HostError as exc:
            self._problem(f"partners to {own or address}: {exc}")
            return
        self.stats.heartbeats += 1

    def _pull(self) -> None:
        for address in self.addresses:
            if not self.link.node.session_up(address):
                continue
            try:
                pulled = pull_audit(self.link, address, self._cursors[address], ack=True)
            except HostError as exc:
                self._problem(f"audit pull from {address}: {exc}")
                continue
            self._cursors[address] = pulled.cursor
            self.stats.rows_pulled += len(pulled.rows)
            if self.on_rows is not None and pulled.rows:
                try:
                    self.on_rows(address, pulled.rows)
                except Exception:
                    logger.exception("event=host_serve_callback_failed")

    def _problem(self, text: str) -> None:
        logger.info("event=host_serve_problem problem=%r", text)
        self.stats.problems = [*self.stats.problems[-9:], text]


def serve(
    link: HostLink,
    addresses: list[int],
    *,
    ages: AgeBook | None,
    partners: dict[str, str],
    stop: threading.Event,
    heartbeat_s: float = 10.0,
    pull_every_s: float | None = None,
    on_event: Callable[[int, m.Event], None] | None = None,
    on_rows: Callable[[int, list[m.AuditRow]], None] | None = None,
    on_answer: Callable[[int, m.AgeQuery, m.AgeAnswer], None] | None = None,
) -> ServeStats:
    """Serve the terminals at ``addresses`` on ``link`` until ``stop`` is set (module
    docstring). ``partners``: entry terminal id → exit terminal id. HostError when the
    port does not open; every later problem is logged and counted, never raised."""
    server = Server(
        link,
        addresses,
        ages=ages,
        partners=partners,
        heartbeat_s=heartbeat_s,
        pull_every_s=pull_every_s,
        on_event=on_event,
        on_rows=on_rows,
        on_answer=on_answer,
    )
    return server.run(stop)
