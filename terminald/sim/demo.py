"""The demo behind the README's run command: the real gate daemon, watched and driven.

It builds a test PKI, starts pcscd with the vpcd driver (inside scripts/sandbox) and
runs the gate daemon that ``terminald run`` runs, on gpiozero's MockFactory, with
virtual My Number Cards on the virtual reader (``demo_rig``). With a terminal on stdin
and stdout a person drives it from a curses screen (``demo_ui``): tap cards, type
PINs on the keypad, open the door, press REX, flip tamper, change the mode, and watch
the LEDs, the relay, the buzzer and the log. Otherwise, or with ``--tour``, a scripted
tour walks through every outcome, reads each one from the daemon's own records and the
mock pins, and fails (exit 1) when one differs from what it should be.
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from terminald.core.commands import AlarmChanged, Record
from terminald.core.hardware import DoorInput
from terminald.core.reasons import DESCRIPTIONS, Reason
from terminald.core.terminal import Mode
from terminald.sim.demo_rig import (
    NOT_ENROLLED_CARD,
    TOUR_TIMINGS,
    DemoRig,
    DemoTimings,
    Item,
    wait_until,
)
from terminald.sim.testpki import TestPkiManifest, build_test_pki
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
CARD_WAIT_S = 15.0  # a tap to its verdict, with the NFC timing model and a full read


TOUR_CARDS = (
    GOOD,
    "card-002",
    NOT_ENROLLED_CARD,
    TWIN,
    "last-try",
    "blocked",
    "face-auth",
    "non-jpki",
    "expired",
    "forged-issuer",
    "unknown-issuer",
)


class DemoError(Exception):
    """The demo cannot run as asked (a test PKI without the cards it needs)."""


class StepFailed(Exception):
    """What the tour saw instead of what it expected."""


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


def _record(kind: str, detail: str | None = None) -> Callable[[Item], bool]:
    def match(item: Item) -> bool:
        return (
            isinstance(item, Record)
            and item.kind == kind
            and (detail is None or detail in item.detail)
        )

    return match


def _alarm(alarm: str, active: bool) -> Callable[[Item], bool]:
    def match(item: Item) -> bool:
        return isinstance(item, AlarmChanged) and item.alarm == alarm and item.active == active

    return match


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

    # -- building blocks -------------------------------------------------------------------------

    def _wait(self, match: Callable[[Item], bool], since: int, timeout: float, what: str) -> Item:
        item = self.rig.observer.wait_for(match, since, timeout)
        if item is None:
            raise StepFailed(f"no {what} within {timeout:g} s")
        return item

    def _verdict(self, since: int, timeout: float = CARD_WAIT_S) -> Record:
        record = self.rig.observer.verdict(since, timeout)
        if record is None or record.reason is None:
            raise StepFailed(f"no verdict within {timeout:g} s")
        return record

    def _pin_prompt(self, since: int) -> None:
        rig = self.rig

        def prompted() -> bool:
            return (
                rig.the_daemon.snapshot().state == "pin_entry"
                or rig.observer.verdict(since, 0) is not None
            )

        if not wait_until(prompted, CARD_WAIT_S):
            raise StepFailed("no PIN prompt")
        early = rig.observer.verdict(since, 0)
        if early is not None and early.reason is not None:
            raise StepFailed(f"{early.kind} {early.reason.value} before the PIN prompt")

    def _pulse(self, relay_mark: int) -> float:
        """The relay pulse that began after ``relay_mark``: wait for it to end."""
        rig = self.rig
        if not wait_until(lambda: bool(rig.relay_pulses(relay_mark)), self.open_s + 3):
            state = "released" if rig.relay_energised() else "locked"
            raise StepFailed(f"no complete relay pulse (relay {state})")
        return rig.relay_pulses(relay_mark)[0]

    def _led(self) -> str:
        mock = self.rig.mock
        lit: list[str] = []

        def any_lit() -> bool:
            lit[:] = [c for c in ("green", "red", "amber") if mock.led_lit(c)]
            return bool(lit)

        wait_until(any_lit, 0.7)
        return "LED " + ("+".join(lit) if lit else "off")

    def _locked(self, relay_mark: int) -> str:
        if self.rig.relay_energised() or self.rig.relay_pulses(relay_mark):
            raise StepFailed("the relay moved")
        return "relay stayed LOCKED"

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
            self._pin_prompt(since)
            rig.type(keys)
        record = self._verdict(since)
        assert record.reason is not None
        parts = [f"{record.kind} {record.reason.value}", self._led()]
        pulse = None
        if record.reason is Reason.OK:
            pulse = self._pulse(relay_mark)
            parts.append(f"relay RELEASED {pulse:.2f} s, then LOCKED")
        else:
            parts.append(self._locked(relay_mark))
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
        self._pin_prompt(since)
        rig.type(rig.pin(GOOD)[:2])
        started = time.monotonic()
        record = self._verdict(since, rig.timings.pin_timeout_s + 5)
        waited = time.monotonic() - started
        assert record.reason is not None
        tries = rig.by_name[GOOD].tries_left()
        text = (
            f"{record.kind} {record.reason.value} after {waited:.1f} s; {self._led()}; "
            f"{self._locked(relay_mark)}; PIN tries left {tries}"
        )
        return Seen(text, record.reason is Reason.PIN_TIMEOUT and tries == 3, record.reason)

    def _card_pulled(self) -> Seen:
        rig = self.rig
        since, relay_mark = rig.observer.mark(), rig.relay_mark()
        rig.tap(GOOD)
        self._pin_prompt(since)
        rig.type(rig.pin(GOOD)[:2])
        rig.remove()
        record = self._verdict(since, 5)
        assert record.reason is not None
        tries = rig.by_name[GOOD].tries_left()
        text = (
            f"{record.kind} {record.reason.value}; {self._led()}; "
            f"{self._locked(relay_mark)}; PIN tries left {tries}"
        )
        return Seen(text, record.reason is Reason.CARD_REMOVED and tries == 3, record.reason)

    def _rex_pulse(self) -> tuple[Record, float]:
        rig = self.rig
        since, relay_mark = rig.observer.mark(), rig.relay_mark()
        self._press(DoorInput.REX, True)
        record = self._wait(_record("rex"), since, 3, "rex record")
        self._press(DoorInput.REX, False)
        assert isinstance(record, Record)
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
        self._wait(_alarm("forced_open", True), since, 3, "forced_open alarm")
        opened = self._wait(_record("door_opened"), since, 3, "door_opened record")
        assert isinstance(opened, Record)
        alarms = sorted(rig.the_daemon.snapshot().alarms)
        since = rig.observer.mark()
        self._press(DoorInput.DOOR, False)
        self._wait(_alarm("forced_open", False), since, 3, "forced_open alarm cleared")
        text = f"door_opened {opened.detail}; alarms {','.join(alarms)}; door closed: alarm cleared"
        return Seen(text, opened.detail == "forced" and "forced_open" in alarms)

    def _held_open(self) -> Seen:
        rig = self.rig
        since = rig.observer.mark()
        self._press(DoorInput.REX, True)
        self._wait(_record("rex"), since, 3, "rex record")
        self._press(DoorInput.REX, False)
        self._press(DoorInput.DOOR, True)
        opened = self._wait(_record("door_opened"), since, 3, "door_opened record")
        started = time.monotonic()
        assert isinstance(opened, Record)
        held = rig.timings.held_open_s
        self._wait(_alarm("held_open", True), since, held + 3, "held_open alarm")
        after = time.monotonic() - started
        since = rig.observer.mark()
        self._press(DoorInput.DOOR, False)
        self._wait(_alarm("held_open", False), since, 3, "held_open alarm cleared")
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
        self._wait(_alarm("tamper", True), since, 3, "tamper alarm")
        alarms = sorted(rig.the_daemon.snapshot().alarms)
        since = rig.observer.mark()
        self._press(DoorInput.TAMPER, False)
        self._wait(_alarm("tamper", False), since, 3, "tamper alarm cleared")
        return Seen(f"alarms {','.join(alarms)}; enclosure closed: alarm cleared", True)

    def _mode(self, mode: Mode) -> None:
        since = self.rig.observer.mark()
        self.rig.set_mode(mode)
        self._wait(_record("mode", f"-> {mode.value}"), since, 3, f"mode {mode.value} record")

    def _lockdown(self) -> Seen:
        rig = self.rig
        self._mode(Mode.LOCKDOWN)
        led = self._led()
        since, relay_mark = rig.observer.mark(), rig.relay_mark()
        rig.tap(GOOD)
        record = self._verdict(since)
        assert record.reason is not None
        locked = self._locked(relay_mark)
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
        record = self._verdict(since)
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


def run_demo(
    *,
    pki_dir: Path | None,
    interactive: bool,
    pace: float,
    realtime: bool,
    out: TextIO = sys.stdout,
) -> int:
    """The whole demo; returns the exit code (1 when a tour step went wrong)."""
    with tempfile.TemporaryDirectory(prefix="terminald-demo-") as tmp:
        if pki_dir is None:
            print("Building a test PKI: three root generations, virtual cards ...", file=out)
            manifest = build_test_pki(Path(tmp) / "pki", cards=3)
        else:
            manifest = TestPkiManifest.load(pki_dir)
        missing = sorted({*TOUR_CARDS} - {c.name for c in manifest.cards})
        if missing and not interactive:
            raise DemoError(
                f"the tour needs the cards {', '.join(missing)}: use a test PKI built with "
                "`terminald sim pki --cards 3` (or more), or no --pki"
            )
        timings = DemoTimings() if interactive else TOUR_TIMINGS
        rig = DemoRig(Path(tmp) / "terminal", manifest, timings=timings, realtime=realtime)
        print("Starting pcscd with the vpcd reader, and the gate daemon on mock GPIO ...", file=out)
        out.flush()
        with rig:
            if interactive:
                from terminald.sim.demo_ui import run_ui

                code = run_ui(rig)
                print("Stopping: the daemon de-energises the relay; pcscd stops.", file=out)
                return code
            print(
                f"Gate daemon {rig.the_daemon.config.terminal.id!r} running "
                f"(config {rig.config_path}); pin_timeout_s={timings.pin_timeout_s:g}, "
                f"open_ms={timings.open_ms}, held_open_s={timings.held_open_s:g}",
                file=out,
                flush=True,
            )
            results = run_tour(rig, out, pace)
        return 0 if all(r.ok for r in results) else 1
