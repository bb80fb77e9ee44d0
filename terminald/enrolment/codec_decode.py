"""Decoding the canonical bodies of ``enrolment/codec.py``: bounded, strict, total.

Any input either decodes to exactly what was encoded or raises
:class:`EnrolmentFormatError` whose message starts with the path of the first fault
(``people[3].cards[0]: issuer index 7 beyond the issuer table (2)``).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import msgpack

from terminald.enrolment import shape as c
from terminald.enrolment.countries import known_country
from terminald.enrolment.errors import EnrolmentFormatError
from terminald.enrolment.model import (
    MAX_GROUPS,
    MAX_LABEL,
    MAX_PERIODS,
    MAX_SUBJECT,
    AgeAttestation,
    Calendar,
    Credential,
    EnrolmentContent,
    Period,
    Person,
    WeeklySchedule,
)


def _fail(where: str, problem: str) -> EnrolmentFormatError:
    return EnrolmentFormatError(f"{where}: {problem}")


def _list(value: object, where: str, limit: int, length: int | None = None) -> list[Any]:
    if type(value) is not list:
        raise _fail(where, f"must be an array, got {type(value).__name__}")
    if len(value) > limit:
        raise _fail(where, f"{len(value)} entries (at most {limit})")
    if length is not None and len(value) != length:
        raise _fail(where, f"must have {length} entries, has {len(value)}")
    return value


def _int(value: object, where: str, low: int, high: int) -> int:
    if type(value) is not int or not low <= value <= high:
        raise _fail(where, f"must be an integer {low}..{high}, got {value!r}"[:200])
    return value


def _text(value: object, where: str, limit: int, empty_ok: bool = False) -> str:
    if type(value) is not str:
        raise _fail(where, f"must be text, got {type(value).__name__}")
    if (not value and not empty_ok) or len(value) > limit or not value.isprintable():
        raise _fail(where, f"must be 1..{limit} printable characters")
    return value


def _increasing(items: list[Any], where: str) -> None:
    for i in range(1, len(items)):
        if not items[i - 1] < items[i]:
            raise _fail(f"{where}[{i}]", "not after the entry before it (duplicate or unsorted)")


def _time(value: object, where: str) -> datetime | None:
    if value is None:
        return None
    return datetime.fromtimestamp(_int(value, where, 0, c.MAX_TIME), UTC)


def _date(value: object, where: str) -> date:
    return date.fromordinal(_int(value, where, c.MIN_ORDINAL, c.MAX_ORDINAL))


def _serial(value: object, where: str) -> int:
    if type(value) is int and 0 <= value < c.U64:
        return value
    if type(value) is bytes and len(value) <= c.MAX_SERIAL_BYTES:
        serial = int.from_bytes(value, "big")
        if serial >= c.U64 and (serial.bit_length() + 7) // 8 == len(value):
            return serial
    raise _fail(where, "must be a serial: an integer below 2**64 or its minimal big-endian bytes")


def _issuers(value: object, where: str) -> list[bytes]:
    issuers = _list(value, where, c.MAX_ISSUERS)
    for i, key in enumerate(issuers):
        if type(key) is not bytes or not 1 <= len(key) <= c.MAX_KEY_ID:
            raise _fail(f"{where}[{i}]", f"must be a key id of 1..{c.MAX_KEY_ID} bytes")
    _increasing(issuers, where)
    return issuers


def _groups(value: object, where: str) -> list[str]:
    groups = [
        _text(g, f"{where}[{i}]", c.MAX_NAME)
        for i, g in enumerate(_list(value, where, c.MAX_GROUP_NAMES))
    ]
    _increasing(groups, where)
    return groups


def _index(value: object, where: str, table: list[Any], name: str) -> int:
    if type(value) is not int or not 0 <= value < len(table):
        raise _fail(where, f"index {value!r} beyond the {name} table ({len(table)})"[:200])
    return value


def _person(raw: object, where: str, groups: list[str], length: int) -> Person:
    fields = _list(raw, where, length, length)
    subject = _text(fields[0], f"{where}.subject", MAX_SUBJECT)
    label = _text(fields[1], f"{where}.label", MAX_LABEL, empty_ok=True)
    indexes = _list(fields[2], f"{where}.groups", MAX_GROUPS)
    for i, g in enumerate(indexes):
        _index(g, f"{where}.groups[{i}]", groups, "group")
    _increasing(indexes, f"{where}.groups")
    schedule = None if fields[3] is None else _text(fields[3], f"{where}.schedule", c.MAX_NAME)
    valid_from = _time(fields[4], f"{where}.valid_from")
    valid_until = _time(fields[5], f"{where}.valid_until")
    if valid_from is not None and valid_until is not None and valid_until <= valid_from:
        raise _fail(f"{where}.valid_until", "not after valid_from")
    ages = []
    raw_ages = _list(fields[6], f"{where}.ages", c.MAX_AGES)
    for i, pair in enumerate(raw_ages):
        age, since = _list(pair, f"{where}.ages[{i}]", 2, 2)
        ages.append(
            AgeAttestation(
                _int(age, f"{where}.ages[{i}].age", 1, 150),
                _date(since, f"{where}.ages[{i}].since"),
            )
        )
    _increasing(raw_ages, f"{where}.ages")
    return Person(
        subject,
        label,
        frozenset(groups[g] for g in indexes),
        schedule,
        valid_from,
        valid_until,
        tuple(ages),
    )


def _periods(raw: object, where: str) -> tuple[Period, ...]:
    pairs = _list(raw, where, MAX_PERIODS)
    periods = []
    for i, pair in enumerate(pairs):
        start, end = _list(pair, f"{where}[{i}]", 2, 2)
        try:
            periods.append(Period(_int(start, where, 0, 1439), _int(end, where, 1, 2879)))
        except ValueError as exc:
            raise _fail(f"{where}[{i}]", str(exc)) from None
    _increasing(pairs, where)
    return tuple(periods)


def _schedules(raw: object, where: str) -> dict[str, WeeklySchedule]:
    schedules: dict[str, WeeklySchedule] = {}
    entries = _list(raw, where, c.MAX_SCHEDULES)
    for i, entry in enumerate(entries):
        here = f"{where}[{i}]"
        name, days, holiday = _list(entry, here, 3, 3)
        name = _text(name, f"{here}.name", c.MAX_NAME)
        if schedules and not max(schedules) < name:
            raise _fail(here, "not after the entry before it (duplicate or unsorted)")
        week = tuple(
            _periods(d, f"{here}.days[{n}]") for n, d in enumerate(_list(days, here, 7, 7))
        )
        schedules[name] = WeeklySchedule(name, week, _periods(holiday, f"{here}.holiday"))
    return schedules


def _calendar(raw: object, where: str) -> Calendar:
    country, dates = _list(raw, where, 2, 2)
    country = _text(country, f"{where}.country", c.MAX_NAME)
    if not known_country(country):  # the policy asks holidays for it
        raise _fail(f"{where}.country", f"{country!r} is not a country the holidays library knows")
    if dates is None:
        return Calendar(None, country)
    ordinals = _list(dates, f"{where}.dates", c.MAX_DATES)
    _increasing(ordinals, f"{where}.dates")
    return Calendar(
        frozenset(_date(d, f"{where}.dates[{i}]") for i, d in enumerate(ordinals)), country
    )


def _load(body: bytes) -> object:
    try:
        # Explicit bounds: a few bytes must not announce a billion-entry array.
        obj = msgpack.unpackb(
            body,
            raw=False,
            strict_map_key=True,
            max_str_len=1024,
            max_bin_len=c.MAX_KEY_ID,
            max_array_len=c.MAX_PEOPLE,
            max_map_len=0,
            max_ext_len=0,
        )
    except (ValueError, TypeError, msgpack.UnpackException) as exc:
        raise EnrolmentFormatError(f"body: not a msgpack value ({exc})"[:300]) from None
    except RecursionError:
        raise EnrolmentFormatError("body: nested too deeply") from None
    return obj


def _unpack(body: bytes, kind: str, length: int) -> list[Any]:
    if len(body) > c.MAX_BODY:
        raise EnrolmentFormatError(f"body: {len(body)} bytes (at most {c.MAX_BODY})")
    fields = _list(_load(body), "body", length, length)
    if fields[0] != c.FORMAT or type(fields[0]) is not int:
        raise _fail("body.format", f"{fields[0]!r} is not {c.FORMAT}")
    if fields[1] != kind:
        raise _fail("body.kind", f"{fields[1]!r} is not {kind!r}")
    return fields


def decode_content(body: bytes) -> EnrolmentContent:
    """The content of a full body (codec.encode_content); EnrolmentFormatError otherwise."""
    _, _, raw_issuers, raw_groups, raw_people, raw_schedules, raw_calendar = _unpack(
        body, "full", 7
    )
    issuers = _issuers(raw_issuers, "issuers")
    groups = _groups(raw_groups, "groups")
    people: dict[str, Person] = {}
    credentials: dict[tuple[bytes, int], Credential] = {}
    last = ""
    for i, raw in enumerate(_list(raw_people, "people", c.MAX_PEOPLE)):
        where = f"people[{i}]"
        if type(raw) is not list or len(raw) != 8:
            raise _fail(where, "must be an array of 8 fields")
        person = _person(raw[:7], where, groups, 7)
        if people and not last < person.subject:
            raise _fail(f"{where}.subject", "not after the one before it (duplicate or unsorted)")
        last = person.subject
        people[person.subject] = person
        cards = _list(raw[7], f"{where}.cards", c.MAX_CARDS)
        for n, card in enumerate(cards):
            here = f"{where}.cards[{n}]"
            issuer_index, raw_serial = _list(card, here, 2, 2)
            key = (
                issuers[_index(issuer_index, f"{here}.issuer", issuers, "issuer")],
                _serial(raw_serial, f"{here}.serial"),
            )
            if key in credentials:
                raise _fail(here, f"{key[0].hex()}/{key[1]} is enrolled twice")
            credentials[key] = Credential(key[0], key[1], person.subject)
    content = EnrolmentContent(
        people,
        credentials,
        _schedules(raw_schedules, "schedules"),
        _calendar(raw_calendar, "calendar"),
    )
    # The rest of content_problems was checked field by field above.
    for subject, person in people.items():
        if person.schedule is not None and person.schedule not in content.schedules:
            raise _fail(f"people[{subject!r}].schedule", f"{person.schedule!r} is not defined")
    return content


def decode_delta(body: bytes) -> c.EnrolmentDelta:
    """The delta of a delta body (codec.encode_delta); EnrolmentFormatError otherwise."""
    fields = _unpack(body, "delta", 10)
    issuers = _issuers(fields[2], "issuers")
    groups = _groups(fields[3], "groups")
    removed_subjects = [
        _text(s, f"removed_subjects[{i}]", MAX_SUBJECT)
        for i, s in enumerate(_list(fields[4], "removed_subjects", c.MAX_PEOPLE))
    ]
    _increasing(removed_subjects, "removed_subjects")
    upserted = [
        _person(raw, f"people[{i}]", groups, 7)
        for i, raw in enumerate(_list(fields[5], "people", c.MAX_PEOPLE))
    ]
    _increasing([p.subject for p in upserted], "people")
    removed = []
    for i, raw in enumerate(_list(fields[6], "removed", c.MAX_PEOPLE * c.MAX_CARDS)):
        issuer_index, serial = _list(raw, f"removed[{i}]", 2, 2)
        issuer = issuers[_index(issuer_index, f"removed[{i}].issuer", issuers, "issuer")]
        removed.append((issuer, _serial(serial, f"removed[{i}].serial")))
    _increasing(removed, "removed")
    added = []
    for i, raw in enumerate(_list(fields[7], "added", c.MAX_PEOPLE * c.MAX_CARDS)):
        issuer_index, serial, subject = _list(raw, f"added[{i}]", 3, 3)
        issuer = issuers[_index(issuer_index, f"added[{i}].issuer", issuers, "issuer")]
        added.append(
            Credential(
                issuer,
                _serial(serial, f"added[{i}].serial"),
                _text(subject, f"added[{i}].subject", MAX_SUBJECT),
            )
        )
    _increasing([a.key for a in added], "added")
    return c.EnrolmentDelta(
        frozenset(removed_subjects),
        tuple(upserted),
        frozenset(removed),
        tuple(added),
        None if fields[8] is None else _schedules(fields[8], "schedules"),
        None if fields[9] is None else _calendar(fields[9], "calendar"),
    )


def decode_person_record(record: bytes) -> Person:
    """A person as ``codec.encode_person_record`` wrote it into a store that checked it
    when it was installed: its shape is checked here (a damaged record raises
    EnrolmentFormatError), its bounds are not, to keep a lookup cheap."""
    try:
        groups, fields = msgpack.unpackb(record, raw=False, max_map_len=0, max_ext_len=0)
        subject, label, indexes, schedule, valid_from, valid_until, ages = fields
        if type(subject) is not str or type(label) is not str:
            raise TypeError("subject or label is not text")
        if schedule is not None and type(schedule) is not str:
            raise TypeError("schedule is not text")
        return Person(
            subject,
            label,
            frozenset(str(groups[i]) for i in indexes),
            schedule,
            None if valid_from is None else datetime.fromtimestamp(valid_from, UTC),
            None if valid_until is None else datetime.fromtimestamp(valid_until, UTC),
            tuple(AgeAttestation(int(age), date.fromordinal(since)) for age, since in ages),
        )
    except (ValueError, TypeError, IndexError, OverflowError, msgpack.UnpackException) as exc:
        raise EnrolmentFormatError(f"person record: damaged ({exc})"[:200]) from None


def decode_schedules(record: bytes) -> dict[str, WeeklySchedule]:
    return _schedules(_load(record), "schedules")


def decode_calendar(record: bytes) -> Calendar:
    return _calendar(_load(record), "calendar")
