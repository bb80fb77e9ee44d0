"""The gate daemon end to end: MockFactory GPIO, the real pcscd, virtual cards on vpcd.

Each test builds the daemon the way ``terminald run`` does (``open_daemon`` on a TOML
file), runs its loop on a thread and acts as the person at the door: taps a card,
types on the matrix keypad, opens the door. What it checks is what the door and the
card see: relay pin levels, LED pins, and the APDUs the virtual card received.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from terminald.card.jpki import JPKI_AID
from terminald.core.feedback import feedback_for
from terminald.core.hardware import DoorInput, InputChanged
from terminald.core.reasons import Reason
from terminald.core.terminal import Mode, ModeSet
from terminald.pki.challenge import evidence_valid
from terminald.sim.pcscd import Pcscd
from terminald.sim.testpki import TestPkiManifest
from tests.integration.daemon_rig import OPEN_MS, GateRig, gate_config, open_rig

pytestmark = pytest.mark.pcscd

ENROLLED = ["card-001", "card-002", "last-try", "blocked", "face-auth", "expired"]
VERIFY = b"\x00\x20\x00"


def verifies(card_commands: list[bytes]) -> int:
    return sum(1 for c in card_commands if c[:3] == VERIFY and len(c) > 5)


@pytest.fixture
def gate(tmp_path: Path, test_pki: TestPkiManifest, pcscd: Pcscd) -> Iterator[GateRig]:
    rig = open_rig(gate_config(tmp_path, test_pki, enrolled=ENROLLED), test_pki)
    yield rig
    rig.stop()
    assert not rig.mock.relay_energised(), "the relay was left energised"


def test_a_full_door_cycle(gate: GateRig, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    assert gate.relay_energised_levels() == [False], "the relay moved at start-up"
    card = gate.tap("card-001")
    gate.wait_state("pin_entry")
    assert gate.mock.led_lit("amber")  # the PIN prompt
    pin = gate.pin("card-001")
    gate.type(pin[:2])
    gate.wait_until(lambda: gate.daemon.snapshot().pin_digits == 2)
    gate.type("*")  # clears
    gate.wait_until(lambda: gate.daemon.snapshot().pin_digits == 0)
    gate.type(pin + "#")
    assert gate.verdict() is Reason.OK
    gate.wait_until(lambda: gate.mock.relay_energised(), 2)
    assert gate.mock.led_lit("green") and not gate.mock.led_lit("red")
    gate.wait_until(lambda: not gate.mock.relay_energised(), 5)
    (pulse,) = gate.relay_pulses()
    assert OPEN_MS / 1000 <= pulse < OPEN_MS / 1000 + 0.25
    # The card was unpowered when the transaction ended, and signed exactly once.
    gate.wait_until(lambda: not card.powered)
    assert verifies(card.commands()) == 1
    assert sum(1 for c in card.commands() if c[:2] == b"\x80\x2a") == 1
    # The PIN is in no log line, at any level.
    assert caplog.records, "the daemon logged nothing"
    assert all(pin not in r.getMessage() for r in caplog.records)
    granted = [r.getMessage() for r in caplog.records if "event=granted" in r.getMessage()]
    assert granted and "reason=ok" in granted[0] and "label=card-001" in granted[0]
    # The audit trail has the decision, for whoever asks later who came in.
    assert gate.daemon.audit is not None
    (row,) = gate.daemon.audit.recent(kind="granted")
    assert (row.terminal, row.reason, row.serial, row.label) == (
        "test-gate",
        "ok",
        gate.pki.card("card-001").serial,
        "card-001",
    )
    # With the evidence that the card was here: its signature over this terminal's challenge.
    assert row.evidence is not None
    message, signature, certificate = row.evidence
    assert b"test-gate" in message
    assert evidence_valid(certificate, message, signature)
    assert not evidence_valid(certificate, message.replace(b"test-gate", b"test-gat3"), signature)


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("card-003", Reason.NOT_ENROLLED),
        ("last-try", Reason.PIN_TRIES_LOW),
        ("blocked", Reason.PIN_BLOCKED),
        ("face-auth", Reason.FACE_AUTH_CARD),
        ("non-jpki", Reason.NOT_JPKI_CARD),
        ("expired", Reason.CERT_EXPIRED),
        ("forged-issuer", Reason.CERT_SIGNATURE_INVALID),
        ("unknown-issuer", Reason.UNKNOWN_ISSUER),
        ("wrong-usage", Reason.CERT_WRONG_USAGE),
        ("not-yet-valid", Reason.CERT_NOT_YET_VALID),
        ("bad-signature", Reason.CERT_SIGNATURE_INVALID),
    ],
)
def test_refused_before_any_pin(gate: GateRig, name: str, reason: Reason) -> None:
    if name != "card-003":  # the test PKI's own record of what this card must get
        assert gate.pki.card(name).expected is reason
    card = gate.tap(name)
    assert gate.verdict() is reason
    colour = feedback_for(reason).light.steps[0].color.value
    gate.wait_until(lambda: gate.mock.led_lit(colour), 2)
    gate.wait_until(lambda: not card.powered)
    assert verifies(card.commands()) == 0, "a PIN try was spent on a refused card"
    assert gate.relay_energised_levels() == [False]
    if name != "non-jpki":
        assert JPKI_AID in card.selected_aids()
    assert gate.daemon.audit is not None
    (row,) = gate.daemon.audit.recent(kind="refused")
    assert row.reason == reason.value


def test_wrong_pin_counts_one_try_and_keeps_the_door_shut(gate: GateRig) -> None:
    card = gate.tap("card-002")
    gate.wait_state("pin_entry")
    wrong = "0000" if gate.pin("card-002") != "0000" else "1111"
    gate.type(wrong + "#")
    assert gate.verdict() is Reason.PIN_WRONG
    assert card.tries_left() == 2
    assert gate.relay_energised_levels() == [False]


def test_a_short_pin_is_never_sent(gate: GateRig) -> None:
    card = gate.tap("card-002")
    gate.wait_state("pin_entry")
    gate.type("12#")
    time.sleep(0.2)
    assert gate.daemon.snapshot().state == "pin_entry"
    assert verifies(card.commands()) == 0
    gate.remove()
    assert gate.verdict() is Reason.CARD_REMOVED


def test_pin_timeout(gate: GateRig) -> None:
    card = gate.tap("card-002")
    gate.wait_state("pin_entry")
    gate.type("1")
    assert gate.verdict(timeout=8) is Reason.PIN_TIMEOUT  # pin_timeout_s = 5
    gate.wait_until(lambda: not card.powered)
    assert verifies(card.commands()) == 0
    assert card.tries_left() == 3


def test_card_pulled_during_pin_entry(gate: GateRig) -> None:
    card = gate.tap("card-001")
    gate.wait_state("pin_entry")
    gate.type("12")
    gate.remove()
    assert gate.verdict() is Reason.CARD_REMOVED
    gate.type("34#")  # the rest of the PIN goes nowhere
    time.sleep(0.2)
    assert verifies(card.commands()) == 0
    assert gate.relay_energised_levels() == [False]


def test_forced_open_and_held_open_alarms(gate: GateRig) -> None:
    gate.set_input(DoorInput.DOOR, True)  # no grant: forced
    alarm = gate.next_alarm()
    assert (alarm.alarm, alarm.active) == ("forced_open", True)
    gate.set_input(DoorInput.DOOR, False)
    alarm = gate.next_alarm()
    assert (alarm.alarm, alarm.active) == ("forced_open", False)

    gate.tap("card-001")
    gate.wait_state("pin_entry")
    gate.type(gate.pin("card-001") + "#")
    assert gate.verdict() is Reason.OK
    gate.set_input(DoorInput.DOOR, True)  # an authorised opening
    alarm = gate.next_alarm(timeout=4)  # held_open_s = 1
    assert (alarm.alarm, alarm.active) == ("held_open", True)
    assert gate.daemon.snapshot().alarms == frozenset({"held_open"})
    gate.set_input(DoorInput.DOOR, False)
    alarm = gate.next_alarm()
    assert (alarm.alarm, alarm.active) == ("held_open", False)


def test_rex_opens_without_a_card_and_tamper_raises_an_alarm(gate: GateRig) -> None:
    gate.set_input(DoorInput.REX, True)
    assert gate.next_record("rex").detail == "request to exit"
    gate.wait_until(lambda: gate.mock.relay_energised(), 2)
    gate.set_input(DoorInput.REX, False)
    gate.wait_until(lambda: not gate.mock.relay_energised(), 5)
    gate.set_input(DoorInput.TAMPER, True)
    alarm = gate.next_alarm()
    assert (alarm.alarm, alarm.active) == ("tamper", True)
    assert gate.daemon.audit is not None
    kinds = [(r.kind, r.detail) for r in gate.daemon.audit.recent()]
    assert ("rex", "request to exit") in kinds and ("alarm", "tamper raised") in kinds


def test_lockdown_admits_no_one_and_never_asks_for_a_pin(gate: GateRig) -> None:
    gate.daemon.post(ModeSet(Mode.LOCKDOWN))
    gate.wait_until(lambda: gate.daemon.snapshot().mode == "lockdown")
    card = gate.tap("card-001")
    assert gate.verdict() is Reason.LOCKDOWN
    time.sleep(0.2)
    assert verifies(card.commands()) == 0
    assert gate.relay_energised_levels() == [False]
    gate.set_input(DoorInput.REX, True)  # egress still works
    gate.wait_until(lambda: gate.mock.relay_energised(), 2)


def test_emergency_open_holds_the_relay_until_normal(gate: GateRig) -> None:
    gate.daemon.post(ModeSet(Mode.EMERGENCY_OPEN))
    gate.wait_until(lambda: gate.mock.relay_energised(), 2)
    time.sleep(OPEN_MS / 1000 + 0.2)
    assert gate.mock.relay_energised(), "emergency open must hold, not pulse"
    gate.tap("card-001")
    assert gate.verdict() is Reason.EMERGENCY_OPEN
    gate.daemon.post(ModeSet(Mode.NORMAL))
    gate.wait_until(lambda: not gate.mock.relay_energised(), 2)


def test_lockdown_from_the_configuration_at_start(
    tmp_path: Path, test_pki: TestPkiManifest, pcscd: Pcscd
) -> None:
    rig = open_rig(gate_config(tmp_path, test_pki, enrolled=ENROLLED, mode="lockdown"), test_pki)
    try:
        assert rig.daemon.snapshot().mode == "lockdown"
        rig.wait_until(lambda: rig.mock.led_lit("red"), 2)
        assert rig.relay_energised_levels() == [False]
    finally:
        rig.stop()


def test_sighup_reload_good_and_bad(gate: GateRig, caplog: pytest.LogCaptureFixture) -> None:
    path = gate.daemon.config.source
    assert path is not None
    good = path.read_text().replace('mode = "normal"', 'mode = "lockdown"')
    path.write_text(good)
    assert gate.daemon.reload()
    gate.wait_until(lambda: gate.daemon.snapshot().mode == "lockdown")

    caplog.set_level(logging.INFO)
    path.write_text(good.replace("open_ms = 300", "open_ms = 0").replace("[door]", "[doors]"))
    assert not gate.daemon.reload()
    refused = " ".join(r.getMessage() for r in caplog.records if "reload_refused" in r.getMessage())
    assert "relay.open_ms: must be between 100 and 60000, got 0" in refused
    assert "doors: unknown section" in refused
    assert gate.daemon.config.relay.open_ms == OPEN_MS
    assert gate.daemon.snapshot().mode == "lockdown"  # still running the last good file

    # A broken enrolled file is refused as a whole, too.
    (path.parent / "enrolled.toml").write_text("[[card]]\nserial = 'x'\n")
    path.write_text(good.replace('mode = "lockdown"', 'mode = "normal"'))
    assert not gate.daemon.reload()
    assert gate.daemon.snapshot().mode == "lockdown"


def test_a_new_card_after_a_verdict_starts_a_new_transaction(gate: GateRig) -> None:
    first = gate.tap("card-003")
    assert gate.verdict() is Reason.NOT_ENROLLED
    second = gate.tap("card-001")
    gate.wait_state("pin_entry")
    gate.type(gate.pin("card-001") + "#")
    assert gate.verdict() is Reason.OK
    gate.wait_until(lambda: not first.powered and not second.powered)


class _Boom:
    """An event the loop was not built for: it makes the terminal raise."""


def test_an_internal_error_relocks_and_the_terminal_keeps_working(
    gate: GateRig, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate.daemon.post(ModeSet(Mode.NORMAL))
    gate.set_input(DoorInput.REX, True)  # the relay is released...
    gate.wait_until(lambda: gate.mock.relay_energised(), 2)
    real_handle = gate.daemon.terminal.handle

    def handle(event: object, now: float) -> list[object]:
        if isinstance(event, InputChanged) and event.input is DoorInput.TAMPER:
            raise RuntimeError("a bug")
        return real_handle(event, now)  # type: ignore[arg-type]

    monkeypatch.setattr(gate.daemon.terminal, "handle", handle)
    gate.set_input(DoorInput.TAMPER, True)  # ...and the bug hits mid-release
    gate.wait_until(lambda: not gate.mock.relay_energised(), 1)
    (pulse,) = gate.relay_pulses()
    assert pulse < OPEN_MS / 1000, "the relay was not relocked at once"
    monkeypatch.undo()
    gate.tap("card-001")
    gate.wait_state("pin_entry")
    gate.type(gate.pin("card-001") + "#")
    assert gate.verdict() is Reason.OK


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_the_relay_is_released_when_the_loop_dies(
    gate: GateRig, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate.set_input(DoorInput.REX, True)
    gate.wait_until(lambda: gate.mock.relay_energised(), 2)

    def die(event: object, now: float) -> list[object]:
        raise SystemExit("killed")  # not an Exception: escapes the per-event guard

    monkeypatch.setattr(gate.daemon.terminal, "handle", die)
    gate.set_input(DoorInput.REX, False)
    assert gate.thread is not None
    gate.thread.join(5)
    assert not gate.thread.is_alive()
    assert not gate.mock.relay_energised()
    assert gate.daemon.hardware.closed


@pytest.mark.parametrize("change", ["repeated", "aki", "crldp"])
def test_an_undecodable_certificate_is_cert_malformed_and_the_terminal_goes_on(
    gate: GateRig, change: str
) -> None:
    """The issue's cards (a repeated extension, an undecodable AKI or CRLDP) were
    "card_error: internal error"; they are cert_malformed, before any PIN."""
    import dataclasses

    from terminald.sim.card import VirtualJpkiCard
    from tests.unit.test_certificate_fuzz import broken_certificate

    profile = gate.pki.load_profile("card-001")
    der = broken_certificate(profile.auth_cert, change)
    card = gate.tap_card(VirtualJpkiCard(dataclasses.replace(profile, auth_cert=der)))
    assert gate.verdict() is Reason.CERT_MALFORMED
    gate.wait_until(lambda: not card.powered)
    assert verifies(card.commands()) == 0
    assert gate.relay_energised_levels() == [False]
    gate.tap("card-001")  # swapped in: the next card is served as ever
    gate.wait_state("pin_entry")


def test_sighup_refuses_what_check_config_refuses_naming_the_key(
    gate: GateRig, caplog: pytest.LogCaptureFixture
) -> None:
    """SIGHUP runs the validation start-up and check-config run: a NUL byte in a path,
    an empty terminal.id, a FIFO as the trust anchors (which used to block the loop) are
    refused with their key, and the running configuration stays."""
    import os

    path = gate.daemon.config.source
    assert path is not None
    good = path.read_text()
    fifo = path.parent / "anchors.fifo"
    os.mkfifo(fifo)
    caplog.set_level(logging.INFO)
    for bad, key in (
        (good.replace('id = "test-gate"', 'id = ""'), "terminal.id"),
        (
            good.replace("[revocation]", '[revocation]\nstate_path = "st\\u0000ate"'),
            "revocation.state_path",
        ),
        (good.replace(str(gate.pki.trust_dir), str(fifo)), "trust.anchors[0]"),
    ):
        caplog.clear()
        path.write_text(bad)
        assert not gate.daemon.reload(), key
        refused = [r.getMessage() for r in caplog.records if "reload_refused" in r.getMessage()]
        assert any(key in message for message in refused), (key, refused)
        assert gate.daemon.config.terminal.id == "test-gate"
    path.write_text(good)
    gate.tap("card-001")
    gate.wait_state("pin_entry")  # still serving cards under the good configuration
