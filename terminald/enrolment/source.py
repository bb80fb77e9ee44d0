"""The enrolment source: the TOML a back office or an operator writes (docs/enrolment.md).

::

    [[person]]
    subject = "E1001"                 # required, 1-64 printable characters
    label = "Sato Hanako"             # optional
    groups = ["office", "lab"]
    schedule = "office-hours"         # optional; names a [schedule.X]
    valid_from = 2026-04-01           # a date (local midnight) or a datetime
    valid_until = 2027-04-01          # exclusive
    cards = [{ issuer = "1ac1…", serial = 4660 }]
    ages = [{ over = 20, from = 2026-05-01 }]
    [schedule.office-hours]
    mon = ["08:00-19:00"]             # end <= start runs past midnight
    holiday = []                      # replaces the weekday's on a holiday
    [calendar]
    country = "JP"                    # or dates = [2026-12-29, ...]
    [set]
    timezone = "Asia/Tokyo"           # how dates and local datetimes above are read

Parsing is all or nothing: every problem is collected with its path
(``person[3].cards[0].issuer: ...``) and one :class:`EnrolmentFormatError` lists them.
Pure: the caller reads the file.
"""

from __future__ import annotations

import tomllib
import unicodedata
from datetime import date, datetime, time
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from terminald.enrolment.codec import (
    MAX_CARDS,
    MAX_KEY_ID,
    MAX_NAME,
    MAX_SERIAL_BYTES,
    content_problems,
)
from terminald.enrolment.countries import known_country
from terminald.enrolment.errors import EnrolmentFormatError
from terminald.enrolment.model import (
    MAX_GROUPS,
    MAX_LABEL,
    MAX_PERIODS,
    MAX_SUBJECT,
    MINUTES_PER_DAY,
    WEEKDAYS,
    AgeAttestation,
    Calendar,
    Credential,
    EnrolmentContent,
    Period,
    Person,
    WeeklySchedule,
)

DEFAULT_TIMEZONE: Final = "Asia/Tokyo"
MAX_PEOPLE_PROBLEMS: Final = 50  # a file wrong throughout says so without a million lines
_PERSON_KEYS: Final = frozenset(
    {"subject", "label", "groups", "schedule", "valid_from", "valid_until", "cards", "ages"}
)
_TOP_KEYS: Final = frozenset({"person", "schedule", "calendar", "set"})


class _Problems(list[str]):
    def add(self, where: str, problem: str) -> None:
        self.append(f"{where}: {problem}")


def _keys(names: object) -> str:
    return ", ".join(sorted(str(n) for n in names))  # type: ignore[attr-defined]


def _text(value: object, limit: int, empty_ok: bool = False) -> str:
    """The text, or ValueError saying what is wrong."""
    if not isinstance(value, str):
        raise ValueError(f"must be text, got {type(value).__name__}")
    if not value and not empty_ok:
        raise ValueError("is empty")
    if len(value) > limit or not value.isprintable():
        raise ValueError(f"must be at most {limit} printable characters")
    return value


def _plain_spaces(value: object) -> object:
    """A label's space separators (U+3000 between a Japanese family and given name, a
    no-break space) as U+0020: str.isprintable refuses them, and a log reader sees the
    same blank. Control and format characters (an RTL override) are still refused."""
    if not isinstance(value, str):
        return value
    return "".join(" " if unicodedata.category(ch) == "Zs" else ch for ch in value)


def parse_issuer(value: object) -> bytes:
    """A key id in hex (``aa:bb`` or ``AABB``); ValueError saying what is wrong."""
    if not isinstance(value, str):
        raise ValueError(f"must be a key id in hex, got {value!r}"[:100])
    text = value.strip().replace(":", "")
    try:
        key_id = bytes.fromhex(text)
    except ValueError:
        raise ValueError(f"must be a key id in hex, got {value!r}"[:100]) from None
    if not 1 <= len(key_id) <= MAX_KEY_ID:
        raise ValueError(f"is {len(key_id)} bytes; a key id has 1..{MAX_KEY_ID}")
    return key_id


def parse_serial(value: object) -> int:
    """A non-negative integer, or a decimal string of one (beyond TOML's 64 bits)."""
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 49:
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"must be a non-negative integer, got {value!r}"[:100])
    if value >= 2 ** (8 * MAX_SERIAL_BYTES):
        raise ValueError("must be below 2**160 (RFC 5280: at most 20 bytes)")
    return value


def _moment(value: object, zone: ZoneInfo) -> datetime:
    """A TOML date (local midnight in ``zone``) or datetime (local ones in ``zone``)."""
    if isinstance(value, datetime):
        moment = value if value.tzinfo is not None else value.replace(tzinfo=zone)
        if moment.microsecond:
            raise ValueError("must be whole seconds")
        return moment
    if isinstance(value, date):
        return datetime.combine(value, time(), zone)
    raise ValueError(f"must be a TOML date (2026-04-01) or datetime, got {value!r}"[:100])


def parse_period(text: object) -> Period:
    """``"HH:MM-HH:MM"``; an end at or before the start runs past midnight."""
    if not isinstance(text, str) or len(text) != 11 or text[5] != "-":
        raise ValueError(f'must be "HH:MM-HH:MM", got {text!r}'[:100])
    start, end = _minute(text[:5]), _minute(text[6:])
    if start == MINUTES_PER_DAY:
        raise ValueError("a period cannot start at 24:00")
    if end <= start:
        end += MINUTES_PER_DAY
    return Period(start, end)


def _minute(text: str) -> int:
    hours, colon, minutes = text[:2], text[2], text[3:]
    if colon != ":" or not (hours + minutes).isascii() or not (hours + minutes).isdigit():
        raise ValueError(f"{text!r} is not HH:MM")
    value = int(hours) * 60 + int(minutes)
    if int(minutes) >= 60 or value > MINUTES_PER_DAY:
        raise ValueError(f"{text!r} is not a time of day (00:00-24:00)")
    return value


def _periods(raw: object, where: str, problems: _Problems) -> tuple[Period, ...]:
    if not isinstance(raw, list):
        problems.add(where, 'must be a list of "HH:MM-HH:MM" periods')
        return ()
    if len(raw) > MAX_PERIODS:
        problems.add(where, f"{len(raw)} periods (at most {MAX_PERIODS} a day)")
    periods = []
    for i, text in enumerate(raw):
        try:
            periods.append(parse_period(text))
        except ValueError as exc:
            problems.add(f"{where}[{i}]", str(exc))
    return tuple(sorted(periods, key=lambda p: (p.start, p.end)))


def _schedule(name: str, raw: object, problems: _Problems) -> WeeklySchedule | None:
    where = f"schedule.{name}"
    try:
        _text(name, MAX_NAME)
    except ValueError as exc:
        problems.add(where, f"the name {exc}")
    if not isinstance(raw, dict):
        problems.add(where, "must be a table")
        return None
    extra = raw.keys() - {*WEEKDAYS, "holiday"}
    if extra:
        problems.add(where, f"unknown key(s) {_keys(extra)} (mon..sun, holiday)")
    days = tuple(_periods(raw.get(d, []), f"{where}.{d}", problems) for d in WEEKDAYS)
    return WeeklySchedule(
        name, days, _periods(raw.get("holiday", []), f"{where}.holiday", problems)
    )


def _calendar(raw: object, problems: _Problems) -> Calendar:
    if not isinstance(raw, dict):
        problems.add("calendar", "must be a table")
        return Calendar()
    extra = raw.keys() - {"country", "dates"}
    if extra:
        problems.add("calendar", f"unknown key(s) {_keys(extra)} (country, dates)")
    country = raw.get("country", "JP")
    if not (isinstance(country, str) and known_country(country)):
        # Checked here: the policy asks `holidays` for this country on every decision.
        problems.add(
            "calendar.country",
            f"must be a country code the holidays library knows, such as JP; got {country!r}"[:160],
        )
        country = "JP"
    dates = raw.get("dates")
    if dates is None:
        return Calendar(None, country)
    if "country" in raw:
        problems.add("calendar", "give country (public holidays) or dates (your own), not both")
    if not isinstance(dates, list):
        problems.add("calendar.dates", "must be a list of dates")
        return Calendar(frozenset(), country)
    found = set()
    for i, day in enumerate(dates):
        if isinstance(day, date) and not isinstance(day, datetime):
            found.add(day)
        else:
            problems.add(f"calendar.dates[{i}]", f"must be a TOML date, got {day!r}"[:100])
    return Calendar(frozenset(found), country)


def parse_source(data: dict[str, Any]) -> EnrolmentContent:
    """The content a source document describes; EnrolmentFormatError listing every
    problem (each with its path) when there is any."""
    problems = _Problems()
    extra = data.keys() - _TOP_KEYS
    if extra:
        problems.add(
            "(top level)",
            f"unknown key(s) {_keys(extra)} ([[person]], [schedule.X], [calendar], [set])",
        )
    settings = data.get("set", {})
    zone = ZoneInfo(DEFAULT_TIMEZONE)
    if not isinstance(settings, dict) or settings.keys() - {"timezone"}:
        problems.add("set", "must be a table with only timezone")
    else:
        try:
            zone = ZoneInfo(_text(settings.get("timezone", DEFAULT_TIMEZONE), 64))
        except (
            ValueError,
            ZoneInfoNotFoundError,
            OSError,
        ) as exc:  # OSError: "Asia" is a directory
            problems.add("set.timezone", f"not an IANA time zone such as Asia/Tokyo ({exc})")
    raw_schedules = data.get("schedule", {})
    schedules: dict[str, WeeklySchedule] = {}
    if not isinstance(raw_schedules, dict):
        problems.add("schedule", "must be tables [schedule.NAME]")
    else:
        for name, raw in raw_schedules.items():
            schedule = _schedule(name, raw, problems)
            if schedule is not None:
                schedules[name] = schedule
    calendar = _calendar(data.get("calendar", {}), problems)
    people: dict[str, Person] = {}
    credentials: dict[tuple[bytes, int], Credential] = {}
    entries = data.get("person", [])
    if not isinstance(entries, list):
        problems.add("person", "must be an array of tables ([[person]])")
        entries = []
    seen_cards: dict[tuple[bytes, int], str] = {}
    seen_subjects: set[str | None] = set()
    for index, entry in enumerate(entries):
        if len(problems) >= MAX_PEOPLE_PROBLEMS:
            problems.append(f"(more problems not listed; {len(entries) - index} people unchecked)")
            break
        _person(
            index, entry, zone, schedules, people, credentials, seen_cards, seen_subjects, problems
        )
    content = EnrolmentContent(people, credentials, schedules, calendar)
    if not problems:  # the bounds of the signed form (dates before 1900, say)
        problems += content_problems(content)
    if problems:
        raise EnrolmentFormatError(problems)
    return content


def _person(
    index: int,
    entry: object,
    zone: ZoneInfo,
    schedules: dict[str, WeeklySchedule],
    people: dict[str, Person],
    credentials: dict[tuple[bytes, int], Credential],
    seen_cards: dict[tuple[bytes, int], str],
    seen_subjects: set[str | None],
    problems: _Problems,
) -> None:
    where = f"person[{index}]"
    if not isinstance(entry, dict):
        problems.add(where, "must be a table")
        return
    before = len(problems)
    extra = entry.keys() - _PERSON_KEYS
    if extra:
        problems.add(where, f"unknown key(s) {_keys(extra)}")
    fields: dict[str, Any] = {}
    for key, parse in (
        ("subject", lambda v: _text(v, MAX_SUBJECT)),
        ("label", lambda v: _text(_plain_spaces(v), MAX_LABEL, empty_ok=True)),
        ("schedule", lambda v: _text(v, MAX_NAME)),
        ("valid_from", lambda v: _moment(v, zone)),
        ("valid_until", lambda v: _moment(v, zone)),
    ):
        if key in entry:
            try:
                fields[key] = parse(entry[key])
            except ValueError as exc:
                problems.add(f"{where}.{key}", str(exc))
    if "subject" not in entry:
        problems.add(f"{where}.subject", "missing; every person needs one")
    subject = fields.get("subject")
    if subject is not None and subject in seen_subjects:
        problems.add(f"{where}.subject", f"{subject!r} is enrolled twice")
    seen_subjects.add(subject)
    if fields.get("schedule") is not None and fields["schedule"] not in schedules:
        problems.add(f"{where}.schedule", f"{fields['schedule']!r} is not a [schedule.X] here")
    start, end = fields.get("valid_from"), fields.get("valid_until")
    if start is not None and end is not None and end <= start:
        problems.add(f"{where}.valid_until", "must be after valid_from")
    groups = _groups(entry.get("groups", []), f"{where}.groups", problems)
    ages = _ages(entry.get("ages", []), f"{where}.ages", problems)
    cards = _cards(entry.get("cards"), f"{where}.cards", seen_cards, problems)
    if len(problems) > before or subject is None:
        return
    people[subject] = Person(
        subject, fields.get("label", ""), groups, fields.get("schedule"), start, end, ages
    )
    for card_key in cards:
        credentials[card_key] = Credential(card_key[0], card_key[1], subject)


def _groups(raw: object, where: str, problems: _Problems) -> frozenset[str]:
    if not isinstance(raw, list):
        problems.add(where, "must be a list of group names")
        return frozenset()
    if len(raw) > MAX_GROUPS:
        problems.add(where, f"{len(raw)} groups (at most {MAX_GROUPS})")
    groups = set()
    for i, name in enumerate(raw):
        try:
            groups.add(_text(name, MAX_NAME))
        except ValueError as exc:
            problems.add(f"{where}[{i}]", str(exc))
    return frozenset(groups)


def _ages(raw: object, where: str, problems: _Problems) -> tuple[AgeAttestation, ...]:
    if not isinstance(raw, list):
        problems.add(where, "must be a list of { over = N, from = DATE }")
        return ()
    ages = []
    for i, item in enumerate(raw):
        here = f"{where}[{i}]"
        if not isinstance(item, dict) or item.keys() != {"over", "from"}:
            problems.add(
                here, "must be { over = N, from = DATE } (an attestation, never a birth date)"
            )
            continue
        over, since = item["over"], item["from"]
        if not isinstance(over, int) or isinstance(over, bool) or not 1 <= over <= 150:
            problems.add(f"{here}.over", f"must be an age 1..150, got {over!r}"[:100])
        elif not isinstance(since, date) or isinstance(since, datetime):
            problems.add(f"{here}.from", f"must be a TOML date, got {since!r}"[:100])
        else:
            ages.append(AgeAttestation(over, since))
    if len(ages) > 8:
        problems.add(where, f"{len(ages)} attestations (at most 8)")
    return tuple(sorted(set(ages), key=lambda a: (a.age, a.since)))


def _cards(
    raw: object, where: str, seen: dict[tuple[bytes, int], str], problems: _Problems
) -> list[tuple[bytes, int]]:
    if raw is None:
        problems.add(where, "missing: list the certificates, [] while none is valid")
        return []
    if not isinstance(raw, list):
        problems.add(where, "must be a list of { issuer = HEX, serial = N }")
        return []
    if len(raw) > MAX_CARDS:
        problems.add(where, f"{len(raw)} certificates (at most {MAX_CARDS})")
    keys = []
    for i, card in enumerate(raw):
        here = f"{where}[{i}]"
        if not isinstance(card, dict) or card.keys() != {"issuer", "serial"}:
            problems.add(here, "must be { issuer = HEX, serial = N } and nothing else")
            continue
        try:
            issuer = parse_issuer(card["issuer"])
        except ValueError as exc:
            problems.add(f"{here}.issuer", str(exc))
            continue
        try:
            key = (issuer, parse_serial(card["serial"]))
        except ValueError as exc:
            problems.add(f"{here}.serial", str(exc))
            continue
        if key in seen:
            problems.add(here, f"the same certificate ({key[0].hex()}/{key[1]}) as {seen[key]}")
            continue
        seen[key] = here
        keys.append(key)
    return keys


def parse_source_text(text: str) -> EnrolmentContent:
    """:func:`parse_source` of a TOML document; a TOML error is an EnrolmentFormatError."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise EnrolmentFormatError(f"not valid TOML: {exc}") from None
    except RecursionError:  # tomllib recurses per nesting level, without a limit
        raise EnrolmentFormatError("not valid TOML: nested too deeply") from None
    return parse_source(data)
