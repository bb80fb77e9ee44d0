"""Attendance grants and what every verdict record carries (issue 11, items 5 and 6).

An attendance terminal records its grant as ``attendance`` and opens the door only when
the policy says the person may pass it (``("door", "open")``); every granted, refused or
attendance record carries the policy's subject, attributes and whether the PIN was
verified, as the AuthResult gave them.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from terminald.core.auth import AuthResult, CardIdentity
from terminald.core.commands import (
    Command,
    HoldRelay,
    PulseRelay,
    Record,
    RunChecks,
    RunVerify,
)
from terminald.core.door import DoorSettings
from terminald.core.hardware import DoorInput, InputChanged, KeyPressed
from terminald.core.reasons import Reason
from terminald.core.terminal import (
    CardArrived,
    ChecksDone,
    PinPrompt,
    Terminal,
    TerminalSettings,
    VerifyDone,
)

IDENT = CardIdentity(16777224, b"\x01" * 20, datetime(2030, 1, 1, tzinfo=UTC), False)
CLOCK_IN = (("attendance", "clock_in"),)


def terminal(purpose: str) -> Terminal:
    return Terminal(
        TerminalSettings(
            pin_timeout_s=20,
            verdict_hold_s=3,
            door=DoorSettings(open_ms=4000, held_open_s=30),
            purpose=purpose,
        )
    )


def decide(t: Terminal, result: AuthResult, key: str | None = None) -> list[Command]:
    """A (selection,) tap, PIN 1234, and ``result`` as the verify's answer."""
    if key is not None:
        t.handle(KeyPressed(key), 0.0)
    assert [c for c in t.handle(CardArrived(), 1.0) if isinstance(c, RunChecks)] == [RunChecks(key)]
    t.handle(ChecksDone(PinPrompt(IDENT, 3)), 1.5)
    for k in "1234#":
        out = t.handle(KeyPressed(k), 2.0)
    assert RunVerify("1234") in out
    return t.handle(VerifyDone(result), 2.5)


def records(commands: list[Command]) -> list[Record]:
    return [c for c in commands if isinstance(c, Record)]


def test_attendance_with_the_door_opens_it_and_records_attendance() -> None:
    t = terminal("attendance")
    attrs = (("attendance", "clock_in"), ("door", "open"))
    out = decide(t, AuthResult(Reason.OK, identity=IDENT, subject="E1001", attrs=attrs), "A")
    assert PulseRelay(4000) in out
    (record,) = records(out)
    assert (record.kind, record.reason, record.subject, record.attrs) == (
        "attendance",
        Reason.OK,
        "E1001",
        attrs,
    )
    # The door was released by this grant: opening it now is no forced entry.
    assert records(t.handle(InputChanged(DoorInput.DOOR, True), 3.0)) == [
        Record("door_opened", "authorised")
    ]


@pytest.mark.parametrize("door", [None, "closed"])
def test_attendance_without_the_door_records_and_leaves_the_relay_alone(door: str | None) -> None:
    t = terminal("attendance")
    attrs = CLOCK_IN + ((("door", door),) if door else ())
    out = decide(t, AuthResult(Reason.OK, identity=IDENT, subject="E1001", attrs=attrs))
    assert not [c for c in out if isinstance(c, PulseRelay | HoldRelay)]
    assert [r.kind for r in records(out)] == ["attendance"]
    # Nothing was released: the door opening now is forced.
    assert records(t.handle(InputChanged(DoorInput.DOOR, True), 3.0)) == [
        Record("door_opened", "forced")
    ]


def test_an_attendance_refusal_is_refused() -> None:
    t = terminal("attendance")
    out = decide(t, AuthResult(Reason.OUTSIDE_SCHEDULE, identity=IDENT, subject="E1001"), "B")
    assert [(r.kind, r.reason, r.subject) for r in records(out)] == [
        ("refused", Reason.OUTSIDE_SCHEDULE, "E1001")
    ]


@pytest.mark.parametrize("purpose", ["gate", "vend", "attendance"])
def test_a_grant_record_carries_subject_attrs_and_pin_verified(purpose: str) -> None:
    t = terminal(purpose)
    attrs = (("door", "open"), ("passback", "entry"), ("product", "A"))
    result = AuthResult(Reason.OK, identity=IDENT, subject="E1001", attrs=attrs, pin_verified=True)
    (record,) = records(decide(t, result, None if purpose == "gate" else "A"))
    assert record.kind == ("attendance" if purpose == "attendance" else "granted")
    assert (record.serial, record.issuer_key_id) == (IDENT.serial, IDENT.issuer_key_id)
    assert (record.subject, record.attrs, record.pin_verified) == ("E1001", attrs, True)


def test_a_pin_less_grant_is_recorded_as_such() -> None:
    t = terminal("vend")
    t.handle(KeyPressed("D"), 0.0)
    t.handle(CardArrived(), 1.0)
    result = AuthResult(Reason.OK, identity=IDENT, subject="E7", attrs=(("product", "D"),))
    (record,) = records(t.handle(ChecksDone(result), 1.5))
    assert record.kind == "granted" and record.pin_verified is False and record.subject == "E7"


def test_a_refusal_record_carries_the_policy_part_too() -> None:
    t = terminal("gate")
    t.handle(CardArrived(), 1.0)
    result = AuthResult(
        Reason.ANTI_PASSBACK,
        "last passage: entry",
        IDENT,
        subject="E9",
        attrs=(("passback", "entry"),),
    )
    (record,) = records(t.handle(ChecksDone(result), 1.5))
    assert (record.kind, record.detail, record.subject, record.attrs) == (
        "refused",
        "last passage: entry",
        "E9",
        (("passback", "entry"),),
    )
    assert record.evidence is None and record.pin_verified is False
