"""People at the keypad, and alarms seen and heard, through the real daemon (issue 9, §4-5).

The daemon as ``terminald run`` builds it, on MockFactory GPIO and the real pcscd with
virtual cards on vpcd. A PIN typed at 50 ms a key from the moment of the tap opens the
door without costing a try; keys typed while a refused card is checked never reach it;
a key after the verdict says "remove the card"; forced open drives its light and beeps
until the door closes; an open enclosure refuses cards without speaking to them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest

from terminald.core.commands import AlarmChanged
from terminald.core.door import Alarm
from terminald.core.feedback import ALARM_FEEDBACK
from terminald.core.hardware import DoorInput
from terminald.core.reasons import Reason
from terminald.sim.card import VirtualJpkiCard
from terminald.sim.pcscd import Pcscd
from terminald.sim.profile import TimingModel
from terminald.sim.testpki import TestPkiManifest
from tests.integration.daemon_rig import GateRig, HeldCard, gate_config, open_rig

pytestmark = pytest.mark.pcscd

VERIFY = b"\x00\x20\x00"


def verifies(card: VirtualJpkiCard) -> int:
    """VERIFY commands carrying a PIN (the retry query has none)."""
    return sum(1 for c in card.commands() if c[:3] == VERIFY and len(c) > 5)


@pytest.fixture
def gate(tmp_path: Path, test_pki: TestPkiManifest, pcscd: Pcscd) -> Iterator[GateRig]:
    rig = open_rig(gate_config(tmp_path, test_pki, enrolled=["card-001"]), test_pki)
    yield rig
    rig.stop()
    assert not rig.mock.relay_energised(), "the relay was left energised"


def led(gate: GateRig, color: str) -> int:
    return gate.mock.pinmap.leds.pins[color]


def test_a_pin_typed_50_ms_a_key_from_the_tap_opens_with_the_tries_unchanged(
    gate: GateRig,
) -> None:
    # A card as slow as NFC makes it (the checks take ~150 ms), so the first keys come
    # while it is checked, as they did in the demo.
    gate.realtime = True
    profile = dataclasses.replace(gate.pki.load_profile("card-001"), timing=TimingModel.nfc())
    card = gate.tap_card(VirtualJpkiCard(profile))
    gate.wait_until(lambda: gate.daemon.snapshot().card_present)  # the daemon saw the tap
    gate.type_paced(gate.pin("card-001") + "#", per_key_s=0.05)
    assert gate.verdict() is Reason.OK
    gate.wait_until(gate.mock.relay_energised, 2)
    assert card.tries_left() == 3 and verifies(card) == 1


def test_a_pin_typed_while_the_card_is_checked_is_sent_at_the_prompt(gate: GateRig) -> None:
    card = HeldCard(gate.pki.load_profile("card-001"))
    gate.tap_card(card)
    assert card.holding.wait(10), "the daemon never read the card"
    gate.type_paced(gate.pin("card-001") + "#", per_key_s=0.05)
    # All five keys are in while the card is still being checked: kept, nothing sent.
    gate.wait_until(lambda: gate.daemon.snapshot().pin_digits == 4)
    assert gate.daemon.snapshot().state == "checking" and verifies(card) == 0
    card.go.set()
    assert gate.verdict() is Reason.OK
    assert card.tries_left() == 3 and verifies(card) == 1


def test_a_refused_card_with_keys_typed_early_gets_no_verify(
    gate: GateRig, test_pki: TestPkiManifest
) -> None:
    card = HeldCard(test_pki.load_profile("card-003"))  # genuine, not enrolled here
    gate.tap_card(card)
    assert card.holding.wait(10), "the daemon never read the card"
    pin = test_pki.card("card-003").pin
    assert pin is not None
    gate.type_paced(pin + "#", per_key_s=0.05)
    gate.wait_until(lambda: gate.daemon.snapshot().pin_digits == 4)
    card.go.set()
    assert gate.verdict() is Reason.NOT_ENROLLED
    assert not [c for c in card.commands() if c[:2] == b"\x00\x20"], "the card saw a VERIFY"
    assert card.tries_left() == 3
    # The card is still on: a key now says "remove the card" (an amber double blink;
    # the refusal itself is steady red, so amber is the reminder's alone).
    amber = led(gate, "amber")
    mark = gate.pin_mark(amber)
    gate.type_paced("1")
    gate.wait_until(lambda: gate.rises(amber, mark) >= 2, 5)
    assert gate.daemon.snapshot().pin_digits == 0 and verifies(card) == 0


def test_keys_typed_before_the_tap_are_not_kept(gate: GateRig) -> None:
    gate.type_paced("1234#", per_key_s=0.05)
    gate.wait_until(lambda: gate.keys_delivered == 5)
    card = gate.tap("card-001")
    gate.wait_state("pin_entry")
    assert gate.daemon.snapshot().pin_digits == 0 and verifies(card) == 0


def test_forced_open_is_seen_and_heard_until_the_door_closes(gate: GateRig) -> None:
    buzzer = gate.mock.pinmap.buzzer.pin
    red, amber, green = led(gate, "red"), led(gate, "amber"), led(gate, "green")
    marks = {pin: gate.pin_mark(pin) for pin in (buzzer, red, amber)}
    gate.set_input(DoorInput.DOOR, True)  # no grant: forced
    assert gate.next_alarm() == AlarmChanged("forced_open", True)
    gate.wait_until(lambda: gate.rises(red, marks[red]) >= 2, 5)
    gate.wait_until(lambda: gate.rises(amber, marks[amber]) >= 2, 5)
    # Heard again after its first round of beeps: it sounds until the door closes.
    first_round = len(ALARM_FEEDBACK[Alarm.FORCED_OPEN].beeps.beeps)
    gate.wait_until(lambda: gate.rises(buzzer, marks[buzzer]) > first_round, 10)
    gate.set_input(DoorInput.DOOR, False)
    assert gate.next_alarm() == AlarmChanged("forced_open", False)
    gate.wait_until(lambda: gate.daemon.terminal.sounder.leading is None, 5)
    since = gate.pin_mark(green)
    gate.wait_until(lambda: gate.rises(green, since) >= 1, 10)  # the resting light is back


def test_an_open_enclosure_refuses_cards_without_touching_them(gate: GateRig) -> None:
    gate.set_input(DoorInput.TAMPER, True)
    assert gate.next_alarm() == AlarmChanged("tamper", True)
    card = gate.tap("card-001")
    assert gate.verdict() is Reason.TAMPER
    assert card.commands() == [], "the card was spoken to"
    gate.remove()
    gate.set_input(DoorInput.TAMPER, False)
    assert gate.next_alarm() == AlarmChanged("tamper", False)
    card = gate.tap("card-001")
    gate.wait_state("pin_entry")
    gate.type(gate.pin("card-001") + "#")
    assert gate.verdict() is Reason.OK and card.tries_left() == 3
