"""Writing the source format (``enrolment/source.py``) back out, and the converter from the
old enrolled-cards file (``[[card]] issuer, serial, label``; store/enrolled.py).

``parse_source_text(render_source(content)) == content`` for every valid content. A TOML
writer is a dozen lines for this fixed shape, so no library is added for it; strings go
through ``json.dumps``, whose escapes (``\\"``, ``\\\\``, ``\\n``, ``\\uXXXX``) are
TOML's basic-string escapes too.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from terminald.core.access import EnrolledCard
from terminald.enrolment.model import (
    MAX_SUBJECT,
    MINUTES_PER_DAY,
    WEEKDAYS,
    Credential,
    EnrolmentContent,
    Period,
    Person,
)
from terminald.enrolment.source import DEFAULT_TIMEZONE


def _q(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _period(period: Period) -> str:
    end = period.end if period.end <= MINUTES_PER_DAY else period.end - MINUTES_PER_DAY
    if period.end == period.start + MINUTES_PER_DAY:
        end = period.start  # a whole day round: "08:00-08:00"
    return _q(f"{_hhmm(period.start)}-{_hhmm(end)}")


def _moment(moment: datetime, zone: ZoneInfo) -> str:
    return moment.astimezone(zone).isoformat()


def _person(person: Person, cards: list[Credential], zone: ZoneInfo) -> list[str]:
    lines = ["[[person]]", f"subject = {_q(person.subject)}"]
    if person.label:
        lines.append(f"label = {_q(person.label)}")
    if person.groups:
        lines.append(f"groups = [{', '.join(_q(g) for g in sorted(person.groups))}]")
    if person.schedule is not None:
        lines.append(f"schedule = {_q(person.schedule)}")
    if person.valid_from is not None:
        lines.append(f"valid_from = {_moment(person.valid_from, zone)}")
    if person.valid_until is not None:
        lines.append(f"valid_until = {_moment(person.valid_until, zone)}")
    shown = ", ".join(
        f"{{ issuer = {_q(c.issuer_key_id.hex())}, serial = {_serial(c.serial)} }}" for c in cards
    )
    lines.append(f"cards = [{shown}]")
    if person.ages:
        ages = ", ".join(f"{{ over = {a.age}, from = {a.since.isoformat()} }}" for a in person.ages)
        lines.append(f"ages = [{ages}]")
    return lines


def _serial(serial: int) -> str:
    return str(serial) if serial < 2**63 else _q(str(serial))  # TOML integers are 64-bit


def render_source(content: EnrolmentContent, timezone: str = DEFAULT_TIMEZONE) -> str:
    """The source document of ``content`` (people sorted by subject)."""
    zone = ZoneInfo(timezone)
    cards: dict[str, list[Credential]] = {}
    for key in sorted(content.credentials):
        credential = content.credentials[key]
        cards.setdefault(credential.subject, []).append(credential)
    out = ["# terminald enrolment source (docs/enrolment.md)", "", "[set]"]
    out.append(f"timezone = {_q(timezone)}")
    out += ["", "[calendar]"]
    if content.calendar.dates is None:
        out.append(f"country = {_q(content.calendar.country)}")
    else:
        out.append(f"dates = [{', '.join(d.isoformat() for d in sorted(content.calendar.dates))}]")
    for name, schedule in sorted(content.schedules.items()):
        out += ["", f"[schedule.{_q(name)}]"]
        for day, periods in zip(WEEKDAYS, schedule.days, strict=True):
            if periods:
                out.append(f"{day} = [{', '.join(_period(p) for p in periods)}]")
        out.append(f"holiday = [{', '.join(_period(p) for p in schedule.holiday)}]")
    for subject in sorted(content.people):
        out += ["", *_person(content.people[subject], cards.get(subject, []), zone)]
    return "\n".join(out) + "\n"


def content_from_enrolled(cards: Iterable[EnrolledCard], groups: Sequence[str]) -> EnrolmentContent:
    """The old enrolled list as enrolment content: each card one person, its subject the
    card's label (when unique and set) or ``issuer:serial``, in ``groups``."""
    cards = list(cards)
    labels = [c.label for c in cards if c.label]
    people: dict[str, Person] = {}
    credentials: dict[tuple[bytes, int], Credential] = {}
    for card in cards:
        subject = card.label if card.label and labels.count(card.label) == 1 else ""
        if not subject:
            subject = f"{card.issuer_key_id.hex()[:16]}:{card.serial}"[:MAX_SUBJECT]
        while subject in people:  # a truncated issuer:serial may repeat
            subject = f"{subject[: MAX_SUBJECT - 1]}+"
        people[subject] = Person(subject, card.label, frozenset(groups))
        credentials[card.key] = Credential(card.issuer_key_id, card.serial, subject)
    return EnrolmentContent(people, credentials)
