"""Door alarms are seen and heard, and an open enclosure refuses grants (issue 9, section 5).

The terminal state machine with literal events and times: each alarm drives its light
while the terminal rests and its beeps again and again until it clears; the resting
light returns then. ``[door] tamper_blocks_grants`` refuses with ``tamper``, never
asking for a PIN it would not honour.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from terminald.core.alarms import leading
from terminald.core.auth import AuthResult, CardIdentity
from terminald.core.commands import (
    AlarmChanged,
    Command,
    EndTransaction,
    PlayBeep,
    PulseRelay,
    Record,
    RunChecks,
    RunVerify,
    ShowLight,
)
from terminald.core.door import Alarm, DoorSettings
from terminald.core.feedback import (
    ALARM_FEEDBACK,
    IDLE_LIGHT,
    LOCKDOWN_LIGHT,
    PIN_PROMPT_LIGHT,
    REMOVE_CARD_LIGHT,
    feedback_for,
)
from terminald.core.hardware import DoorInput, InputChanged, KeyPressed
from terminald.core.reasons import DESCRIPTIONS, Reason
from terminald.core.terminal import (
    CardArrived,
    CardLeft,
    ChecksDone,
    Mode,
    ModeSet,
    PinPrompt,
    State,
    Terminal,
    TerminalSettings,
    VerifyDone,
)

IDENT = CardIdentity(16777224, b"\x01" * 20, datetime(2030, 1, 1, tzinfo=UTC), False)
DOOR = DoorSettings(open_ms=5000, held_open_s=30)
SETTINGS = TerminalSettings(pin_timeout_s=20, verdict_hold_s=3, door=DOOR)
FORCED = ALARM_FEEDBACK[Alarm.FORCED_OPEN]
HELD = ALARM_FEEDBACK[Alarm.HELD_OPEN]
TAMPER = ALARM_FEEDBACK[Alarm.TAMPER]


def of(commands: list[Command], kind: type) -> list[Command]:
    return [c for c in commands if isinstance(c, kind)]


def started(settings: TerminalSettings = SETTINGS, mode: Mode = Mode.NORMAL) -> Terminal:
    t = Terminal(settings, mode)
    t.start(0.0)
    return t


def reason_of(out: list[Command]) -> Reason | None:
    records = [c for c in out if isinstance(c, Record) and c.kind in ("granted", "refused")]
    assert len(records) == 1
    return records[0].reason


# -- seen and heard ---------------------------------------------------------------------------


def test_a_forced_door_sounds_until_it_closes_then_the_resting_light_returns() -> None:
    t = started()
    out = t.handle(InputChanged(DoorInput.DOOR, True), 1.0)
    assert out[:2] == [AlarmChanged("forced_open", True), Record("door_opened", "forced")]
    assert PlayBeep(FORCED.beeps) in out and ShowLight(FORCED.light) in out
    period = FORCED.every_ms / 1000
    assert t.deadline() == pytest.approx(1.0 + period)
    assert t.tick(1.0 + period) == [PlayBeep(FORCED.beeps)]  # again, and again
    assert t.tick(1.0 + 2 * period) == [PlayBeep(FORCED.beeps)]
    out = t.handle(InputChanged(DoorInput.DOOR, False), 6.0)
    assert AlarmChanged("forced_open", False) in out and out[-1] == ShowLight(IDLE_LIGHT)
    assert t.deadline() is None and t.tick(100.0) == []  # silent once cleared


def test_a_door_held_open_shows_and_sounds_its_own_pattern() -> None:
    t = started()
    t.door.released(0.0)
    t.handle(InputChanged(DoorInput.DOOR, True), 1.0)
    out = t.tick(31.0)
    assert out == [AlarmChanged("held_open", True), PlayBeep(HELD.beeps), ShowLight(HELD.light)]
    assert t.tick(31.0 + HELD.every_ms / 1000) == [PlayBeep(HELD.beeps)]
    out = t.handle(InputChanged(DoorInput.DOOR, False), 40.0)
    assert out[-1] == ShowLight(IDLE_LIGHT) and t.deadline() is None


def test_the_most_urgent_alarm_leads_and_the_next_takes_over_when_it_clears() -> None:
    assert leading({Alarm.HELD_OPEN, Alarm.TAMPER, Alarm.FORCED_OPEN}) is Alarm.FORCED_OPEN
    t = started()
    t.handle(InputChanged(DoorInput.TAMPER, True), 1.0)
    out = t.handle(InputChanged(DoorInput.DOOR, True), 2.0)
    assert PlayBeep(FORCED.beeps) in out and ShowLight(FORCED.light) in out
    out = t.handle(InputChanged(DoorInput.DOOR, False), 3.0)
    assert PlayBeep(TAMPER.beeps) in out and out[-1] == ShowLight(TAMPER.light)


def test_the_alarm_patterns_are_their_own() -> None:
    verdict_lights = {feedback_for(r).light for r in Reason}
    lights = [f.light for f in ALARM_FEEDBACK.values()]
    beeps = [f.beeps for f in ALARM_FEEDBACK.values()]
    assert len(set(lights)) == len(set(beeps)) == len(Alarm) == len(ALARM_FEEDBACK)
    assert not set(lights) & (verdict_lights | {IDLE_LIGHT, LOCKDOWN_LIGHT, REMOVE_CARD_LIGHT})
    assert all(f.light.repeat and f.every_ms > f.beeps.total_ms for f in ALARM_FEEDBACK.values())


def test_an_alarm_leaves_the_pin_prompt_light_alone_and_shows_after_the_verdict() -> None:
    t = started(TerminalSettings(door=DoorSettings(tamper_blocks_grants=False)))
    t.handle(CardArrived(), 1.0)
    t.handle(ChecksDone(PinPrompt(IDENT, 3)), 1.5)
    out = t.handle(InputChanged(DoorInput.DOOR, True), 2.0)
    assert PlayBeep(FORCED.beeps) in out and not of(out, ShowLight)  # heard, not shown yet
    assert t.state is State.PIN_ENTRY
    for key in "1234#":
        out = t.handle(KeyPressed(key), 2.5)
    assert of(out, RunVerify)
    t.handle(VerifyDone(AuthResult(Reason.PIN_WRONG, identity=IDENT)), 3.0)
    assert ShowLight(FORCED.light) in t.tick(6.0)  # the verdict's hold ended: the alarm rests


def test_an_alarm_outranks_the_lockdown_light_until_it_clears() -> None:
    t = started(mode=Mode.LOCKDOWN)
    assert ShowLight(TAMPER.light) in t.handle(InputChanged(DoorInput.TAMPER, True), 1.0)
    assert t.handle(ModeSet(Mode.NORMAL), 2.0)[-1] == ShowLight(TAMPER.light)
    t.handle(ModeSet(Mode.LOCKDOWN), 3.0)
    out = t.handle(InputChanged(DoorInput.TAMPER, False), 4.0)
    assert out[-1] == ShowLight(LOCKDOWN_LIGHT)


# -- tamper refuses grants --------------------------------------------------------------------


def test_tamper_refuses_a_card_before_touching_it() -> None:
    t = started()
    t.handle(InputChanged(DoorInput.TAMPER, True), 1.0)
    out = t.handle(CardArrived(), 2.0)
    assert not of(out, RunChecks) and not of(out, EndTransaction) and not of(out, PulseRelay)
    assert reason_of(out) is Reason.TAMPER
    assert ShowLight(feedback_for(Reason.TAMPER).light) in out
    t.handle(InputChanged(DoorInput.TAMPER, False), 3.0)
    t.tick(10.0)
    t.handle(KeyPressed("1"), 10.5)  # a reminder, then the card is taken and put back
    t.handle(CardLeft(), 11.0)
    assert of(t.handle(CardArrived(), 12.0), RunChecks)  # closed again: back to normal


def test_tamper_during_the_checks_refuses_before_any_pin() -> None:
    t = started()
    t.handle(CardArrived(), 1.0)
    for key in "1234#":
        t.handle(KeyPressed(key), 1.1)
    t.handle(InputChanged(DoorInput.TAMPER, True), 1.2)
    out = t.handle(ChecksDone(PinPrompt(IDENT, 3)), 1.5)
    assert not of(out, RunVerify) and reason_of(out) is Reason.TAMPER
    assert of(out, EndTransaction)


def test_tamper_during_pin_entry_ends_it_unsent() -> None:
    t = started()
    t.handle(CardArrived(), 1.0)
    out = t.handle(ChecksDone(PinPrompt(IDENT, 3)), 1.5)
    assert ShowLight(PIN_PROMPT_LIGHT) in out
    for key in "1234":
        t.handle(KeyPressed(key), 2.0)
    out = t.handle(InputChanged(DoorInput.TAMPER, True), 2.5)
    assert of(out, EndTransaction) and reason_of(out) is Reason.TAMPER
    assert not of(out + t.handle(KeyPressed("#"), 2.6), RunVerify)


def test_tamper_during_the_verify_turns_a_grant_into_a_refusal() -> None:
    t = started()
    t.handle(CardArrived(), 1.0)
    t.handle(ChecksDone(PinPrompt(IDENT, 3)), 1.5)
    for key in "1234#":
        t.handle(KeyPressed(key), 2.0)
    t.handle(InputChanged(DoorInput.TAMPER, True), 2.2)
    out = t.handle(VerifyDone(AuthResult(Reason.OK, identity=IDENT)), 2.5)
    assert not of(out, PulseRelay) and reason_of(out) is Reason.TAMPER


def test_rex_still_opens_with_the_enclosure_open() -> None:
    t = started()
    t.handle(InputChanged(DoorInput.TAMPER, True), 1.0)
    assert PulseRelay(DOOR.open_ms) in t.handle(InputChanged(DoorInput.REX, True), 2.0)


def test_tamper_blocks_grants_can_be_turned_off() -> None:
    door = DoorSettings(tamper_blocks_grants=False)
    t = started(TerminalSettings(pin_timeout_s=20, verdict_hold_s=3, door=door))
    t.handle(InputChanged(DoorInput.TAMPER, True), 1.0)
    assert of(t.handle(CardArrived(), 2.0), RunChecks)
    t.handle(ChecksDone(PinPrompt(IDENT, 3)), 2.5)
    for key in "1234#":
        t.handle(KeyPressed(key), 3.0)
    out = t.handle(VerifyDone(AuthResult(Reason.OK, identity=IDENT)), 3.5)
    assert of(out, PulseRelay) and reason_of(out) is Reason.OK


def test_the_tamper_reason_is_described() -> None:
    assert DESCRIPTIONS[Reason.TAMPER].startswith("the terminal's enclosure is open")
    assert feedback_for(Reason.TAMPER) != feedback_for(Reason.LOCKDOWN)
