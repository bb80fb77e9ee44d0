"""The policy's link traffic through the real stack (terminald.sim.link_bench): the
terminal's LinkService and the back office's HostLink on a throttled pty line (or a
simulated RS-485 pair for two terminals), Noise sessions, the transport.

Age questions asked on the terminal (as the card worker would) and answered by the back
office's ``serve`` from an age book; presence relayed from one terminal's grant event to
its partner; the partners heartbeat delivered as a time."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import partial

import pytest

from terminald.backoffice import host_serve
from terminald.backoffice.age_book import AgeBook
from terminald.backoffice.host_link import HostLink
from terminald.backoffice.host_serve import ServeStats, serve
from terminald.daemon.link_service import LinkService
from terminald.link import messages as m
from terminald.sim.link_bench import Setup, linked
from terminald.store.audit import AuditEntry

ISSUER = bytes.fromhex("1a" * 20)
ADULT, MINOR, REVOKED = 4660, 4661, 4662
TODAY = date(2026, 11, 30)
BOOK = AgeBook.from_document(
    {
        "holder": [
            {"issuer": ISSUER.hex(), "serial": ADULT, "birth_date": date(2006, 11, 30)},
            {"issuer": ISSUER.hex(), "serial": MINOR, "birth_date": date(2006, 12, 1)},
            {"issuer": ISSUER.hex(), "serial": REVOKED, "certificate": "invalid"},
        ]
    }
)


@pytest.fixture(autouse=True)
def back_office_today(monkeypatch: pytest.MonkeyPatch) -> None:
    """host serve answers yes/no only about its own date (+-1 day): pin it (BREAK2)."""
    monkeypatch.setattr(host_serve, "today_utc", lambda: TODAY)


def wait_for(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.01)


def service_of(setup: Setup, index: int = 0) -> LinkService:
    service = setup.terminals[index].service
    assert service is not None
    return service


@contextmanager
def serving(setup: Setup, **kwargs: object) -> Iterator[list[ServeStats]]:
    """``serve`` on its own thread for the test's duration, once every terminal has its
    session; the list holds serve's stats once it stopped."""
    stop = threading.Event()
    addresses = [t.address for t in setup.terminals]
    holder: list[ServeStats] = []
    thread = threading.Thread(
        target=lambda: holder.append(serve(setup.host, addresses, stop=stop, **kwargs)),  # type: ignore[arg-type]
        name="serve",
    )
    thread.start()
    try:
        for terminal in setup.terminals:
            service = terminal.service
            assert service is not None
            wait_for(partial(setup.host.node.session_up, terminal.address))
            wait_for(partial(getattr, service.node, "session_up"))  # the greeting arrived
        yield holder
    finally:
        stop.set()
        thread.join(10)
        assert not thread.is_alive()


def test_age_questions_are_answered_from_the_back_office_book() -> None:
    with linked() as setup, serving(setup, ages=BOOK, partners={}):
        service = service_of(setup)
        ask = service.ask_age
        assert ask(ISSUER, ADULT, 20, TODAY, 10.0) == m.AgeAnswer("valid", True)
        assert ask(ISSUER, MINOR, 20, TODAY, 10.0) == m.AgeAnswer("valid", False)
        assert ask(ISSUER, MINOR, 20, date(2026, 12, 1), 10.0) == m.AgeAnswer("valid", True)
        assert ask(ISSUER, REVOKED, 20, TODAY, 10.0) == m.AgeAnswer("invalid", None)
        assert ask(ISSUER, 99, 20, TODAY, 10.0) == m.AgeAnswer("unknown", None)
        assert ask(bytes(20), ADULT, 20, TODAY, 10.0) == m.AgeAnswer("unknown", None)
        assert service.counters["age_asked"] == 6 and service.counters["age_unanswered"] == 0


def test_without_a_book_every_answer_is_unknown() -> None:
    with linked() as setup, serving(setup, ages=None, partners={}):
        assert service_of(setup).ask_age(ISSUER, ADULT, 20, TODAY, 10.0) == m.AgeAnswer(
            "unknown", None
        )


def test_no_session_gives_none_without_sending() -> None:
    with linked() as setup:  # the host never connects
        service = service_of(setup)
        assert service.ask_age(ISSUER, ADULT, 20, TODAY, 30.0) is None
        assert service.counters["age_asked"] == 0


def test_an_age_out_of_range_gives_none_and_sends_nothing() -> None:
    with linked() as setup, serving(setup, ages=BOOK, partners={}):
        service = service_of(setup)
        assert service.ask_age(ISSUER, ADULT, 0, TODAY, 5.0) is None
        assert service.ask_age(ISSUER, ADULT, 151, TODAY, 5.0) is None
        assert service.ask_age(ISSUER, -1, 20, TODAY, 5.0) is None
        assert service.counters["age_asked"] == 0


def greet(setup: Setup) -> None:
    """A session with terminal 1, and a first record so its end of it is up too."""
    setup.host.open_session(1)
    setup.host.send(1, m.Partners(id=1, seen=()))
    wait_for(lambda: service_of(setup).node.session_up)


@dataclass
class Held:
    """A back office that holds each question until told to answer it."""

    host: HostLink
    questions: list[tuple[int, m.AgeQuery]]

    def answer_all(self, certificate: str, over: bool | None) -> None:
        for address, query in self.questions:
            self.host.send(address, m.AgeReply(id=query.id, certificate=certificate, over=over))
        self.questions.clear()


def test_silence_gives_none_and_a_late_answer_is_dropped() -> None:
    with linked() as setup:
        host = setup.host
        held = Held(host, [])
        host.on_request = lambda address, query: held.questions.append((address, query))  # type: ignore[arg-type]
        greet(setup)
        service = service_of(setup)
        assert service.ask_age(ISSUER, ADULT, 20, TODAY, 0.5) is None
        assert service.counters["age_unanswered"] == 1
        wait_for(lambda: len(held.questions) == 1)
        held.answer_all("valid", True)  # too late
        wait_for(lambda: service.counters["age_late"] == 1)
        # The next question gets its own answer, not the late one.
        result: list[m.AgeAnswer | None] = []
        asking = threading.Thread(
            target=lambda: result.append(service.ask_age(ISSUER, MINOR, 20, TODAY, 20.0))
        )
        asking.start()
        wait_for(lambda: len(held.questions) == 1)
        held.answer_all("valid", False)
        asking.join(30)
        assert result == [m.AgeAnswer("valid", False)]


def test_the_query_carries_only_issuer_serial_age_and_date() -> None:
    with linked() as setup:
        host = setup.host
        seen: list[m.Message] = []
        host.on_request = lambda address, query: seen.append(query)
        greet(setup)
        service_of(setup).ask_age(ISSUER, 2**159 + 1, 20, TODAY, 0.5)
        wait_for(lambda: bool(seen))
        (query,) = seen
        assert query == m.AgeQuery(
            id=query.id, issuer=ISSUER, serial=2**159 + 1, age=20, date=TODAY
        )
        assert set(m.AgeQuery.SPEC) == {"issuer", "serial", "age", "date"}


@dataclass(frozen=True)
class Entry(AuditEntry):
    """An audit entry with the policy's fields (AuditEntry gains them in issue 11)."""

    subject: str | None = None
    attrs: tuple[tuple[str, str], ...] = ()


def grant(subject: str, direction: str, seq: int, kind: str = "granted") -> tuple[int, Entry]:
    at = datetime(2026, 11, 30, 8, 0, 0, 123456, tzinfo=UTC)
    attrs = (("passback", direction),) if direction else ()
    return seq, Entry(at, "bench-1", kind, subject=subject, attrs=attrs)


def test_presence_is_relayed_to_the_partner_and_heartbeats_say_when_it_was_heard() -> None:
    with linked(2, bus=True) as setup:
        entry, exit_ = service_of(setup, 0), service_of(setup, 1)
        passages: list[tuple[str, str, datetime, str]] = []
        exit_.on_presence = lambda *args: passages.append(args)
        sightings: list[tuple[str, datetime]] = []
        entry.on_partner_seen = lambda *args: sightings.append(args)
        partners = {"bench-1": "bench-2"}
        with serving(setup, ages=None, partners=partners, heartbeat_s=0.2) as stats:
            wait_for(lambda: all(p.terminal_id for p in setup.host.node.peers.values()))
            entry.offer_rows(
                [
                    grant("E1", "entry", 1, kind="refused"),  # a refusal: no passage
                    grant("E2", "", 2),  # no passback attribute: no passage
                    grant("E3", "entry", 3),
                ]
            )
            wait_for(lambda: bool(passages))
            wait_for(lambda: bool(sightings))
        assert stats[0].presence_relayed == 1 and stats[0].heartbeats >= 2
        assert passages == [
            ("E3", "entry", datetime(2026, 11, 30, 8, 0, 0, 123456, UTC), "bench-1")
        ]
        terminal, heard = sightings[0]
        assert terminal == "bench-2" and heard.tzinfo is not None
        assert heard <= datetime.now(UTC)


def test_a_refused_audit_pull_is_a_problem_named_not_the_end_of_serving() -> None:
    with linked() as setup:  # a bench terminal has no daemon: it refuses the pull's hello
        with serving(setup, ages=BOOK, partners={}, pull_every_s=0.2) as stats:
            service = service_of(setup)
            first = service.ask_age(ISSUER, ADULT, 20, TODAY, 10.0)
            time.sleep(0.5)  # a few pulls refused meanwhile
            second = service.ask_age(ISSUER, MINOR, 20, TODAY, 10.0)
        assert (first, second) == (m.AgeAnswer("valid", True), m.AgeAnswer("valid", False))
        assert any(p.startswith("audit pull from 1: ") for p in stats[0].problems)
        assert stats[0].rows_pulled == 0
