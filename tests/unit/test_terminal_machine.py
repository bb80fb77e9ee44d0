"""The terminal state machine and door supervision, with literal events and times."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from terminald.core.auth import AuthResult, CardIdentity
from terminald.core.commands import (
    AlarmChanged,
    Command,
    EndTransaction,
    HoldRelay,
    PlayBeep,
    PulseRelay,
    Record,
    ReleaseRelay,
    RunChecks,
    RunVerify,
    ShowLight,
)
from terminald.core.door import Alarm, DoorSettings
from terminald.core.feedback import ALARM_FEEDBACK, ERROR_BEEP, IDLE_LIGHT, KEY_BEEP, feedback_for
from terminald.core.hardware import DoorInput, InputChanged, KeyPressed
from terminald.core.reasons import Reason
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
SETTINGS = TerminalSettings(
    pin_timeout_s=20, verdict_hold_s=3, door=DoorSettings(open_ms=5000, held_open_s=30)
)


def of(commands: list[Command], kind: type) -> list[Command]:
    return [c for c in commands if isinstance(c, kind)]


def to_pin_entry(t: Terminal, now: float = 0.0) -> None:
    assert of(t.handle(CardArrived(), now), RunChecks)
    t.handle(ChecksDone(PinPrompt(IDENT, 3)), now)
    assert t.state is State.PIN_ENTRY


def type_keys(t: Terminal, keys: str, now: float = 1.0) -> list[Command]:
    out: list[Command] = []
    for key in keys:
        out += t.handle(KeyPressed(key), now)
    return out


def test_start_leaves_the_relay_released_and_shows_idle() -> None:
    t = Terminal(SETTINGS)
    assert t.start(0.0) == [ReleaseRelay(), ShowLight(IDLE_LIGHT)]


def test_full_door_cycle() -> None:
    t = Terminal(SETTINGS)
    to_pin_entry(t)
    beeps = type_keys(t, "1234")
    assert beeps == [PlayBeep(KEY_BEEP)] * 4 and t.pin_digits_entered == 4
    submitted = t.handle(KeyPressed("#"), 2.0)
    verify = of(submitted, RunVerify)
    assert verify == [RunVerify("1234")] and "1234" not in repr(submitted)
    assert t.state is State.VERIFYING
    done = t.handle(VerifyDone(AuthResult(Reason.OK, identity=IDENT)), 2.5)
    assert done[0] == EndTransaction()
    assert PulseRelay(5000) in done
    assert ShowLight(feedback_for(Reason.OK).light) in done
    assert Record("granted", "", Reason.OK, IDENT.serial, IDENT.issuer_key_id) in done
    assert t.deadline() == pytest.approx(5.5)
    assert t.tick(5.5) == [ShowLight(IDLE_LIGHT)] and t.state is State.IDLE


def test_star_clears_and_short_or_long_pins_are_never_sent() -> None:
    t = Terminal(SETTINGS)
    to_pin_entry(t)
    type_keys(t, "12*")
    assert t.pin_digits_entered == 0
    out = type_keys(t, "123#")
    assert not of(out, RunVerify) and out[-1] == PlayBeep(ERROR_BEEP)
    out = type_keys(t, "45")  # a fifth digit is refused
    assert t.pin_digits_entered == 4 and out[-1] == PlayBeep(ERROR_BEEP)
    assert of(t.handle(KeyPressed("#"), 3.0), RunVerify) == [RunVerify("1234")]


def test_pin_timeout_after_the_last_key() -> None:
    t = Terminal(SETTINGS)
    to_pin_entry(t, now=0.0)
    type_keys(t, "12", now=10.0)
    assert t.deadline() == pytest.approx(30.0)
    assert t.tick(29.9) == []
    out = t.tick(30.0)
    assert out[0] == EndTransaction()
    assert Record("refused", "", Reason.PIN_TIMEOUT, IDENT.serial, IDENT.issuer_key_id) in out
    assert not of(out, PulseRelay)


def test_card_pulled_during_pin_entry_aborts() -> None:
    t = Terminal(SETTINGS)
    to_pin_entry(t)
    type_keys(t, "12")
    out = t.handle(CardLeft(), 4.0)
    assert out[0] == EndTransaction()
    assert of(out, Record)[0].reason is Reason.CARD_REMOVED  # type: ignore[attr-defined]
    # Keys with no card on the reader go nowhere, and say so.
    assert type_keys(t, "34#") == [PlayBeep(ERROR_BEEP)] * 3


@pytest.mark.parametrize("reason", [r for r in Reason if r is not Reason.OK])
def test_every_refusal_has_its_feedback_and_never_opens(reason: Reason) -> None:
    t = Terminal(SETTINGS)
    t.handle(CardArrived(), 0.0)
    out = t.handle(ChecksDone(AuthResult(reason)), 0.1)
    assert not of(out, PulseRelay)
    fb = feedback_for(reason)
    assert ShowLight(fb.light) in out and PlayBeep(fb.beeps) in out
    assert of(out, Record)[0].reason is reason  # type: ignore[attr-defined]


def test_feedback_patterns_are_all_distinct() -> None:
    patterns = {feedback_for(r) for r in Reason}
    assert len(patterns) == len(Reason)


def test_lockdown_refuses_without_touching_the_card_and_blocks_a_late_ok() -> None:
    t = Terminal(SETTINGS, mode=Mode.LOCKDOWN)
    t.start(0.0)
    out = t.handle(CardArrived(), 1.0)
    assert not of(out, RunChecks) and not of(out, EndTransaction)
    assert of(out, Record)[0].reason is Reason.LOCKDOWN  # type: ignore[attr-defined]

    t2 = Terminal(SETTINGS)
    to_pin_entry(t2)
    type_keys(t2, "1234#")
    t2.handle(ModeSet(Mode.LOCKDOWN), 2.0)
    out = t2.handle(VerifyDone(AuthResult(Reason.OK, identity=IDENT)), 2.1)
    assert not of(out, PulseRelay)
    assert of(out, Record)[0].reason is Reason.LOCKDOWN  # type: ignore[attr-defined]


def test_emergency_open_holds_the_relay_and_releases_it_after() -> None:
    t = Terminal(SETTINGS)
    t.start(0.0)
    assert HoldRelay() in t.handle(ModeSet(Mode.EMERGENCY_OPEN), 1.0)
    out = t.handle(CardArrived(), 2.0)
    assert not of(out, RunChecks)
    # The door opening while held open is no alarm.
    assert not of(t.handle(InputChanged(DoorInput.DOOR, True), 3.0), AlarmChanged)
    assert ReleaseRelay() in t.handle(ModeSet(Mode.NORMAL), 4.0)


# --- door supervision ------------------------------------------------------------------------


def test_forced_open_alarm_until_closed() -> None:
    t = Terminal(SETTINGS)
    out = t.handle(InputChanged(DoorInput.DOOR, True), 1.0)
    assert AlarmChanged("forced_open", True) in out
    out = t.handle(InputChanged(DoorInput.DOOR, False), 2.0)
    assert AlarmChanged("forced_open", False) in out


def test_authorised_opening_then_held_open_then_relock_on_close() -> None:
    t = Terminal(SETTINGS)
    to_pin_entry(t)
    type_keys(t, "1234#")
    t.handle(VerifyDone(AuthResult(Reason.OK, identity=IDENT)), 2.0)
    assert not of(t.handle(InputChanged(DoorInput.DOOR, True), 3.0), AlarmChanged)
    assert t.door.deadline() == pytest.approx(33.0)
    assert AlarmChanged("held_open", True) in t.tick(33.0)
    out = t.handle(InputChanged(DoorInput.DOOR, False), 40.0)
    assert AlarmChanged("held_open", False) in out
    assert ReleaseRelay() not in out  # the pulse had long ended


def test_closing_within_the_pulse_relocks_at_once() -> None:
    t = Terminal(SETTINGS)
    to_pin_entry(t)
    type_keys(t, "1234#")
    t.handle(VerifyDone(AuthResult(Reason.OK, identity=IDENT)), 2.0)
    t.handle(InputChanged(DoorInput.DOOR, True), 3.0)
    assert ReleaseRelay() in t.handle(InputChanged(DoorInput.DOOR, False), 4.0)
    # and reopening on the same grant is forced
    assert AlarmChanged("forced_open", True) in t.handle(InputChanged(DoorInput.DOOR, True), 4.5)


def test_opening_after_the_pulse_is_forced() -> None:
    t = Terminal(SETTINGS)
    to_pin_entry(t)
    type_keys(t, "1234#")
    t.handle(VerifyDone(AuthResult(Reason.OK, identity=IDENT)), 2.0)
    assert AlarmChanged("forced_open", True) in t.handle(InputChanged(DoorInput.DOOR, True), 7.5)


def test_rex_opens_in_normal_and_lockdown_and_authorises_the_opening() -> None:
    for mode in (Mode.NORMAL, Mode.LOCKDOWN):
        t = Terminal(SETTINGS, mode=mode)
        t.start(0.0)
        assert PulseRelay(5000) in t.handle(InputChanged(DoorInput.REX, True), 1.0)
        assert t.handle(InputChanged(DoorInput.REX, False), 1.2) == []
        assert not of(t.handle(InputChanged(DoorInput.DOOR, True), 2.0), AlarmChanged)


def test_tamper_raises_and_clears_an_alarm() -> None:
    t = Terminal(SETTINGS)
    tamper = ALARM_FEEDBACK[Alarm.TAMPER]
    assert t.handle(InputChanged(DoorInput.TAMPER, True), 1.0) == [
        AlarmChanged("tamper", True),
        PlayBeep(tamper.beeps),
        ShowLight(tamper.light),
    ]
    assert t.handle(InputChanged(DoorInput.TAMPER, True), 1.5) == []
    assert t.handle(InputChanged(DoorInput.TAMPER, False), 2.0) == [
        AlarmChanged("tamper", False),
        ShowLight(IDLE_LIGHT),
    ]


def test_unwired_door_contact_is_ignored() -> None:
    t = Terminal(TerminalSettings(door=DoorSettings(contact_wired=False)))
    assert t.handle(InputChanged(DoorInput.DOOR, True), 1.0) == []


def test_a_refusal_by_mode_never_names_the_previous_card() -> None:
    t = Terminal(SETTINGS)
    t.start(0.0)
    to_pin_entry(t)  # IDENT's PIN prompt...
    t.handle(CardLeft(), 1.0)  # ...abandoned
    t.handle(ModeSet(Mode.LOCKDOWN), 2.0)
    out = t.handle(CardArrived(), 3.0)
    (record,) = of(out, Record)
    assert record.reason is Reason.LOCKDOWN  # type: ignore[attr-defined]
    assert record.serial is None  # type: ignore[attr-defined]


# --- races and recoveries (from the daemon review) --------------------------------------------


@pytest.mark.parametrize("mode", [Mode.LOCKDOWN, Mode.EMERGENCY_OPEN])
def test_a_mode_change_during_checks_or_pin_entry_asks_for_no_pin(mode: Mode) -> None:
    t = Terminal(SETTINGS)
    t.start(0.0)
    t.handle(CardArrived(), 0.0)
    t.handle(ModeSet(mode), 0.5)  # while the card is being checked
    out = t.handle(ChecksDone(PinPrompt(IDENT, 3)), 1.0)
    assert EndTransaction() in out and t.state is State.VERDICT
    assert of(out, Record)[-1].reason is Reason(mode.value)  # type: ignore[attr-defined]

    t = Terminal(SETTINGS)
    t.start(0.0)
    to_pin_entry(t)
    type_keys(t, "12")
    out = t.handle(ModeSet(mode), 2.0)  # while the PIN is being typed
    assert EndTransaction() in out and t.state is State.VERDICT
    assert not of(type_keys(t, "34#", 2.5), RunVerify)


def test_a_card_swapped_during_the_checks_is_checked_next() -> None:
    t = Terminal(SETTINGS)
    t.start(0.0)
    t.handle(CardArrived(), 0.0)  # card A, being checked
    t.handle(CardLeft(), 0.2)
    assert t.handle(CardArrived(), 0.4) == []  # card B: waits for A's result
    # A's checks ended before they saw the removal: their PIN prompt is not for B.
    out = t.handle(ChecksDone(PinPrompt(IDENT, 3)), 0.5)
    records = of(out, Record)
    assert records[0].reason is Reason.CARD_REMOVED  # type: ignore[attr-defined]
    assert out.index(EndTransaction()) < out.index(RunChecks())  # A released, then B checked
    assert t.state is State.CHECKING
    t.handle(ChecksDone(PinPrompt(IDENT, 3)), 0.8)
    assert t.state is State.PIN_ENTRY  # B's own prompt


def test_a_verify_result_out_of_turn_still_releases_the_card() -> None:
    t = Terminal(SETTINGS)
    t.start(0.0)
    assert t.handle(VerifyDone(AuthResult(Reason.OK, identity=IDENT)), 1.0) == [EndTransaction()]


def test_lockdown_cuts_a_grant_but_not_an_exit_and_the_door_is_then_forced() -> None:
    t = Terminal(SETTINGS)
    t.start(0.0)
    to_pin_entry(t)
    type_keys(t, "1234#")
    t.handle(VerifyDone(AuthResult(Reason.OK, identity=IDENT)), 1.0)  # 5 s release
    assert ReleaseRelay() in t.handle(ModeSet(Mode.LOCKDOWN), 1.5)
    out = t.handle(InputChanged(DoorInput.DOOR, True), 2.0)
    assert AlarmChanged("forced_open", True) in out

    t = Terminal(SETTINGS)
    t.start(0.0)
    t.handle(InputChanged(DoorInput.REX, True), 1.0)
    assert ReleaseRelay() not in t.handle(ModeSet(Mode.LOCKDOWN), 1.5)
    assert not of(t.handle(InputChanged(DoorInput.DOOR, True), 2.0), AlarmChanged)


def test_abort_ends_a_transaction_with_a_card_error_and_relocks() -> None:
    t = Terminal(SETTINGS)
    t.start(0.0)
    t.handle(CardArrived(), 0.0)
    out = t.abort("internal error: RuntimeError", 0.5)
    assert EndTransaction() in out and t.state is State.VERDICT
    assert of(out, Record)[0].reason is Reason.CARD_ERROR  # type: ignore[attr-defined]
    assert t.abort("again", 0.6) == []  # nothing in progress


def test_unwiring_an_input_clears_its_alarm() -> None:
    t = Terminal(SETTINGS)
    t.start(0.0)
    t.handle(InputChanged(DoorInput.TAMPER, True), 1.0)
    assert t.door.alarms
    door = DoorSettings(open_ms=5000, held_open_s=30, tamper_wired=False)
    out = t.reconfigure(TerminalSettings(pin_timeout_s=20, verdict_hold_s=3, door=door))
    assert out == [AlarmChanged("tamper", False), ShowLight(IDLE_LIGHT)]
    assert not t.door.alarms and t.deadline() is None  # and no more alarm beeps
