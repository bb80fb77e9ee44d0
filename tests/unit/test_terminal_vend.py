"""A vending terminal's grant holds the vend-enable line until the vend ends (issue 11, item 4).

The terminal state machine with literal events and times: the relay (the vend-enable
line) is held from the grant until the machine's vend-complete input (when wired) or
``vend_enable_s``, then released with a ``vend_complete`` / ``vend_timeout`` record that
names the product and the person; lockdown, emergency open, an open enclosure and an
internal error end it at once; a card tapped meanwhile waits and is checked when it ends.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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
from terminald.core.door import DoorSettings
from terminald.core.feedback import (
    CHECKING_LIGHT,
    EMERGENCY_LIGHT,
    ERROR_BEEP,
    IDLE_LIGHT,
    LOCKDOWN_LIGHT,
    VEND_ENABLED_LIGHT,
)
from terminald.core.hardware import DoorInput, InputChanged, KeyPressed, LightPattern
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
NEXT = CardIdentity(16777225, b"\x01" * 20, datetime(2030, 1, 1, tzinfo=UTC), False)
ATTRS = (("age", "20"), ("age_source", "attestation"), ("product", "A"))
GRANT = AuthResult(Reason.OK, identity=IDENT, subject="E1001", attrs=ATTRS, pin_verified=True)
DONE = InputChanged(DoorInput.VEND_COMPLETE, True)


def terminal(wired: bool = True, **door: bool) -> Terminal:
    return Terminal(
        TerminalSettings(
            pin_timeout_s=20,
            verdict_hold_s=3,
            door=DoorSettings(open_ms=5000, **door),
            purpose="vend",
            vend_enable_s=30,
            vend_complete_wired=wired,
        )
    )


def of(commands: list[Command], kind: type) -> list[Command]:
    return [c for c in commands if isinstance(c, kind)]


def records(commands: list[Command]) -> list[Record]:
    return [c for c in commands if isinstance(c, Record)]


def grant(t: Terminal, now: float, result: AuthResult = GRANT) -> list[Command]:
    t.handle(KeyPressed("A"), now)
    assert of(t.handle(CardArrived(), now), RunChecks) == [RunChecks("A")]
    t.handle(ChecksDone(PinPrompt(IDENT, 3)), now)
    for key in "1234":
        t.handle(KeyPressed(key), now)
    assert of(t.handle(KeyPressed("#"), now), RunVerify)
    return t.handle(VerifyDone(result), now)


def end_record(kind: str, detail: str) -> Record:
    return Record(
        kind, detail, None, IDENT.serial, IDENT.issuer_key_id, subject="E1001", attrs=ATTRS
    )


def test_a_grant_holds_the_vend_enable_line_until_the_vend_is_done() -> None:
    t = terminal()
    out = grant(t, 0.0)
    assert of(out, HoldRelay) == [HoldRelay()]
    assert not of(out, PulseRelay) and not of(out, ReleaseRelay)
    (granted,) = records(out)
    assert granted.kind == "granted" and granted.subject == "E1001" and granted.pin_verified
    assert t.vend.active and t.deadline() == pytest.approx(3.0)  # the verdict's hold first
    assert t.tick(3.0) == [ShowLight(VEND_ENABLED_LIGHT)]  # "choose on the machine"
    assert t.deadline() == pytest.approx(30.0)
    assert t.handle(DONE, 12.0) == [
        ReleaseRelay(),
        end_record("vend_complete", "product A: vend complete"),
        ShowLight(IDLE_LIGHT),
    ]
    assert not t.vend.active and t.deadline() is None


def test_without_the_signal_the_line_drops_after_vend_enable_s() -> None:
    t = terminal()
    grant(t, 0.0)
    t.tick(3.0)
    assert t.tick(29.9) == []
    assert t.tick(30.0) == [
        ReleaseRelay(),
        end_record("vend_timeout", "product A: no vend-complete signal within 30 s"),
        ShowLight(IDLE_LIGHT),
    ]


def test_an_unwired_input_is_ignored_and_the_window_ends_it() -> None:
    t = terminal(wired=False)
    grant(t, 0.0)
    assert t.handle(DONE, 5.0) == [] and t.vend.active
    out = t.tick(30.0)
    assert end_record("vend_timeout", "product A: vend window of 30 s ended") in out
    assert ReleaseRelay() in out


def test_the_signal_before_the_grant_enables_nothing_and_ends_nothing() -> None:
    t = terminal()
    assert t.handle(DONE, 0.0) == []
    assert t.handle(InputChanged(DoorInput.VEND_COMPLETE, False), 0.5) == []
    grant(t, 1.0)
    assert t.handle(InputChanged(DoorInput.VEND_COMPLETE, False), 2.0) == []
    assert t.vend.active  # only the line becoming active ends it
    assert ReleaseRelay() in t.handle(DONE, 4.0)


def test_the_vend_completes_before_the_verdict_hold_ends() -> None:
    t = terminal()
    grant(t, 0.0)
    out = t.handle(DONE, 1.0)
    assert ReleaseRelay() in out and not of(out, ShowLight)  # the verdict still shows
    assert t.tick(3.0) == [ShowLight(IDLE_LIGHT)]


def test_the_product_comes_from_the_policy_else_the_selection_else_the_machine() -> None:
    t = terminal()
    grant(t, 0.0, AuthResult(Reason.OK, identity=IDENT, attrs=(("product", "C"),)))
    assert "product C: vend complete" in [r.detail for r in records(t.handle(DONE, 1.0))]
    t.handle(CardLeft(), 1.5)
    grant(t, 2.0, AuthResult(Reason.OK, identity=IDENT))  # A was selected before the tap
    assert "product A: vend complete" in [r.detail for r in records(t.handle(DONE, 3.0))]
    t.handle(CardLeft(), 3.5)
    t.handle(CardArrived(), 4.0)  # no selection: the machine's own threshold
    t.handle(ChecksDone(AuthResult(Reason.OK, identity=IDENT)), 4.0)  # a PIN-less grant
    assert "the machine: vend complete" in [r.detail for r in records(t.handle(DONE, 5.0))]


def test_a_refusal_enables_nothing() -> None:
    t = terminal()
    t.handle(KeyPressed("B"), 0.0)
    t.handle(CardArrived(), 0.0)
    out = t.handle(ChecksDone(AuthResult(Reason.AGE_UNDER, identity=IDENT)), 1.0)
    assert not of(out, HoldRelay) and not t.vend.active
    assert t.handle(DONE, 2.0) == []


@pytest.mark.parametrize(
    ("mode", "light", "release"),
    # Emergency open never holds a vend-enable line (tests/unit/test_terminal_break.py).
    [(Mode.LOCKDOWN, LOCKDOWN_LIGHT, True), (Mode.EMERGENCY_OPEN, EMERGENCY_LIGHT, True)],
)
def test_lockdown_or_emergency_open_ends_the_vend_at_once(
    mode: Mode, light: LightPattern, release: bool
) -> None:
    t = terminal()
    grant(t, 0.0)
    t.tick(3.0)
    out = t.handle(ModeSet(mode), 5.0)
    assert end_record("vend_timeout", f"product A: cancelled: {mode.value}") in out
    assert (ReleaseRelay() in out) is release
    assert HoldRelay() not in out
    assert ShowLight(light) in out
    assert not t.vend.active and t.handle(DONE, 6.0) == []


def test_an_opened_enclosure_ends_the_vend_at_once() -> None:
    t = terminal()
    grant(t, 0.0)
    out = t.handle(InputChanged(DoorInput.TAMPER, True), 5.0)
    assert AlarmChanged("tamper", True) in out and ReleaseRelay() in out
    assert end_record("vend_timeout", "product A: cancelled: tamper") in out


def test_an_internal_error_ends_the_vend() -> None:
    t = terminal()
    grant(t, 0.0)
    out = t.abort("internal error: OSError", 5.0)
    assert ReleaseRelay() in out
    assert end_record("vend_timeout", "product A: cancelled: internal error: OSError") in out


def test_a_second_card_waits_for_the_vend_and_keeps_its_pin_keys() -> None:
    t = terminal()
    grant(t, 0.0)
    t.handle(CardLeft(), 2.0)
    assert t.handle(CardArrived(), 4.0) == []  # not checked while the machine vends
    for key in "5678#":
        t.handle(KeyPressed(key), 5.0)
    assert not of(t.tick(10.0), RunChecks)
    out = t.handle(DONE, 12.0)
    assert out[:2] == [ReleaseRelay(), end_record("vend_complete", "product A: vend complete")]
    assert out[-2:] == [ShowLight(CHECKING_LIGHT), RunChecks(None)]
    assert t.state is State.CHECKING
    # Its whole PIN came while it waited: it is sent when the prompt comes.
    assert of(t.handle(ChecksDone(PinPrompt(NEXT, 3)), 13.0), RunVerify) == [RunVerify("5678")]


def test_a_waiting_card_taken_away_is_not_checked() -> None:
    t = terminal()
    grant(t, 0.0)
    t.handle(CardLeft(), 2.0)
    t.handle(CardArrived(), 4.0)
    t.handle(CardLeft(), 6.0)
    assert not of(t.tick(30.0), RunChecks)


def test_a_card_waiting_when_lockdown_ends_the_vend_is_refused() -> None:
    t = terminal()
    grant(t, 0.0)
    t.handle(CardLeft(), 1.0)
    t.handle(CardArrived(), 2.0)
    out = t.handle(ModeSet(Mode.LOCKDOWN), 5.0)
    refused = [r for r in records(out) if r.kind == "refused"]
    assert [r.reason for r in refused] == [Reason.LOCKDOWN]
    assert not of(out, RunChecks) and EndTransaction() not in out


def test_no_selection_while_the_machine_vends() -> None:
    t = terminal()
    grant(t, 0.0)
    t.handle(CardLeft(), 1.0)
    t.tick(3.0)
    assert t.handle(KeyPressed("B"), 4.0) == [PlayBeep(ERROR_BEEP)]
    assert t.selection.key is None


def test_a_gate_ignores_the_vend_complete_input() -> None:
    t = Terminal(TerminalSettings(door=DoorSettings()))
    assert t.handle(DONE, 0.0) == [] and not t.door.alarms
    t.handle(CardArrived(), 1.0)
    out = t.handle(ChecksDone(AuthResult(Reason.OK, identity=IDENT)), 1.5)
    assert of(out, PulseRelay) and not of(out, HoldRelay)
    assert t.handle(DONE, 2.0) == []


def test_settings_refuse_an_unknown_purpose_and_zero_times() -> None:
    with pytest.raises(ValueError, match="purpose"):
        TerminalSettings(purpose="kiosk")
    with pytest.raises(ValueError, match="vend_enable_s"):
        TerminalSettings(purpose="vend", vend_enable_s=0)


def test_rex_never_energises_the_vend_enable_line() -> None:
    t = terminal(rex_wired=True)
    assert t.handle(InputChanged(DoorInput.REX, True), 0.0) == []
    assert t.handle(InputChanged(DoorInput.REX, False), 0.5) == []


_EVENTS = st.sampled_from(
    [
        CardArrived(),
        CardLeft(),
        ChecksDone(PinPrompt(IDENT, 3)),
        ChecksDone(AuthResult(Reason.OK, identity=IDENT, attrs=(("product", "A"),))),
        ChecksDone(AuthResult(Reason.AGE_UNDER, identity=IDENT)),
        VerifyDone(GRANT),
        VerifyDone(AuthResult(Reason.PIN_WRONG, identity=IDENT)),
        KeyPressed("A"),
        KeyPressed("1"),
        KeyPressed("#"),
        KeyPressed("*"),
        DONE,
        InputChanged(DoorInput.VEND_COMPLETE, False),
        InputChanged(DoorInput.TAMPER, True),
        InputChanged(DoorInput.TAMPER, False),
        InputChanged(DoorInput.REX, True),
        ModeSet(Mode.LOCKDOWN),
        ModeSet(Mode.NORMAL),
        None,  # time passes: tick at the deadline
    ]
)


@given(st.lists(st.tuples(_EVENTS, st.floats(0, 20)), max_size=40), st.booleans())
@settings(max_examples=300, deadline=None)
def test_the_line_is_held_exactly_while_a_vend_is_enabled(
    events: list[tuple[object, float]], wired: bool
) -> None:
    t = terminal(wired)
    now, held, enabled, ended = 0.0, False, 0, 0
    for event, gap in events:
        now += gap
        if event is None:
            now = max(now, t.deadline() or now)
            out = t.tick(now)
        else:
            out = t.handle(event, now)  # type: ignore[arg-type]
        for c in out:
            assert not isinstance(c, PulseRelay)  # a vending terminal never pulses
            if isinstance(c, HoldRelay):
                held, enabled = True, enabled + 1
            elif isinstance(c, ReleaseRelay):
                held = False
            elif isinstance(c, Record) and c.kind in ("vend_complete", "vend_timeout"):
                ended += 1
        assert held is t.vend.active and enabled - ended == int(held)
        if t.vend.active:
            assert not of(out, RunChecks)  # no card is checked while the machine vends
