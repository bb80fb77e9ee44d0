"""Choosing a product or an attendance event with A-D before the tap (issue 11, items 4-5).

The terminal state machine with literal events and times: on a vending or attendance
terminal a key A-D while idle with no card is kept ``selection_timeout_s`` and goes with
the next card's checks (``RunChecks.selection``); it expires, ``*`` clears it, another
key replaces it, a verdict consumes it. A gate refuses A-D as before, and keys after the
tap stay PIN keys.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from terminald.core.auth import AuthResult, CardIdentity
from terminald.core.commands import Command, PlayBeep, RunChecks, ShowLight
from terminald.core.door import DoorSettings
from terminald.core.feedback import (
    ERROR_BEEP,
    IDLE_LIGHT,
    KEY_BEEP,
    LOCKDOWN_LIGHT,
    SELECTED_BEEP,
    SELECTED_LIGHT,
    feedback_for,
)
from terminald.core.hardware import DoorInput, InputChanged, KeyPressed
from terminald.core.reasons import Reason
from terminald.core.selection import Selection
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
)

IDENT = CardIdentity(16777224, b"\x01" * 20, datetime(2030, 1, 1, tzinfo=UTC), False)
DOOR = DoorSettings(open_ms=5000, held_open_s=30)
SELECTED = [ShowLight(SELECTED_LIGHT), PlayBeep(SELECTED_BEEP)]


def terminal(purpose: str = "vend") -> Terminal:
    return Terminal(
        TerminalSettings(
            pin_timeout_s=20, verdict_hold_s=3, door=DOOR, purpose=purpose, selection_timeout_s=10
        )
    )


def checks_of(commands: list[Command]) -> list[RunChecks]:
    return [c for c in commands if isinstance(c, RunChecks)]


def tap(t: Terminal, now: float) -> RunChecks:
    (checks,) = checks_of(t.handle(CardArrived(), now))
    return checks


def refuse_and_remove(t: Terminal, now: float) -> None:
    t.handle(ChecksDone(AuthResult(Reason.NO_ACCESS, identity=IDENT)), now)
    t.handle(CardLeft(), now)
    t.tick(now + 3)  # the verdict's hold ends
    assert t.state is State.IDLE


@pytest.mark.parametrize("purpose", ["vend", "attendance"])
def test_a_key_while_idle_is_kept_and_sent_with_the_next_card(purpose: str) -> None:
    t = terminal(purpose)
    assert t.handle(KeyPressed("B"), 1.0) == SELECTED
    assert t.selection.key == "B" and t.deadline() == pytest.approx(11.0)
    assert t.resting_light() == SELECTED_LIGHT
    assert tap(t, 5.0) == RunChecks("B")
    assert t.selection.key is None  # the card took it


def test_the_selection_expires_and_the_idle_light_returns() -> None:
    t = terminal()
    t.handle(KeyPressed("A"), 0.0)
    assert t.tick(9.99) == [] and t.selection.key == "A"
    assert t.tick(10.0) == [ShowLight(IDLE_LIGHT)]
    assert t.selection.key is None and t.deadline() is None
    assert tap(t, 10.5) == RunChecks(None)


def test_star_while_idle_clears_it_and_without_one_is_an_error() -> None:
    t = terminal()
    t.handle(KeyPressed("C"), 0.0)
    assert t.handle(KeyPressed("*"), 1.0) == [ShowLight(IDLE_LIGHT), PlayBeep(KEY_BEEP)]
    assert t.selection.key is None and t.deadline() is None
    assert t.handle(KeyPressed("*"), 2.0) == [PlayBeep(ERROR_BEEP)]
    assert tap(t, 3.0) == RunChecks(None)


def test_another_key_replaces_it_with_a_fresh_timeout() -> None:
    t = terminal()
    t.handle(KeyPressed("A"), 0.0)
    assert t.handle(KeyPressed("D"), 8.0) == SELECTED
    assert t.deadline() == pytest.approx(18.0)
    assert t.tick(10.0) == []  # the first key's timeout no longer counts
    assert tap(t, 12.0) == RunChecks("D")


def test_a_verdict_consumes_it_the_next_card_has_none() -> None:
    t = terminal()
    t.handle(KeyPressed("A"), 0.0)
    assert tap(t, 1.0) == RunChecks("A")
    refuse_and_remove(t, 2.0)
    assert tap(t, 6.0) == RunChecks(None)


def test_a_card_refused_at_once_consumes_it_too() -> None:
    t = terminal()
    t.handle(KeyPressed("A"), 0.0)
    t.handle(InputChanged(DoorInput.TAMPER, True), 0.5)  # the enclosure opens
    assert t.selection.key == "A"
    out = t.handle(CardArrived(), 1.0)
    assert not checks_of(out) and t.selection.key is None  # refused: tamper
    t.handle(InputChanged(DoorInput.TAMPER, False), 2.0)
    t.handle(CardLeft(), 2.5)
    t.tick(5.0)
    assert tap(t, 6.0) == RunChecks(None)


def test_keys_after_the_tap_are_pin_keys_and_refuse_a_to_d() -> None:
    t = terminal()
    tap(t, 0.0)
    assert t.handle(KeyPressed("A"), 0.5) == [PlayBeep(ERROR_BEEP)]  # not a PIN digit
    assert t.selection.key is None
    t.handle(ChecksDone(PinPrompt(IDENT, 3)), 1.0)
    assert t.handle(KeyPressed("B"), 1.5) == [PlayBeep(ERROR_BEEP)]
    assert t.pin_digits_entered == 0 and t.selection.key is None


def test_a_gate_refuses_a_to_d_as_before() -> None:
    t = terminal("gate")
    for key in "ABCD":
        assert t.handle(KeyPressed(key), 0.0) == [PlayBeep(ERROR_BEEP)]
    assert t.selection.key is None and t.deadline() is None
    assert tap(t, 1.0) == RunChecks()


def test_no_selection_in_lockdown_and_lockdown_forgets_one() -> None:
    t = terminal()
    t.handle(KeyPressed("A"), 0.0)
    assert ShowLight(LOCKDOWN_LIGHT) in t.handle(ModeSet(Mode.LOCKDOWN), 1.0)
    assert t.selection.key is None
    assert t.handle(KeyPressed("B"), 2.0) == [PlayBeep(ERROR_BEEP)]


def test_a_key_during_the_previous_verdict_with_its_card_gone_selects() -> None:
    t = terminal()
    tap(t, 0.0)
    t.handle(ChecksDone(AuthResult(Reason.AGE_UNDER, identity=IDENT)), 1.0)
    t.handle(CardLeft(), 1.5)
    assert t.state is State.VERDICT
    assert t.handle(KeyPressed("C"), 2.0) == SELECTED  # the next person's turn
    assert t.state.value == "idle"
    assert tap(t, 3.0) == RunChecks("C")


def test_with_the_card_still_on_a_to_d_says_remove_the_card() -> None:
    t = terminal()
    tap(t, 0.0)
    t.handle(ChecksDone(AuthResult(Reason.NO_SELECTION, identity=IDENT)), 1.0)
    assert t.handle(KeyPressed("A"), 2.0) != SELECTED
    assert t.selection.key is None


def test_no_selection_refusal_says_you_can_act() -> None:
    light = feedback_for(Reason.NO_SELECTION).light
    assert light == feedback_for(Reason.PIN_WRONG).light  # the amber "you can act" family
    assert light != SELECTED_LIGHT


def test_the_selection_object_refuses_other_keys() -> None:
    s = Selection()
    with pytest.raises(ValueError, match="A, B, C, D"):
        s.choose("5", 0.0, 10.0)
    assert s.key is None


# A model: the key a card tapped at ``tap_at`` carries, after keys at given times.
_KEYS = st.sampled_from(["A", "B", "C", "D", "*", "1", "#"])


@given(st.lists(st.tuples(_KEYS, st.floats(0, 30)), max_size=12), st.floats(0, 40))
@settings(max_examples=200, deadline=None)
def test_the_card_carries_the_last_unexpired_uncleared_choice(
    presses: list[tuple[str, float]], tap_gap: float
) -> None:
    t = terminal()
    now, expect, until = 0.0, None, None
    for key, gap in presses:
        now += gap
        t.tick(now)
        if until is not None and now >= until:
            expect = until = None
        t.handle(KeyPressed(key), now)
        if key in "ABCD":
            expect, until = key, now + 10
        elif key == "*":
            expect = until = None
    now += tap_gap
    t.tick(now)
    if until is not None and now >= until:
        expect = None
    assert tap(t, now) == RunChecks(expect)
