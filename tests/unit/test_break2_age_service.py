"""BREAK2: the back office's age service must not become a birth-date oracle.

Found: ``terminald host serve`` answered "is (issuer, serial) at least N on DATE?" for
any date the terminal put in the query. A terminal (or whoever holds its link key) could
bisect the date and learn a holder's exact birth date in ~16 questions, though only yes/no
for today was ever meant to leave the back office (issue 11: "never a birth date").
Now a date more than a day from the back office's own (UTC) date gets no yes/no.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from terminald.backoffice.age_book import AgeBook, Holder
from terminald.backoffice.host_serve import Server
from terminald.link import messages as m

KEY = bytes.fromhex("1a" * 20)
BORN = date(2006, 7, 15)
BOOK = AgeBook({(KEY, 42): Holder("valid", BORN)})


def bisect(ask: Any, today: date) -> int:
    """How many questions find the birth date when any date may be asked."""
    low, high, asked = today - timedelta(days=40_000), today, 0
    while (high - low).days > 1:
        mid = low + (high - low) / 2
        asked += 1
        if ask(mid) is True:
            high = mid
        else:
            low = mid
    return asked


def test_the_book_answers_only_around_today() -> None:
    today = date(2026, 11, 30)
    assert BOOK.answer(KEY, 42, 20, today, today=today).over is True
    assert BOOK.answer(KEY, 42, 20, today - timedelta(days=1), today=today).over is True
    assert BOOK.answer(KEY, 42, 20, today + timedelta(days=1), today=today).over is True
    far = BOOK.answer(KEY, 42, 20, date(2026, 7, 14), today=today)
    assert far.over is None and far.certificate == "valid"
    assert BOOK.answer(KEY, 42, 20, date(2026, 7, 14)).over is False  # no window: as before


class _Link:
    def __init__(self) -> None:
        self.sent: list[m.Message] = []

    def send(self, address: int, message: m.Message) -> None:
        self.sent.append(message)


def test_host_serve_gives_no_yes_no_for_another_day() -> None:
    link = _Link()
    server = Server(link, [1], ages=BOOK, partners={})  # type: ignore[arg-type]

    def ask(on: date) -> bool | None:
        server._on_request(1, m.AgeQuery(id=1, issuer=KEY, serial=42, age=20, date=on))
        reply = link.sent[-1]
        assert isinstance(reply, m.AgeReply)
        return reply.over

    today = datetime.now(UTC).date()
    assert ask(today) is True
    # The bisection learns nothing: every question far from today is answered "nil".
    answers = {ask(today - timedelta(days=d)) for d in (30, 3650, 7000, 7500)}
    assert answers == {None}
    assert bisect(ask, today) > 0 and ask(BORN.replace(year=BORN.year + 20)) is None
