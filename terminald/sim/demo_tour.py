"""The demo's scripted tour: every outcome in turn, read back from the real daemon.

Each step acts on the rig (``demo_rig.DemoRig``) and reads what happened from the
daemon's own records and the mock pins (``checks``); a step that sees something else
fails the tour (exit 1 from ``terminald sim demo --tour``).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TextIO

from terminald.core.commands import Record
from terminald.core.hardware import DoorInput
from terminald.core.reasons import DESCRIPTIONS, Reason
from terminald.core.terminal import Mode
from terminald.sim.checks import (
    StepFailed,
    led_text,
    still_locked,
    wait_alarm,
    wait_pin_prompt,
    wait_pulse,
    wait_record,
    wait_verdict,
)
from terminald.sim.demo_rig import NOT_ENROLLED_CARD, DemoRig
from terminald.sim.rig import wait_until
from terminald.sim.twin import TWIN

GREEN, RED, AMBER, DIM, BOLD, RESET = (
    "\033[32m",
    "\033[31m",
    "\033[33m",
    "\033[2m",
    "\033[1m",
    "\033[0m",
)
GOOD = "card-001"


@dataclass(frozen=True)
class Seen:
    """What one step observed: its words, its verdict (if any) and the relay pulse."""

    text: str
    ok: bool
    reason: Reason | None = None
    pulse_s: float | None = None


@dataclass(frozen=True)
class StepResult:
    title: str
    expected: str
    observed: str
    ok: bool
    reason: Reason | None = None
    pulse_s: float | None = None


@dataclass(frozen=True)
class Step:
    title: str
    story: str
    expected: str
    run: Callable[[], Seen]


class Tour:
    """Every outcome in turn, each read back from the daemon; see the module doc."""

    def __init__(self, rig: DemoRig, out: TextIO = sys.stdout, pace: float = 0.0) -> None:
        self.rig = rig
        self.out = out
        self.pace = pace
        self.colour = out.isatty()
        self.open_s = rig.timings.open_ms / 1000
        self._inputs: set[DoorInput] = set()

    # -- printing ------------------------------------------------------------------------------

    def say(self, text: str, colour: str = "") -> None:
        if self.colour and colour:
            text = f"{colour}{text}{RESET}"
        print(text, file=self.out, flush=True)

    # -- the steps -------------------------------------------------------------------------------

    def steps(self) -> list[Step]:
        rig, t = self.rig, self.rig.timings
        good_pin = rig.pin(GOOD)
        wrong = "0000" if rig.pin("card-002") != "0000" else "1111"
        open_s = f"{self.open_s:g} s"

        def card(name: str, expect: Reason, keys: str | None = None) -> Callable[[], Seen]:
            return lambda: self._card(name, expect, keys)

        return [
            Step(
                "A good card and its PIN",
                f"{GOOD} is enrolled; its holder types {good_pin} and #",
                f"granted ok, relay released {open_s} then locked",
                card(GOOD, Reason.OK, good_pin + "#"),
            ),
            Step(
                "A mistyped PIN",
                f"card-002 is enrolled; its holder types {wrong} and #",
                "refused pin_wrong, the card counts one try",
                card("card-002", Reason.PIN_WRONG, wrong + "#"),
            ),
            Step(
                "A good card that is not enrolled here",
                f"{NOT_ENROLLED_CARD} is genuine but missing from enrolled.toml",
                "refused not_enrolled before any PIN",
                card(NOT_ENROLLED_CARD, Reason.NOT_ENROLLED),
            ),
            Step(
                "The same serial from another root",
                f"{TWIN} has {GOOD}'s serial under another root generation: another person",
                "refused not_enrolled before any PIN",
                card(TWIN, Reason.NOT_ENROLLED),
            ),
            Step(
                "One PIN try left",
                "the terminal never uses a person's last try",
                "refused pin_tries_low before any PIN",
                card("last-try", Reason.PIN_TRIES_LOW),
            ),
            Step(
                "A blocked PIN",
                "only the municipal office can reset it",
                "refused pin_blocked",
                card("blocked", Reason.PIN_BLOCKED),
            ),
            Step(
                "A face-authentication card",
                "issued since Dec 2023: it has no PIN",
                "refused face_auth_card",
                card("face-auth", Reason.FACE_AUTH_CARD),
            ),
            Step(
                "Some other smart card",
                "no JPKI application on it",
                "refused not_jpki_card",
                card("non-jpki", Reason.NOT_JPKI_CARD),
            ),
            Step(
                "An expired certificate",
                "notAfter in the past",
                "refused cert_expired",
                card("expired", Reason.CERT_EXPIRED),
            ),
            Step(
                "A forged issuer",
                "a trusted root's name and key id, signed by another key",
                "refused cert_signature_invalid",
                card("forged-issuer", Reason.CERT_SIGNATURE_INVALID),
            ),
            Step(
                "An unknown issuer",
                "a root this terminal does not trust",
                "refused unknown_issuer",
                card("unknown-issuer", Reason.UNKNOWN_ISSUER),
            ),
            Step(
                "No PIN in time",
                f"{GOOD}'s holder types two digits and walks away "
                f"(pin_timeout_s = {t.pin_timeout_s:g})",
                "refused pin_timeout, no try used",
                self._pin_timeout,
            ),
            Step(
                "The card pulled during PIN entry",
                f"{GOOD}'s holder types two digits and takes the card away",
                "refused card_removed, no try used",
                self._card_pulled,
            ),
            Step(
                "Request to exit",
                "someone inside presses the REX button",
                f"rex, relay released {open_s} then locked",
                self._rex,
            ),
            Step(
                "The door forced open",
                "the door opens while the lock is locked",
                "alarm forced_open until the door closes",
                self._forced,
            ),
            Step(
                "The door held open",
                f"REX, the door opens and stays open past held_open_s = {t.held_open_s:g}",
                "alarm held_open until the door closes",
                self._held_open,
            ),
            Step(
                "Tamper",
                "the enclosure is opened",
                "alarm tamper until it is closed",
                self._tamper,
            ),
            Step(
                "Lockdown",
                f"mode lockdown, {GOOD} tapped, then REX",
                "refused lockdown, relay locked; REX still opens",
                self._lockdown,
            ),
            Step(
                "Emergency open",
                f"mode emergency_open, {GOOD} tapped, back to normal",
                "relay held released, refused emergency_open; locked after",
                self._emergency,
            ),
        ]

    def run(self) -> list[StepResult]:
        steps = self.steps()
        results = []
        for number, step in enumerate(steps, 1):
            self.say(f"\n[{number:2d}/{len(steps)}] {step.title}", BOLD)
            self.say(f"        {step.story}", DIM)
            self.say(f"        expect   {step.expected}")
            log_mark = self.rig.log.count
            try:
                seen = step.run()
            except (StepFailed, RuntimeError) as exc:
                seen = Seen(f"FAILED: {exc}", False)
            finally:
                self._tidy()
            self.say(f"        saw      {seen.text}", GREEN if seen.ok else RED)
            for line in self.rig.log.since(log_mark):
                self.say(f"        log      {line}", DIM)
            results.append(
                StepResult(step.title, step.expected, seen.text, seen.ok, seen.reason, seen.pulse_s)
            )
            if self.pace:
                time.sleep(self.pace)
        passed = sum(r.ok for r in results)
        colour = GREEN if passed == len(results) else RED
        self.say(f"\n{passed}/{len(results)} steps as expected.", colour)
        return results

    def _pulse(self, relay_mark: int) -> float:
        return wait_pulse(self.rig, relay_mark, self.open_s)

    def _press(self, which: DoorInput, active: bool) -> None:
        self.rig.set_input(which, active)
        if active:
            self._inputs.add(which)
        else:
            self._inputs.discard(which)

    def _tidy(self) -> None:
        """Whatever a step left behind (a card, an input, a mode), after a failure too."""
        rig = self.rig
        rig.remove()
        for which in list(self._inputs):
            self._press(which, False)
        if rig.the_daemon.snapshot().mode != Mode.NORMAL.value:
            rig.set_mode(Mode.NORMAL)
        wait_until(lambda: not rig.relay_energised(), self.open_s + 2)

    # -- the steps' actions ----------------------------------------------------------------------

    def _card(self, name: str, expect: Reason, keys: str | None) -> Seen:
        rig = self.rig
        since, relay_mark = rig.observer.mark(), rig.relay_mark()
        rig.tap(name)
        if keys is not None:
            wait_pin_prompt(self.rig, since)
            rig.type(keys)
        record = wait_verdict(self.rig, since)
        assert record.reason is not None
        parts = [f"{record.kind} {record.reason.value}", led_text(self.rig)]
        pulse = None
        if record.reason is Reason.OK:
            pulse = self._pulse(relay_mark)
            parts.append(f"relay RELEASED {pulse:.2f} s, then LOCKED")
        else:
            parts.append(still_locked(self.rig, relay_mark))
            parts.append(f"({record.detail or DESCRIPTIONS[record.reason]})")
        tries = rig.by_name[name].tries_left()
        if tries is not None and keys is not None:
            parts.append(f"PIN tries left {tries}")
        ok = record.reason is expect
        if pulse is not None:
            ok = ok and abs(pulse - self.open_s) < 0.25
        return Seen("; ".join(parts), ok, record.reason, pulse)

    def _pin_timeout(self) -> Seen:
        rig = self.rig
        since, relay_mark = rig.observer.mark(), rig.relay_mark()
        rig.tap(GOOD)
        wait_pin_prompt(self.rig, since)
        rig.type(rig.pin(GOOD)[:2])
        started = time.monotonic()
        record = wait_verdict(self.rig, since, rig.timings.pin_timeout_s + 5)
        waited = time.monotonic() - started
        assert record.reason is not None
        tries = rig.by_name[GOOD].tries_left()
        text = (
            f"{record.kind} {record.reason.value} after {waited:.1f} s; {led_text(self.rig)}; "
            f"{still_locked(self.rig, relay_mark)}; PIN tries left {tries}"
        )
        return Seen(text, record.reason is Reason.PIN_TIMEOUT and tries == 3, record.reason)

    def _card_pulled(self) -> Seen:
        rig = self.rig
        since, relay_mark = rig.observer.mark(), rig.relay_mark()
        rig.tap(GOOD)
        wait_pin_prompt(self.rig, since)
        rig.type(rig.pin(GOOD)[:2])
        rig.remove()
        record = wait_verdict(self.rig, since, 5)
        assert record.reason is not None
        tries = rig.by_name[GOOD].tries_left()
        text = (
            f"{record.kind} {record.reason.value}; {led_text(self.rig)}; "
            f"{still_locked(self.rig, relay_mark)}; PIN tries left {tries}"
        )
        return Seen(text, record.reason is Reason.CARD_REMOVED and tries == 3, record.reason)

    def _rex_pulse(self) -> tuple[Record, float]:
        rig = self.rig
        since, relay_mark = rig.observer.mark(), rig.relay_mark()
        self._press(DoorInput.REX, True)
        record = wait_record(self.rig, "rex", since, 3)
        self._press(DoorInput.REX, False)
        return record, self._pulse(relay_mark)

    def _rex(self) -> Seen:
        record, pulse = self._rex_pulse()
        text = f"rex ({record.detail}); relay RELEASED {pulse:.2f} s, then LOCKED"
        return Seen(text, abs(pulse - self.open_s) < 0.25, None, pulse)

    def _forced(self) -> Seen:
        rig = self.rig
        if rig.relay_energised():
            raise StepFailed("the relay is released before the door opens")
        since = rig.observer.mark()
        self._press(DoorInput.DOOR, True)
        wait_alarm(self.rig, "forced_open", True, since, 3)
        opened = wait_record(self.rig, "door_opened", since, 3)
        alarms = sorted(rig.the_daemon.snapshot().alarms)
        since = rig.observer.mark()
        self._press(DoorInput.DOOR, False)
        wait_alarm(self.rig, "forced_open", False, since, 3)
        text = f"door_opened {opened.detail}; alarms {','.join(alarms)}; door closed: alarm cleared"
        return Seen(text, opened.detail == "forced" and "forced_open" in alarms)

    def _held_open(self) -> Seen:
        rig = self.rig
        since = rig.observer.mark()
        self._press(DoorInput.REX, True)
        wait_record(self.rig, "rex", since, 3)
        self._press(DoorInput.REX, False)
        self._press(DoorInput.DOOR, True)
        opened = wait_record(self.rig, "door_opened", since, 3)
        started = time.monotonic()
        held = rig.timings.held_open_s
        wait_alarm(self.rig, "held_open", True, since, held + 3)
        after = time.monotonic() - started
        since = rig.observer.mark()
        self._press(DoorInput.DOOR, False)
        wait_alarm(self.rig, "held_open", False, since, 3)
        if not wait_until(lambda: not rig.relay_energised(), self.open_s + 2):
            raise StepFailed("the relay stayed released after the door closed")
        text = (
            f"door_opened {opened.detail}; alarm held_open after {after:.1f} s; "
            "door closed: alarm cleared, relay LOCKED"
        )
        return Seen(text, opened.detail == "authorised")

    def _tamper(self) -> Seen:
        rig = self.rig
        since = rig.observer.mark()
        self._press(DoorInput.TAMPER, True)
        wait_alarm(self.rig, "tamper", True, since, 3)
        alarms = sorted(rig.the_daemon.snapshot().alarms)
        since = rig.observer.mark()
        self._press(DoorInput.TAMPER, False)
        wait_alarm(self.rig, "tamper", False, since, 3)
        return Seen(f"alarms {','.join(alarms)}; enclosure closed: alarm cleared", True)

    def _mode(self, mode: Mode) -> None:
        since = self.rig.observer.mark()
        self.rig.set_mode(mode)
        wait_record(self.rig, "mode", since, 3, f"-> {mode.value}")

    def _lockdown(self) -> Seen:
        rig = self.rig
        self._mode(Mode.LOCKDOWN)
        led = led_text(self.rig)
        since, relay_mark = rig.observer.mark(), rig.relay_mark()
        rig.tap(GOOD)
        record = wait_verdict(self.rig, since)
        assert record.reason is not None
        locked = still_locked(self.rig, relay_mark)
        rig.remove()
        _rex, pulse = self._rex_pulse()
        self._mode(Mode.NORMAL)
        text = (
            f"mode lockdown, {led}; {record.kind} {record.reason.value}; {locked}; "
            f"REX released the relay {pulse:.2f} s; mode normal"
        )
        return Seen(text, record.reason is Reason.LOCKDOWN, record.reason, pulse)

    def _emergency(self) -> Seen:
        rig = self.rig
        self._mode(Mode.EMERGENCY_OPEN)
        if not wait_until(rig.relay_energised, 2):
            raise StepFailed("emergency open did not release the relay")
        since = rig.observer.mark()
        rig.tap(GOOD)
        record = wait_verdict(self.rig, since)
        assert record.reason is not None
        held = rig.relay_energised()
        rig.remove()
        self._mode(Mode.NORMAL)
        if not wait_until(lambda: not rig.relay_energised(), 2):
            raise StepFailed("the relay stayed released after emergency open ended")
        text = (
            f"mode emergency_open: relay RELEASED and held; {record.kind} "
            f"{record.reason.value}; mode normal: relay LOCKED"
        )
        return Seen(text, record.reason is Reason.EMERGENCY_OPEN and held, record.reason)


def run_tour(rig: DemoRig, out: TextIO = sys.stdout, pace: float = 0.0) -> list[StepResult]:
    return Tour(rig, out, pace).run()
