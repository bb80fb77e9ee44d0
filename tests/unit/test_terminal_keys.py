"""People at the keypad: no try is ever spent by when a key came (issue 9, section 4).

The terminal state machine with literal events and times: keys typed while the card is
checked are kept and used at the prompt, dropped on a refusal; every ignored key beeps;
after a verdict a key with the card still on says "remove the card".
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from terminald.core.auth import AuthResult, CardIdentity
from terminald.core.commands import (
    Command,
    EndTransaction,
    PlayBeep,
    PulseRelay,
    Record,
    RunChecks,
    RunVerify,
    ShowLight,
)
from terminald.core.door import DoorSettings
from terminald.core.feedback import (
    CHECKING_LIGHT,
    ERROR_BEEP,
    IDLE_LIGHT,
    KEY_BEEP,
    PIN_PROMPT_LIGHT,
    PROMPT_BEEP,
    REMOVE_CARD_BEEP,
    REMOVE_CARD_LIGHT,
    feedback_for,
)
from terminald.core.hardware import KeyPressed
from terminald.core.pin_entry import PinEntry
from terminald.core.reasons import Reason
from terminald.core.terminal import (
    CardArrived,
    CardLeft,
    ChecksDone,
    Event,
    Mode,
    ModeSet,
    PinPrompt,
    State,
    Terminal,
    TerminalSettings,
    VerifyDone,
)

IDENT = CardIdentity(16777224, b"\x01" * 20, datetime(2030, 1, 1, tzinfo=UTC), False)
OTHER = CardIdentity(16777225, b"\x01" * 20, datetime(2030, 1, 1, tzinfo=UTC), False)
SETTINGS = TerminalSettings(
    pin_timeout_s=20, verdict_hold_s=3, door=DoorSettings(open_ms=5000, held_open_s=30)
)


def of(commands: list[Command], kind: type) -> list[Command]:
    return [c for c in commands if isinstance(c, kind)]


def reason_of(out: list[Command]) -> Reason | None:
    records = [c for c in out if isinstance(c, Record) and c.kind in ("granted", "refused")]
    assert len(records) == 1
    return records[0].reason


def keys(t: Terminal, typed: str, now: float = 0.5) -> list[Command]:
    out: list[Command] = []
    for key in typed:
        out += t.handle(KeyPressed(key), now)
    return out


def checking(now: float = 0.0) -> Terminal:
    t = Terminal(SETTINGS)
    t.start(now)
    assert of(t.handle(CardArrived(), now), RunChecks)
    assert t.state is State.CHECKING
    return t


def prompt(t: Terminal, now: float = 1.0, identity: CardIdentity = IDENT) -> list[Command]:
    return t.handle(ChecksDone(PinPrompt(identity, 3)), now)


# -- keys typed while the card is checked --------------------------------------------------------


def test_a_pin_and_hash_typed_while_checking_are_sent_when_the_prompt_comes() -> None:
    t = checking()
    out = keys(t, "1234#")
    assert out == [PlayBeep(KEY_BEEP)] * 5  # each key heard as taken, none sent yet
    assert not of(out, RunVerify) and t.state.value == "checking"
    assert prompt(t) == [ShowLight(CHECKING_LIGHT), RunVerify("1234")]
    assert t.state is State.VERIFYING and t.deadline() is None


def test_early_digits_are_kept_in_order_and_completed_after_the_prompt() -> None:
    t = checking()
    keys(t, "12")
    assert t.pin_digits_entered == 2
    assert prompt(t) == [ShowLight(PIN_PROMPT_LIGHT), PlayBeep(PROMPT_BEEP)]
    assert t.state is State.PIN_ENTRY and t.pin_digits_entered == 2
    assert of(keys(t, "34#", now=2.0), RunVerify) == [RunVerify("1234")]


def test_four_early_digits_without_hash_wait_for_the_hash() -> None:
    t = checking()
    keys(t, "1234")
    assert not of(prompt(t), RunVerify) and t.pin_digits_entered == 4
    assert of(t.handle(KeyPressed("#"), 2.0), RunVerify) == [RunVerify("1234")]


def test_an_early_short_hash_beeps_an_error_and_the_entry_stays() -> None:
    t = checking()
    out = keys(t, "123#")
    assert out[-1] == PlayBeep(ERROR_BEEP) and t.pin_digits_entered == 3
    keys(t, "4#")
    assert prompt(t) == [ShowLight(CHECKING_LIGHT), RunVerify("1234")]


def test_an_early_fifth_digit_is_refused_like_in_entry() -> None:
    t = checking()
    out = keys(t, "12345")
    assert out[-1] == PlayBeep(ERROR_BEEP) and t.pin_digits_entered == 4
    keys(t, "#")
    assert of(prompt(t), RunVerify) == [RunVerify("1234")]


def test_star_while_checking_clears_the_digits_and_an_early_hash() -> None:
    t = checking()
    assert keys(t, "1234#*") == [PlayBeep(KEY_BEEP)] * 6
    assert t.pin_digits_entered == 0
    out = prompt(t)
    assert not of(out, RunVerify) and t.state is State.PIN_ENTRY
    assert of(keys(t, "5678#", now=2.0), RunVerify) == [RunVerify("5678")]


def test_keys_after_an_early_hash_are_refused_until_star() -> None:
    t = checking()
    keys(t, "1234#")
    assert keys(t, "9#") == [PlayBeep(ERROR_BEEP)] * 2
    assert of(prompt(t), RunVerify) == [RunVerify("1234")]


@pytest.mark.parametrize(
    "refusal", [Reason.NOT_ENROLLED, Reason.CERT_REVOKED, Reason.PIN_TRIES_LOW, Reason.CARD_ERROR]
)
def test_a_refused_card_drops_the_early_keys_unsent(refusal: Reason) -> None:
    t = checking()
    keys(t, "1234#")
    out = t.handle(ChecksDone(AuthResult(refusal, identity=IDENT)), 1.0)
    assert not of(out, RunVerify) and reason_of(out) is refusal
    assert t.pin_digits_entered == 0
    # The card is tapped again: nothing of the first try's keys is left.
    t.handle(CardLeft(), 2.0)
    t.handle(CardArrived(), 3.0)
    assert not of(prompt(t, 4.0), RunVerify) and t.pin_digits_entered == 0


def test_a_mode_change_while_checking_drops_the_early_keys() -> None:
    t = checking()
    keys(t, "1234#")
    t.handle(ModeSet(Mode.LOCKDOWN), 0.6)
    out = prompt(t)
    assert not of(out, RunVerify)
    assert reason_of(out) is Reason.LOCKDOWN


def test_keys_while_checking_in_lockdown_are_refused_at_once() -> None:
    t = checking()
    t.handle(ModeSet(Mode.LOCKDOWN), 0.6)
    assert keys(t, "12") == [PlayBeep(ERROR_BEEP)] * 2 and t.pin_digits_entered == 0


def test_a_card_pulled_while_checking_takes_its_early_pin_with_it() -> None:
    t = checking()
    keys(t, "1234#")
    t.handle(CardLeft(), 0.7)
    out = prompt(t)  # the checks end after the card left
    assert not of(out, RunVerify)
    assert reason_of(out) is Reason.CARD_REMOVED


def test_keys_spanning_a_card_swap_belong_to_the_card_they_were_typed_for() -> None:
    t = checking()
    keys(t, "12")  # for card A
    t.handle(CardLeft(), 0.6)
    assert keys(t, "3", now=0.7) == [PlayBeep(ERROR_BEEP)]  # no card: not kept
    assert t.handle(CardArrived(), 0.8) == []  # B put down while A's checks still run
    assert keys(t, "5678#", now=0.9) == [PlayBeep(KEY_BEEP)] * 5  # kept for B
    out = prompt(t, 1.0)  # A's checks end: card_removed, then B's checks begin
    assert not of(out, RunVerify) and of(out, RunChecks)
    assert reason_of(out) is Reason.CARD_REMOVED
    assert of(prompt(t, 1.5, OTHER), RunVerify) == [RunVerify("5678")]


def test_a_new_tap_never_inherits_the_previous_cards_keys() -> None:
    t = checking()
    keys(t, "1234")
    t.handle(CardLeft(), 0.6)
    t.handle(CardArrived(), 0.7)  # pending behind A's checks
    out = prompt(t, 1.0)
    assert of(out, RunChecks)
    assert not of(prompt(t, 1.5, OTHER), RunVerify) and t.pin_digits_entered == 0


def test_a_key_while_verifying_is_refused_audibly_and_sends_nothing() -> None:
    t = checking()
    keys(t, "1234#")
    prompt(t)
    assert keys(t, "5#*", now=1.2) == [PlayBeep(ERROR_BEEP)] * 3


def test_the_pin_timeout_runs_from_the_prompt_not_from_the_early_keys() -> None:
    t = checking(now=0.0)
    keys(t, "12", now=0.1)
    assert t.deadline() is None  # no timeout while the card is checked
    prompt(t, now=5.0)
    assert t.deadline() == pytest.approx(25.0)
    out = t.tick(25.0)
    assert not of(out, RunVerify)
    assert reason_of(out) is Reason.PIN_TIMEOUT


# -- keys with nowhere to go --------------------------------------------------------------------


def test_keys_before_the_tap_beep_an_error_and_are_not_kept() -> None:
    t = Terminal(SETTINGS)
    t.start(0.0)
    assert keys(t, "1234#") == [PlayBeep(ERROR_BEEP)] * 5
    t.handle(CardArrived(), 1.0)
    assert not of(prompt(t, 2.0), RunVerify) and t.pin_digits_entered == 0


def test_a_key_after_the_verdict_with_the_card_on_says_remove_the_card() -> None:
    t = checking()
    t.handle(ChecksDone(AuthResult(Reason.NOT_ENROLLED, identity=IDENT)), 1.0)
    assert t.deadline() == pytest.approx(4.0)
    out = t.handle(KeyPressed("1"), 3.5)
    assert out == [ShowLight(REMOVE_CARD_LIGHT), PlayBeep(REMOVE_CARD_BEEP)]
    assert t.deadline() == pytest.approx(5.1)  # the reminder is shown to its end
    assert t.tick(5.1) == [ShowLight(IDLE_LIGHT)] and t.state is State.IDLE
    # Still on the reader after the verdict's hold: the same answer.
    assert t.handle(KeyPressed("#"), 9.0)[0] == ShowLight(REMOVE_CARD_LIGHT)
    assert t.deadline() == pytest.approx(10.6)
    assert t.tick(10.6) == [ShowLight(IDLE_LIGHT)]
    # Taken away: a key is simply ignored.
    t.handle(CardLeft(), 11.0)
    assert keys(t, "1", now=12.0) == [PlayBeep(ERROR_BEEP)]


def test_remove_the_card_after_a_grant_keeps_the_door_released() -> None:
    t = checking()
    keys(t, "1234#")
    prompt(t)
    granted = t.handle(VerifyDone(AuthResult(Reason.OK, identity=IDENT)), 1.5)
    assert of(granted, PulseRelay)
    out = t.handle(KeyPressed("5"), 2.0)
    assert out == [ShowLight(REMOVE_CARD_LIGHT), PlayBeep(REMOVE_CARD_BEEP)]


def test_a_key_after_a_lockdown_refusal_says_remove_the_card() -> None:
    t = Terminal(SETTINGS, mode=Mode.LOCKDOWN)
    t.start(0.0)
    t.handle(CardArrived(), 1.0)
    assert t.handle(KeyPressed("1"), 2.0)[0] == ShowLight(REMOVE_CARD_LIGHT)


def test_the_remove_the_card_pattern_is_its_own() -> None:
    verdicts = {feedback_for(r).beeps for r in Reason}
    assert REMOVE_CARD_BEEP not in verdicts | {ERROR_BEEP, KEY_BEEP, PROMPT_BEEP}
    lights = {feedback_for(r).light for r in Reason}
    assert REMOVE_CARD_LIGHT not in lights | {CHECKING_LIGHT, PIN_PROMPT_LIGHT, IDLE_LIGHT}


def test_a_pin_entry_never_shows_its_digits() -> None:
    entry = PinEntry()
    for key in "1234":
        entry.press(key, early=True)
    assert "1234" not in repr(entry) and len(entry) == 4


# -- whatever the order of events, no PIN goes out that should not -----------------------------

_KEYS = st.sampled_from(list("0123456789*#A"))
_EVENTS: st.SearchStrategy[Event | str] = st.one_of(
    _KEYS,
    st.just(CardArrived()),
    st.just(CardLeft()),
    st.just(ChecksDone(PinPrompt(IDENT, 3))),
    st.just(ChecksDone(AuthResult(Reason.NOT_ENROLLED, identity=IDENT))),
    st.just(VerifyDone(AuthResult(Reason.PIN_WRONG, identity=IDENT))),
    st.just(ModeSet(Mode.LOCKDOWN)),
    st.just(ModeSet(Mode.NORMAL)),
    st.just("tick"),
)


@settings(max_examples=400, deadline=None)
@given(st.lists(_EVENTS, max_size=40))
def test_any_interleaving_sends_only_a_typed_pin_for_a_present_prompted_card(
    events: list[Event | str],
) -> None:
    """Every VERIFY carries four digits typed after the tap of the card it goes to, and
    only once that card's checks asked for a PIN, in normal mode, the card still there;
    every key gets an answer."""
    t = Terminal(SETTINGS)
    t.start(0.0)
    now = 0.0
    typed = ""  # keys typed since the present card's tap (None of them before it)
    present = False
    prompted = False
    for event in events:
        now += 1.0
        if isinstance(event, str) and event == "tick":
            now += 30.0
            out = t.tick(now)
        elif isinstance(event, str):
            out = t.handle(KeyPressed(event), now)
            assert len(of(out, PlayBeep)) + len(of(out, RunVerify)) >= 1  # never silent
            typed += event
        else:
            out = t.handle(event, now)
            if isinstance(event, CardArrived):
                present, typed, prompted = True, "", False
            elif isinstance(event, CardLeft):
                present, prompted = False, False
            elif isinstance(event, ChecksDone) and isinstance(event.outcome, PinPrompt):
                prompted = present
        for verify in of(out, RunVerify):
            assert isinstance(verify, RunVerify)
            assert present and prompted and t.mode is Mode.NORMAL
            assert len(verify.pin) == 4 and verify.pin.isdigit()
            assert verify.pin in typed.replace("*", "\n").replace("#", "").replace("A", "")
        if of(out, EndTransaction) or of(out, Record):
            prompted = False
