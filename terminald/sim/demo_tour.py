"""The demo's scripted tour: every outcome in turn, read back from the real daemon.

Each step acts on the rig (``demo_rig.DemoRig``) and reads what happened from the
daemon's own records and the mock pins (``checks``); a step that sees something else
fails the tour (exit 1 from ``terminald sim demo --tour``). Every card the screen offers
(the rig's desk) gets a step of its own, expecting the verdict the test PKI promises for
it (``DemoCard.expected``), so a card added to the desk cannot be left out of the tour.
The door and mode steps are in ``demo_tour_door``.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TextIO

from terminald.core.hardware import DoorInput
from terminald.core.reasons import DESCRIPTIONS, Reason
from terminald.core.terminal import Mode
from terminald.sim.checks import (
    StepFailed,
    led_text,
    still_locked,
    wait_pin_prompt,
    wait_verdict,
)
from terminald.sim.demo_rig import GOOD, MISTYPED, NOT_ENROLLED_CARD, DemoCard, DemoRig
from terminald.sim.demo_tour_door import DoorSteps, Seen
from terminald.sim.rig import wait_until
from terminald.sim.twin import TWIN

__all__ = ["GOOD", "Seen", "Step", "StepResult", "Tour", "run_tour"]

GREEN, RED, AMBER, DIM, BOLD, RESET = (
    "\033[32m",
    "\033[31m",
    "\033[33m",
    "\033[2m",
    "\033[1m",
    "\033[0m",
)

# A title and a story per card of the test PKI; a card without one is told from its
# manifest note, so it still gets its step.
CARD_STORIES: dict[str, tuple[str, str]] = {
    NOT_ENROLLED_CARD: (
        "A good card that is not enrolled here",
        f"{NOT_ENROLLED_CARD} is genuine but missing from enrolled.toml",
    ),
    TWIN: (
        "The same serial from another root",
        f"{TWIN} has {GOOD}'s serial under another root generation: another person",
    ),
    "last-try": ("One PIN try left", "the terminal never uses a person's last try"),
    "blocked": ("A blocked PIN", "only the municipal office can reset it"),
    "face-auth": ("A face-authentication card", "issued since Dec 2023: it has no PIN"),
    "non-jpki": ("Some other smart card", "no JPKI application on it"),
    "expired": ("An expired certificate", "notAfter in the past"),
    "not-yet-valid": ("A certificate not yet valid", "notBefore in the future"),
    "wrong-usage": (
        "A certificate for another use",
        "its key usage is keyEncipherment only: it cannot sign",
    ),
    "bad-signature": (
        "A damaged certificate signature",
        "one bit of the certificate's signature flipped",
    ),
    "forged-issuer": (
        "A forged issuer",
        "a trusted root's name and key id, signed by another key",
    ),
    "unknown-issuer": ("An unknown issuer", "a root this terminal does not trust"),
}


@dataclass(frozen=True)
class StepResult:
    title: str
    expected: str
    observed: str
    ok: bool
    reason: Reason | None = None
    pulse_s: float | None = None
    card: str | None = None  # the desk card this step tapped first


@dataclass(frozen=True)
class Step:
    title: str
    story: str
    expected: str
    run: Callable[[], Seen]
    card: str | None = None


class Tour(DoorSteps):
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

    def card_steps(self) -> list[Step]:
        """One step per card on the desk: the good card, the mistyped PIN, then the rest."""
        rig = self.rig
        good_pin = rig.pin(GOOD)
        wrong = "0000" if rig.pin(MISTYPED) != "0000" else "1111"
        steps = [
            Step(
                "A good card and its PIN",
                f"{GOOD} is enrolled; its holder types {good_pin} and #",
                f"granted ok, relay released {self.open_s:g} s then locked",
                self._card_step(GOOD, Reason.OK, good_pin + "#"),
                GOOD,
            ),
            Step(
                "A mistyped PIN",
                f"{MISTYPED} is enrolled; its holder types {wrong} and #",
                "refused pin_wrong, the card counts one try",
                self._card_step(MISTYPED, Reason.PIN_WRONG, wrong + "#"),
                MISTYPED,
            ),
        ]
        steps += [self._desk_step(c) for c in rig.cards if c.name not in (GOOD, MISTYPED)]
        return steps

    def _desk_step(self, card: DemoCard) -> Step:
        title, story = CARD_STORIES.get(card.name, (card.name, card.entry.note or card.summary))
        expect = card.expected
        if expect is Reason.OK:  # another good enrolled card (a PKI built with more cards)
            pin = self.rig.pin(card.name)
            story = f"{story}; its holder types {pin} and #"
            expected = f"granted ok, relay released {self.open_s:g} s then locked"
            return Step(
                title, story, expected, self._card_step(card.name, expect, pin + "#"), card.name
            )
        expected = f"refused {expect.value} before any PIN"
        return Step(title, story, expected, self._card_step(card.name, expect, None), card.name)

    def _card_step(self, name: str, expect: Reason, keys: str | None) -> Callable[[], Seen]:
        return lambda: self._card(name, expect, keys)

    def steps(self) -> list[Step]:
        t = self.rig.timings
        open_s = f"{self.open_s:g} s"
        return [
            *self.card_steps(),
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
                StepResult(
                    step.title,
                    step.expected,
                    seen.text,
                    seen.ok,
                    seen.reason,
                    seen.pulse_s,
                    step.card,
                )
            )
            if self.pace:
                time.sleep(self.pace)
        passed = sum(r.ok for r in results)
        colour = GREEN if passed == len(results) else RED
        self.say(f"\n{passed}/{len(results)} steps as expected.", colour)
        return results

    def _tidy(self) -> None:
        """Whatever a step left behind (a card, an input, a mode), after a failure too."""
        rig = self.rig
        rig.remove()
        for which in list(self._inputs):
            self._press(which, False)
        if rig.the_daemon.snapshot().mode != Mode.NORMAL.value:
            rig.set_mode(Mode.NORMAL)
        wait_until(lambda: not rig.relay_energised(), self.open_s + 2)

    # -- the card steps' actions -------------------------------------------------------------------

    def _card(self, name: str, expect: Reason, keys: str | None) -> Seen:
        rig = self.rig
        since, relay_mark = rig.observer.mark(), rig.relay_mark()
        tries_before = rig.by_name[name].tries_left()
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
        if keys is None and tries != tries_before:  # refused before any PIN: no try spent
            parts.append(f"PIN tries {tries_before} -> {tries}")
            ok = False
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


def run_tour(rig: DemoRig, out: TextIO = sys.stdout, pace: float = 0.0) -> list[StepResult]:
    return Tour(rig, out, pace).run()
