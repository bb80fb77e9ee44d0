"""The policy's link messages (terminald/link/messages_policy.py): round trips over their
whole range, every bound refused with the field named, and an age question that cannot
carry anything but (issuer, serial, age, date)."""

from __future__ import annotations

from datetime import date
from typing import Any

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from terminald.link import messages as m

H2T, T2H = m.Direction.HOST_TO_TERMINAL, m.Direction.TERMINAL_TO_HOST
TERMINAL_IDS = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", fullmatch=True)
SUBJECTS = st.text(st.characters(codec="utf-8"), min_size=1, max_size=64).filter(str.isprintable)


def raw(msg: m.Message) -> dict[str, Any]:
    body: dict[str, Any] = msgpack.unpackb(m.encode(msg), raw=False)
    return body


def refused(body: dict[str, Any], sender: m.Direction | None = None) -> str:
    with pytest.raises(m.MessageError) as caught:
        m.decode(msgpack.packb(body, use_bin_type=True), sender)
    return caught.value.reason


@given(
    issuer=st.binary(min_size=1, max_size=64),
    serial=st.integers(0, 2**160),
    age=st.integers(1, 150),
    day=st.dates(date(1, 1, 1), date(9999, 12, 31)),
    msg_id=st.integers(0, 2**32 - 1),
)
def test_age_query_round_trips(
    issuer: bytes, serial: int, age: int, day: date, msg_id: int
) -> None:
    query = m.AgeQuery(id=msg_id, issuer=issuer, serial=serial, age=age, date=day)
    assert m.decode(m.encode(query), T2H) == query


@given(st.sampled_from(["valid", "invalid", "unknown"]), st.sampled_from([True, False, None]))
def test_age_answer_round_trips(certificate: str, over: bool | None) -> None:
    reply = m.AgeReply(id=7, certificate=certificate, over=over)
    decoded = m.decode(m.encode(reply), H2T)
    assert decoded == reply and isinstance(decoded, m.AgeReply)
    assert decoded.answer() == m.AgeAnswer(certificate, over)


@given(
    subject=SUBJECTS,
    direction=st.sampled_from(["entry", "exit"]),
    at=st.integers(0, 253_402_300_799_999_999),
    terminal=TERMINAL_IDS,
)
def test_presence_round_trips(subject: str, direction: str, at: int, terminal: str) -> None:
    msg = m.PresenceRelay(id=1, subject=subject, direction=direction, at=at, terminal=terminal)
    assert m.decode(m.encode(msg), H2T) == msg


@given(st.dictionaries(TERMINAL_IDS, st.floats(0, 1e10), max_size=32))
def test_partners_round_trip_sorted(seen: dict[str, float]) -> None:
    msg = m.Partners(id=1, seen=tuple(sorted(seen.items())))
    assert m.decode(m.encode(msg), H2T) == msg


QUERY = m.AgeQuery(id=3, issuer=b"\x1a" * 20, serial=4660, age=20, date=date(2026, 11, 30))
PRESENCE = m.PresenceRelay(id=4, subject="E1", direction="entry", at=0, terminal="gate-in")


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"age": 0}, "age.query.age: must be 1..150, got 0"),
        ({"age": 151}, "age.query.age: must be 1..150, got 151"),
        ({"age": True}, "age.query.age: must be an integer, got a boolean"),
        ({"issuer": b""}, "age.query.issuer: must be 1..64 bytes, got 0"),
        ({"issuer": bytes(65)}, "age.query.issuer: must be 1..64 bytes, got 65"),
        ({"serial": 4660}, "age.query.serial: must be a string, got an integer"),
        ({"serial": "-1"}, "age.query.serial: does not match"),
        ({"serial": "0042"}, "age.query.serial: does not match"),  # one spelling per serial
        ({"serial": "9" * 50}, "age.query.serial: at most 49 characters, got 50"),
        ({"date": "2026-02-30"}, "age.query.date: not a calendar date"),
        ({"date": "30/11/2026"}, "age.query.date: does not match"),
        ({"date": "2026-11-30T00:00"}, "age.query.date: at most 10 characters"),
        ({"birth_date": "2006-11-30"}, "age.query: unknown field(s) 'birth_date'"),
        ({"born": 2006}, "age.query: unknown field(s) 'born'"),
    ],
)
def test_age_query_bounds(change: dict[str, Any], expected: str) -> None:
    assert expected in refused(raw(QUERY) | change, T2H)


def test_an_age_query_holds_only_issuer_serial_age_and_date() -> None:
    assert set(m.AgeQuery.SPEC) == {"issuer", "serial", "age", "date"}
    assert set(raw(QUERY)) == {"v", "t", "id", "issuer", "serial", "age", "date"}


@pytest.mark.parametrize(
    ("kind", "body", "expected"),
    [
        ("age.answer", {"certificate": "maybe", "over": None}, "must be one of valid"),
        ("age.answer", {"certificate": "valid", "over": 1}, "age.answer.over: must be a boolean"),
        ("presence", raw(PRESENCE) | {"subject": ""}, "presence.subject: does not match"),
        ("presence", raw(PRESENCE) | {"subject": "x" * 65}, "at most 64 characters"),
        ("presence", raw(PRESENCE) | {"subject": "a\nb"}, "must be printable"),
        ("presence", raw(PRESENCE) | {"direction": "in"}, "must be one of entry, exit"),
        ("presence", raw(PRESENCE) | {"at": -1}, "presence.at: must be 0..253402300799999999"),
        ("presence", raw(PRESENCE) | {"terminal": "-x"}, "presence.terminal: does not match"),
        ("partners", {"seen": {"gate-in": -0.5}}, "partners.seen.gate-in: must be 0..1e+10"),
        ("partners", {"seen": {"gate-in": "1"}}, "must be a finite float, got a string"),
        ("partners", {"seen": {"bad id!": 1.0}}, "partners.seen key: does not match"),
        ("partners", {"seen": {f"t{i}": 1.0 for i in range(33)}}, "at most 32 entries, got 33"),
        ("partners", {"seen": [1.0]}, "partners.seen: must be a map, got a list"),
    ],
)
def test_host_message_bounds(kind: str, body: dict[str, Any], expected: str) -> None:
    envelope = {"v": 1, "t": kind, "id": 5}
    assert expected in refused(envelope | body, H2T)


def test_the_directions_are_enforced() -> None:
    assert "travels terminal→host" in refused(raw(QUERY), H2T)
    assert "travels host→terminal" in refused(raw(PRESENCE), T2H)


def test_encode_refuses_what_decode_would() -> None:
    with pytest.raises(m.MessageError, match=r"age\.query\.age"):
        m.encode(m.AgeQuery(id=1, issuer=b"x", serial=1, age=200, date=date(2026, 1, 1)))
    with pytest.raises(m.MessageError, match="non-negative"):
        m.encode(m.AgeQuery(id=1, issuer=b"x", serial=-5, age=20, date=date(2026, 1, 1)))


@pytest.mark.parametrize(
    ("attrs", "expected"),
    [
        ({"Passback": "entry"}, "event.row.attrs key: does not match"),
        ({"passback": "x" * 65}, "event.row.attrs.passback: at most 64 characters"),
        ({f"k{i}": "v" for i in range(17)}, "event.row.attrs: at most 16 entries"),
    ],
)
def test_event_rows_carry_bounded_attrs(attrs: dict[str, str], expected: str) -> None:
    event = m.Event(
        id=1, row=m.AuditRow(seq=1, at="2026-11-30T08:00:00+00:00", terminal="t", kind="granted")
    )
    body = raw(event)
    body["row"]["attrs"] = attrs
    assert expected in refused(body, T2H)
