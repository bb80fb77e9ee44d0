"""core.vend on its own, the vend-complete input from the pin map to the event, and the
feedback of the policy's reasons (issue 11, item 4)."""

from __future__ import annotations

import copy
import queue
import tomllib
from typing import Any

import pytest

from terminald.backends.gpio import open_gpio
from terminald.backends.pinmap import PinMapError, default_hw_dir, load_board, parse_pinmap
from terminald.core.commands import HoldRelay, Record, ReleaseRelay
from terminald.core.door import DoorSettings, DoorSupervisor
from terminald.core.feedback import (
    CHECKING_LIGHT,
    ERROR_BEEP,
    IDLE_LIGHT,
    KEY_BEEP,
    PIN_PROMPT_LIGHT,
    PROMPT_BEEP,
    REMOVE_CARD_BEEP,
    REMOVE_CARD_LIGHT,
    SELECTED_BEEP,
    SELECTED_LIGHT,
    VEND_ENABLED_LIGHT,
    feedback_for,
)
from terminald.core.hardware import Color, DoorInput, DoorState, InputChanged, LightPattern
from terminald.core.reasons import Reason
from terminald.core.vend import VendGrant, VendSupervisor

GRANT = VendGrant("B", 4660, b"\x1a" * 20, "E1001", (("product", "B"),))
DONE = InputChanged(DoorInput.VEND_COMPLETE, True)


def end(kind: str, detail: str) -> Record:
    return Record(kind, detail, None, 4660, b"\x1a" * 20, subject="E1001", attrs=GRANT.attrs)


# --- the supervisor ----------------------------------------------------------------------------


def test_start_holds_and_the_signal_ends_it_once() -> None:
    v = VendSupervisor()
    assert not v.active and v.deadline() is None and v.tick(100.0) == []
    assert v.start(GRANT, 10.0, 30.0, complete_wired=True) == [HoldRelay()]
    assert v.active and v.deadline() == pytest.approx(40.0)
    assert v.on_input(InputChanged(DoorInput.DOOR, True)) == []  # another input
    assert v.on_input(DONE) == [ReleaseRelay(), end("vend_complete", "product B: vend complete")]
    assert not v.active and v.on_input(DONE) == [] and v.tick(40.0) == []


def test_the_deadline_ends_it() -> None:
    v = VendSupervisor()
    v.start(GRANT, 0.0, 12.5, complete_wired=False)
    assert v.on_input(DONE) == []  # not wired: the line means nothing
    assert v.tick(12.4) == []
    assert v.tick(12.5) == [
        ReleaseRelay(),
        end("vend_timeout", "product B: vend window of 12.5 s ended"),
    ]
    assert v.deadline() is None


def test_cancel_says_why_and_may_leave_the_relay_to_the_caller() -> None:
    v = VendSupervisor()
    assert v.cancel("lockdown") == []  # nothing enabled
    v.start(GRANT, 0.0, 30.0, complete_wired=True)
    assert v.cancel("emergency_open", release=False) == [
        end("vend_timeout", "product B: cancelled: emergency_open")
    ]
    assert not v.active


def test_one_vend_at_a_time_and_the_machine_as_a_whole() -> None:
    v = VendSupervisor()
    v.start(VendGrant(None), 0.0, 30.0, complete_wired=True)
    with pytest.raises(ValueError, match="already enabled"):
        v.start(GRANT, 1.0, 30.0, complete_wired=True)
    (record,) = [c for c in v.on_input(DONE) if isinstance(c, Record)]
    assert record.detail == "the machine: vend complete" and record.serial is None


# --- door supervision ignores the machine's line -------------------------------------------------


def test_door_supervision_ignores_vend_complete() -> None:
    door = DoorSupervisor(DoorSettings())
    assert (
        door.on_input(DONE, 0.0) == []
        and door.on_input(InputChanged(DoorInput.VEND_COMPLETE, False), 1.0) == []
    )
    assert not door.alarms and door.door_state == "closed"


def test_door_state_reports_vend_complete() -> None:
    state = DoorState(door_open=False, rex_pressed=False, tamper=False, vend_complete=True)
    assert state.active(DoorInput.VEND_COMPLETE) and not state.active(DoorInput.DOOR)
    assert DoorState(False, False, False).active(DoorInput.VEND_COMPLETE) is False


# --- the pin maps and the GPIO backend ---------------------------------------------------------


def raw_board() -> dict[str, Any]:
    return tomllib.loads((default_hw_dir() / "boards" / "rpi4.toml").read_text())


def test_the_input_is_optional_and_checked_like_the_others() -> None:
    data = raw_board()
    without = copy.deepcopy(data)
    del without["inputs"]["vend_complete"]
    pinmap = parse_pinmap(without)
    assert pinmap.vend_complete is None and DoorInput.VEND_COMPLETE not in pinmap.inputs()
    assert "inputs.vend_complete.pin" not in pinmap.used_pins()
    data["inputs"]["vend_complete"]["pin"] = 24  # the REX button
    with pytest.raises(PinMapError, match=r"inputs\.vend_complete\.pin: GPIO 24 is already used"):
        parse_pinmap(data)


def test_gpio_mock_round_trip_of_vend_complete() -> None:
    pinmap = load_board("rpi4")
    assert pinmap.vend_complete is not None and pinmap.vend_complete.pin == 4
    with open_gpio(pinmap, "mock") as hw:
        assert hw.mock is not None
        events: queue.Queue[InputChanged] = queue.Queue()
        hw.inputs.set_handler(events.put)
        assert hw.inputs.state().vend_complete is False
        hw.mock.set_input(DoorInput.VEND_COMPLETE, True)
        assert events.get(timeout=2) == DONE
        assert hw.mock.pin(4).state is False  # active low: the contact pulls it to GND
        assert hw.inputs.state().vend_complete is True and not hw.inputs.state().door_open
        hw.mock.set_input(DoorInput.VEND_COMPLETE, False)
        assert events.get(timeout=2) == InputChanged(DoorInput.VEND_COMPLETE, False)
        assert hw.inputs.state().vend_complete is False


def test_without_the_input_in_the_map_nothing_is_claimed_or_reported() -> None:
    data = raw_board()
    del data["inputs"]["vend_complete"]
    with open_gpio(parse_pinmap(data), "mock") as hw:
        assert hw.mock is not None
        assert hw.inputs.state().vend_complete is False
        with pytest.raises(ValueError, match="no vend_complete input"):
            hw.mock.set_input(DoorInput.VEND_COMPLETE, True)


# --- feedback ------------------------------------------------------------------------------------

RED_STEADY = LightPattern.steady(Color.RED)
RED_BLINK = feedback_for(Reason.CARD_ERROR).light
AMBER_BLINK = feedback_for(Reason.PIN_WRONG).light

POLICY_REFUSALS = [
    Reason.UNKNOWN_CERTIFICATE,
    Reason.NO_ACCESS,
    Reason.OUTSIDE_SCHEDULE,
    Reason.PERSON_NOT_YET_VALID,
    Reason.PERSON_EXPIRED,
    Reason.ANTI_PASSBACK,
    Reason.AGE_UNDER,
    Reason.AGE_CERT_INVALID,
]
TERMINAL_PROBLEMS = [
    Reason.AGE_SERVICE_OFFLINE,
    Reason.AGE_UNKNOWN,
    Reason.ENROLMENT_STALE,
    Reason.ENROLMENT_UNAVAILABLE,
    Reason.PASSBACK_PARTNER_UNREACHABLE,
]


@pytest.mark.parametrize("reason", POLICY_REFUSALS)
def test_a_policy_no_is_red_steady_like_not_enrolled(reason: Reason) -> None:
    assert feedback_for(reason).light == RED_STEADY == feedback_for(Reason.NOT_ENROLLED).light


@pytest.mark.parametrize("reason", TERMINAL_PROBLEMS)
def test_what_the_terminal_cannot_decide_is_red_blink(reason: Reason) -> None:
    assert feedback_for(reason).light == RED_BLINK


def test_no_selection_is_amber_you_can_act() -> None:
    assert feedback_for(Reason.NO_SELECTION).light == AMBER_BLINK


def test_every_reason_keeps_its_own_beep_code() -> None:
    beeps = [feedback_for(r).beeps for r in Reason]
    assert len(set(beeps)) == len(beeps)
    # Appended codes leave the old ones where they were: tamper is still the 28th refusal,
    # sounded as the long beep, two tens and eight units.
    tamper = [b.on_ms for b in feedback_for(Reason.TAMPER).beeps.beeps]
    assert tamper == [400, 250, 250, *[90] * 8]
    # The longest code stays countable: at most 1 + 4 tens + 9 units.
    assert max(len(feedback_for(r).beeps.beeps) for r in Reason) <= 14
    assert [b.on_ms for b in feedback_for(Reason.PIN_WRONG).beeps.beeps] == [400, 250, *[90] * 9]


def test_selected_and_vend_feedback_are_unlike_any_other() -> None:
    others = {CHECKING_LIGHT, IDLE_LIGHT, PIN_PROMPT_LIGHT, REMOVE_CARD_LIGHT}
    others |= {feedback_for(r).light for r in Reason}
    assert SELECTED_LIGHT not in others and VEND_ENABLED_LIGHT not in others
    assert SELECTED_LIGHT != VEND_ENABLED_LIGHT
    sounds = {KEY_BEEP, ERROR_BEEP, PROMPT_BEEP, REMOVE_CARD_BEEP}
    sounds |= {feedback_for(r).beeps for r in Reason}
    assert SELECTED_BEEP not in sounds and SELECTED_BEEP.total_ms < 500  # short
