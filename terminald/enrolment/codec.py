"""The canonical msgpack encoding of an enrolment set's content, its digest, and deltas.

Full body (a msgpack array; docs/enrolment.md "The signed set")::

    [1, "full", issuers, groups, people, schedules, calendar]
    issuers    [key id (bin), ...]            strictly increasing: a 20-byte id once
    groups     [name, ...]                    strictly increasing
    people     [[subject, label, [group index...], schedule | nil, valid_from | nil,
                 valid_until | nil, [[age, since]...], [[issuer index, serial]...]], ...]
               strictly increasing by subject; times in Unix seconds, dates as
               proleptic ordinals (date.toordinal); a serial is an int below 2**64, else
               its big-endian bytes (RFC 5280 allows 20 bytes)
    schedules  [[name, [7 × [[start, end]...]], [[start, end]...] holiday], ...]
    calendar   [country, [ordinal...] | nil]

Delta body::

    [1, "delta", issuers, groups, removed subjects, upserted people (the person arrays
     without the cards), removed [[issuer index, serial]...], added [[issuer index,
     serial, subject]...], schedules | nil, calendar | nil]

Everything is sorted, so one content has exactly one encoding and
:func:`content_digest` does not depend on the order of the dicts it was built from.
The decoder accepts only that canonical form (anything else is a fault named by its
path), with every count and length bounded.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import msgpack

from terminald.enrolment.codec_decode import (
    decode_calendar,
    decode_content,
    decode_delta,
    decode_person_record,
    decode_schedules,
)
from terminald.enrolment.errors import EnrolmentFormatError
from terminald.enrolment.model import (
    MAX_GROUPS,
    MAX_LABEL,
    MAX_PERIODS,
    MAX_SUBJECT,
    Calendar,
    EnrolmentContent,
    Period,
    Person,
    WeeklySchedule,
)
from terminald.enrolment.shape import (
    DIGEST_SIZE,
    FORMAT,
    MAX_AGES,
    MAX_BODY,
    MAX_CARDS,
    MAX_DATES,
    MAX_GROUP_NAMES,
    MAX_ISSUERS,
    MAX_KEY_ID,
    MAX_NAME,
    MAX_ORDINAL,
    MAX_PEOPLE,
    MAX_SCHEDULES,
    MAX_SERIAL_BYTES,
    MAX_TIME,
    MIN_ORDINAL,
    U64,
    EnrolmentDelta,
)

# -- encoding --------------------------------------------------------------------------


def _seconds(when: datetime | None, where: str) -> int | None:
    if when is None:
        return None
    if when.tzinfo is None or when.microsecond:
        raise ValueError(f"{where}: must be timezone-aware whole seconds, got {when!r}")
    seconds = int(when.timestamp())
    if not 0 <= seconds <= MAX_TIME:
        raise ValueError(f"{where}: {when.isoformat()} is outside 1970..9999")
    return seconds


def _serial(serial: int) -> int | bytes:
    return serial if serial < U64 else serial.to_bytes((serial.bit_length() + 7) // 8, "big")


def _periods(periods: Iterable[Period]) -> list[list[int]]:
    return [[p.start, p.end] for p in sorted(periods, key=lambda p: (p.start, p.end))]


def _person(person: Person, group_index: dict[str, int]) -> list[Any]:
    where = f"person {person.subject!r}"
    return [
        person.subject,
        person.label,
        sorted(group_index[g] for g in person.groups),
        person.schedule,
        _seconds(person.valid_from, f"{where}.valid_from"),
        _seconds(person.valid_until, f"{where}.valid_until"),
        sorted([a.age, a.since.toordinal()] for a in person.ages),
    ]


def _schedules(schedules: dict[str, WeeklySchedule]) -> list[Any]:
    return [
        [name, [_periods(day) for day in s.days], _periods(s.holiday)]
        for name, s in sorted(schedules.items())
    ]


def _calendar(calendar: Calendar) -> list[Any]:
    dates = None if calendar.dates is None else sorted(d.toordinal() for d in calendar.dates)
    return [calendar.country, dates]


def _tables(people: Iterable[Person], issuers: Iterable[bytes]) -> tuple[list[bytes], list[str]]:
    return sorted(set(issuers)), sorted({g for p in people for g in p.groups})


def _pack(obj: object) -> bytes:
    return msgpack.packb(obj, use_bin_type=True)  # type: ignore[no-any-return]


def encode_content(content: EnrolmentContent, *, check: bool = True) -> bytes:
    """The canonical full body. ValueError (naming what) when the content is inconsistent;
    ``check=False`` skips that when the caller just checked (apply_delta does)."""
    problems = content_problems(content) if check else []
    if problems:
        raise ValueError("; ".join(problems[:5]))
    issuers, groups = _tables(content.people.values(), (k for k, _ in content.credentials))
    issuer_index = {k: i for i, k in enumerate(issuers)}
    group_index = {g: i for i, g in enumerate(groups)}
    cards: dict[str, list[list[Any]]] = {}
    for issuer, serial in sorted(content.credentials):
        subject = content.credentials[issuer, serial].subject
        cards.setdefault(subject, []).append([issuer_index[issuer], _serial(serial)])
    people = [
        [*_person(content.people[s], group_index), cards.get(s, [])] for s in sorted(content.people)
    ]
    body = [
        FORMAT,
        "full",
        issuers,
        groups,
        people,
        _schedules(content.schedules),
        _calendar(content.calendar),
    ]
    return _pack(body)


def content_digest(content: EnrolmentContent, *, check: bool = True) -> bytes:
    """SHA-256 of :func:`encode_content`: names a content whatever order it was built in."""
    return hashlib.sha256(encode_content(content, check=check)).digest()


def encode_delta(delta: EnrolmentDelta) -> bytes:
    issuers, groups = _tables(
        delta.upserted_people,
        [k for k, _ in delta.removed_credentials]
        + [c.issuer_key_id for c in delta.added_credentials],
    )
    issuer_index = {k: i for i, k in enumerate(issuers)}
    group_index = {g: i for i, g in enumerate(groups)}
    body = [
        FORMAT,
        "delta",
        issuers,
        groups,
        sorted(delta.removed_subjects),
        [_person(p, group_index) for p in sorted(delta.upserted_people, key=lambda p: p.subject)],
        [[issuer_index[k], _serial(s)] for k, s in sorted(delta.removed_credentials)],
        [
            [issuer_index[c.issuer_key_id], _serial(c.serial), c.subject]
            for c in sorted(delta.added_credentials, key=lambda c: c.key)
        ],
        None if delta.schedules is None else _schedules(delta.schedules),
        None if delta.calendar is None else _calendar(delta.calendar),
    ]
    return _pack(body)


def encode_person_record(person: Person) -> bytes:
    """One person alone (a store's row): its group names, then its person array."""
    groups = sorted(person.groups)
    return _pack([groups, _person(person, {g: i for i, g in enumerate(groups)})])


def encode_schedules(schedules: dict[str, WeeklySchedule]) -> bytes:
    return _pack(_schedules(schedules))


def encode_calendar(calendar: Calendar) -> bytes:
    return _pack(_calendar(calendar))


# -- consistency -----------------------------------------------------------------------


def _text_problem(value: str, limit: int, empty_ok: bool = False) -> str:
    if not value and not empty_ok:
        return "is empty"
    if len(value) > limit:
        return f"is {len(value)} characters (at most {limit})"
    if not value.isprintable():
        return "has a character that is not printable"
    return ""


def person_problems(person: Person, where: str) -> list[str]:
    problems = []
    for name, value, limit, empty_ok in (
        ("subject", person.subject, MAX_SUBJECT, False),
        ("label", person.label, MAX_LABEL, True),
    ):
        problem = _text_problem(value, limit, empty_ok)
        if problem:
            problems.append(f"{where}.{name}: {problem}")
    if len(person.groups) > MAX_GROUPS:
        problems.append(f"{where}.groups: {len(person.groups)} (at most {MAX_GROUPS})")
    for group in sorted(person.groups):
        problem = _text_problem(group, MAX_NAME)
        if problem:
            problems.append(f"{where}.groups: {group!r} {problem}")
    if (
        person.valid_from is not None
        and person.valid_until is not None
        and person.valid_until <= person.valid_from
    ):
        problems.append(f"{where}.valid_until: not after valid_from")
    if len(person.ages) > MAX_AGES:
        problems.append(f"{where}.ages: {len(person.ages)} (at most {MAX_AGES})")
    for age in person.ages:
        if not 0 < age.age <= 150:
            problems.append(f"{where}.ages: age {age.age} is not 1..150")
        if not MIN_ORDINAL <= age.since.toordinal() <= MAX_ORDINAL:
            problems.append(f"{where}.ages: {age.since} is not in 1900..9999")
    for name, moment in (("valid_from", person.valid_from), ("valid_until", person.valid_until)):
        if moment is not None and (
            moment.tzinfo is None or moment.microsecond or not 0 <= moment.timestamp() <= MAX_TIME
        ):
            problems.append(f"{where}.{name}: must be whole seconds between 1970 and 9999")
    return problems


def content_problems(content: EnrolmentContent) -> list[str]:
    """Every inconsistency of ``content`` (empty: fine): keys that disagree with their
    records, certificates naming no one, schedules named but not defined, bounds."""
    problems = []
    if len(content.people) > MAX_PEOPLE:
        problems.append(f"people: {len(content.people)} (at most {MAX_PEOPLE})")
    per_subject: dict[str, int] = {}
    for (issuer, serial), cred in content.credentials.items():
        where = f"credential {issuer.hex()}/{serial}"
        if cred.key != (issuer, serial):
            problems.append(f"{where}: filed under another key than its own")
        if cred.subject not in content.people:
            problems.append(f"{where}: names subject {cred.subject!r}, who is not enrolled")
        if not 1 <= len(issuer) <= MAX_KEY_ID:
            problems.append(f"{where}: issuer key id of {len(issuer)} bytes (1..{MAX_KEY_ID})")
        if not 0 <= serial < 2 ** (8 * MAX_SERIAL_BYTES):
            problems.append(f"{where}: serial outside 0..2**160")
        per_subject[cred.subject] = per_subject.get(cred.subject, 0) + 1
    for subject, count in per_subject.items():
        if count > MAX_CARDS:
            problems.append(f"person {subject!r}: {count} certificates (at most {MAX_CARDS})")
    for subject, person in content.people.items():
        where = f"person {subject!r}"
        if person.subject != subject:
            problems.append(f"{where}: filed under another subject than its own")
        problems += person_problems(person, where)
        if person.schedule is not None and person.schedule not in content.schedules:
            problems.append(f"{where}.schedule: {person.schedule!r} is not defined")
    if len(content.schedules) > MAX_SCHEDULES:
        problems.append(f"schedules: {len(content.schedules)} (at most {MAX_SCHEDULES})")
    for name, schedule in content.schedules.items():
        problem = _text_problem(name, MAX_NAME)
        if problem or schedule.name != name:
            problems.append(f"schedule {name!r}: {problem or 'filed under another name'}")
        for day in (*schedule.days, schedule.holiday):
            if len(day) > MAX_PERIODS:
                problems.append(f"schedule {name!r}: {len(day)} periods a day (max {MAX_PERIODS})")
                break
    dates = content.calendar.dates
    if dates is not None and len(dates) > MAX_DATES:
        problems.append(f"calendar.dates: {len(dates)} (at most {MAX_DATES})")
    if dates and not MIN_ORDINAL <= min(dates).toordinal() <= max(dates).toordinal() <= MAX_ORDINAL:
        problems.append("calendar.dates: every date must be in 1900..9999")
    if _text_problem(content.calendar.country, MAX_NAME):
        problems.append("calendar.country: must be a country code such as JP")
    return problems


# -- deltas ----------------------------------------------------------------------------


def diff(old: EnrolmentContent, new: EnrolmentContent) -> EnrolmentDelta:
    """The smallest delta of this shape that turns ``old`` into ``new``."""
    removed_subjects = frozenset(old.people.keys() - new.people.keys())
    # Sorted as the encoding sorts them, so a delta equals its decoded self.
    upserted = tuple(p for s, p in sorted(new.people.items()) if old.people.get(s) != p)
    removed = frozenset(
        k
        for k, c in old.credentials.items()
        if c.subject not in removed_subjects and new.credentials.get(k) != c
    )
    added = tuple(c for k, c in sorted(new.credentials.items()) if old.credentials.get(k) != c)
    return EnrolmentDelta(
        removed_subjects,
        upserted,
        removed,
        added,
        None if new.schedules == old.schedules else dict(new.schedules),
        None if new.calendar == old.calendar else new.calendar,
    )


def apply_delta(content: EnrolmentContent, delta: EnrolmentDelta) -> EnrolmentContent:
    """The content after ``delta``; EnrolmentFormatError naming every step that does not
    fit (a subject or certificate removed that is not there, one added twice...)."""
    problems = []
    people = dict(content.people)
    credentials = dict(content.credentials)
    for subject in sorted(delta.removed_subjects):
        if people.pop(subject, None) is None:
            problems.append(f"delta.removed_subjects: {subject!r} is not enrolled")
    if delta.removed_subjects:
        credentials = {
            k: c for k, c in credentials.items() if c.subject not in delta.removed_subjects
        }
    for person in delta.upserted_people:
        if person.subject in delta.removed_subjects:
            problems.append(f"delta.upserted_people: {person.subject!r} is also removed")
        people[person.subject] = person
    for issuer, serial in sorted(delta.removed_credentials):
        if credentials.pop((issuer, serial), None) is None:
            problems.append(f"delta.removed_credentials: {issuer.hex()}/{serial} is not enrolled")
    for cred in delta.added_credentials:
        if cred.key in credentials:
            problems.append(
                f"delta.added_credentials: {cred.issuer_key_id.hex()}/{cred.serial} is "
                "already enrolled (remove it in the same delta to relink it)"
            )
        credentials[cred.key] = cred
    result = EnrolmentContent(
        people,
        credentials,
        content.schedules if delta.schedules is None else dict(delta.schedules),
        content.calendar if delta.calendar is None else delta.calendar,
    )
    if problems:
        raise EnrolmentFormatError(problems)
    problems = content_problems(result)
    if problems:
        raise EnrolmentFormatError(problems[:20])
    return result


__all__ = [
    "DIGEST_SIZE",
    "MAX_AGES",
    "MAX_BODY",
    "MAX_CARDS",
    "MAX_DATES",
    "MAX_GROUP_NAMES",
    "MAX_ISSUERS",
    "MAX_KEY_ID",
    "MAX_NAME",
    "MAX_PEOPLE",
    "MAX_SCHEDULES",
    "MAX_SERIAL_BYTES",
    "EnrolmentDelta",
    "apply_delta",
    "content_digest",
    "content_problems",
    "decode_calendar",
    "decode_content",
    "decode_delta",
    "decode_person_record",
    "decode_schedules",
    "diff",
    "encode_calendar",
    "encode_content",
    "encode_delta",
    "encode_person_record",
    "encode_schedules",
]
