"""Playing a scenario's steps on the running rig, each reporting what it saw.

One ``Player`` per run. A step never raises: whatever went wrong is what it saw
(``ok`` false), and the next step still runs. ``expect`` reads the first decision after
the later of the last ``tap`` and the decision the previous ``expect`` read, so a
scenario reads decisions in order and never one from before its card was tapped.
"""

from __future__ import annotations

import dataclasses
import logging
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

from terminald.core.hardware import DoorInput
from terminald.core.reasons import DESCRIPTIONS, Reason
from terminald.core.terminal import Mode
from terminald.sim.card import VirtualJpkiCard
from terminald.sim.checks import (
    CARD_WAIT_S,
    StepFailed,
    wait_alarm,
    wait_pin_prompt,
    wait_record,
    wait_verdict,
)
from terminald.sim.profile import CardProfile, TimingModel
from terminald.sim.rig import PULSE_S, SimRig, wait_until
from terminald.sim.scenario_file import Step, is_profile_path
from terminald.sim.scenario_places import Places
from terminald.sim.scenario_record import record_mismatches, record_summary
from terminald.sim.sim_clock import ClockBackwards, ahead_text, parse_clock

logger = logging.getLogger(__name__)

CLI_TIMEOUT_S = 300.0
INPUT_WAIT_S = 3.0  # an input change to its record: one loop turn, far less in practice
RELOAD_WAIT_S = 10.0
SAW_MAX = 300
VEND_COMPLETE = "vend_complete"  # DoorInput's value: the member comes with the vending pieces


@dataclass(frozen=True)
class StepReport:
    index: int
    action: str
    ok: bool
    saw: str

    def to_dict(self) -> dict[str, object]:
        return {"index": self.index, "action": self.action, "ok": self.ok, "saw": self.saw}


def run_cli(args: list[str], cwd: Path) -> tuple[int, str]:
    """``terminald ARGS`` in a child of this interpreter: exit status and a line of output."""
    try:
        done = subprocess.run(
            [sys.executable, "-m", "terminald", *args],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=CLI_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return -1, f"still running after {CLI_TIMEOUT_S:g} s, stopped"
    return done.returncode, _gist(done.stdout) or _gist(done.stderr)


def _gist(text: str) -> str:
    """The last line of an output (where commands put their verdict), kept short."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        return ""
    line = lines[-1]
    return line if len(line) <= SAW_MAX else line[: SAW_MAX - 3] + "..."


def load_card(places: Places, name: str) -> tuple[str, VirtualJpkiCard]:
    """A test-PKI card by name, or a profile file; without the NFC timing model (fast)."""
    if is_profile_path(name):
        path = Path(places.expand(name))
        try:
            profile = CardProfile.load(path)
        except (OSError, ValueError, TypeError, KeyError) as exc:
            raise StepFailed(f"cannot load the card profile {path}: {exc}") from exc
        label = name  # as written: another PKI's card-001 is not this PKI's card-001
    else:
        profile, label = places.manifest.load_profile(name), name
    profile = dataclasses.replace(profile, timing=TimingModel())
    return label, VirtualJpkiCard(profile)


class Player:
    """Plays steps on ``rig``; see the module doc."""

    def __init__(self, rig: SimRig, places: Places) -> None:
        self.rig = rig
        self.places = places
        self.cards: dict[str, tuple[str, VirtualJpkiCard]] = {}  # the same card on each tap
        self.tapped: tuple[str, VirtualJpkiCard] | None = None
        self.cursor = 0  # where the next ``expect`` reads from
        self.tap_mark = 0  # the observer's mark at the last tap
        self.relay_mark = rig.relay_mark()
        self.inputs: dict[DoorInput, bool] = {}

    def play(self, step: Step) -> StepReport:
        act = getattr(self, f"_{step.action}")
        try:
            ok, saw = act(step)
        except StepFailed as exc:
            ok, saw = False, str(exc)
        except Exception as exc:  # the step failed, not the run: say so and go on
            logger.exception("event=scenario_step_error step=%d", step.index)
            ok, saw = False, f"{type(exc).__name__}: {exc}"
        return StepReport(step.index, step.action, ok, saw)

    def tidy(self) -> None:
        """Let go of every input a scenario left pressed (the rig stops after this)."""
        for which, active in self.inputs.items():
            if active:
                self.rig.set_input(which, False)

    # -- cards and keys ------------------------------------------------------------------------

    def _tap(self, step: Step) -> tuple[bool, str]:
        name = str(step.value)
        if name not in self.cards:
            self.cards[name] = load_card(self.places, name)
        label, card = self.cards[name]
        pending = self._awaiting_pin()
        self.rig.remove()
        if pending:  # pulled mid-transaction: its card_removed must not pass for this card's
            self.rig.observer.verdict(self.tap_mark, CARD_WAIT_S)
        self.tap_mark, self.relay_mark = self.rig.observer.mark(), self.rig.relay_mark()
        self.cursor = self.tap_mark
        self.rig.tap_card(card)
        self.tapped = (label, card)
        return True, f"{label} on the reader"

    def _remove(self, step: Step) -> tuple[bool, str]:
        self.rig.remove()
        return True, "the reader is empty"

    def _awaiting_pin(self) -> bool:
        """A card is on the reader and its decision has not come yet."""
        return self.rig.card_on_reader is not None and not self.rig.observer.verdict(
            self.tap_mark, 0
        )

    def _keys(self, step: Step) -> tuple[bool, str]:
        keys = self.places.expand(str(step.value))
        # At once, as a hand would: keys typed while the card is checked are kept for
        # its prompt (docs/architecture.md, "People at the keypad").
        self.rig.type(keys, hold_s=step.interval_ms / 2000)
        state = self.rig.the_daemon.snapshot().state
        return True, f"typed {len(keys)} key(s) at {step.interval_ms} ms; terminal {state}"

    def _pin(self, step: Step) -> tuple[bool, str]:
        if self.tapped is None or self.rig.card_on_reader is not self.tapped[1]:
            raise StepFailed("no card on the reader to type the PIN of")
        label, card = self.tapped
        pin = card.profile.auth_pin
        if pin is None:
            raise StepFailed(f"{label} has no PIN")
        wait_pin_prompt(self.rig, self.tap_mark)
        self.rig.type(pin + "#")
        return True, f"typed {label}'s PIN and #"

    def _expect(self, step: Step) -> tuple[bool, str]:
        want = Reason(str(step.value))
        try:
            record = wait_verdict(self.rig, self.cursor, step.within_s)
        except StepFailed as exc:
            raise StepFailed(f"{exc} (expected {want.value})") from None
        self.cursor = self.rig.observer.after(record, self.cursor)
        assert record.reason is not None
        detail = record.detail or DESCRIPTIONS[record.reason]
        saw = f"{record.kind} {record.reason.value} ({detail})"
        saw += self._tries()
        if step.kind is not None or step.attrs:
            saw += "; " + record_summary(record)
        if record.reason is not want:
            return False, f"{saw}, expected {want.value}"
        attrs = tuple(self.places.expand(a) for a in step.attrs)
        differs = record_mismatches(record, step.kind, attrs)
        if differs:
            return False, f"{saw}; " + "; ".join(differs)
        # An attendance record opens the door only for a role with it (``door=open``).
        if want is Reason.OK and (record.kind == "granted" or ("door", "open") in record.attrs):
            try:
                saw += "; " + self._released(self.relay_mark)
            except StepFailed as exc:
                return False, f"{saw}; {exc}"
        return True, saw

    def _expect_record(self, step: Step) -> tuple[bool, str]:
        kind = str(step.value)
        record = wait_record(self.rig, kind, self.cursor, step.within_s)
        self.cursor = self.rig.observer.after(record, self.cursor)
        saw = f"{record.kind}" + (f" ({record.detail})" if record.detail else "")
        saw += "; " + record_summary(record)
        attrs = tuple(self.places.expand(a) for a in step.attrs)
        differs = record_mismatches(record, None, attrs)
        return not differs, "; ".join([saw, *differs])

    def _tries(self) -> str:
        """The tapped card's PIN tries left: unchanged shows no VERIFY was sent."""
        if self.tapped is None:
            return ""
        try:
            return f"; PIN tries left {self.tapped[1].tries_left()}"
        except KeyError:  # no JPKI application or no PIN (face-authentication)
            return ""

    def _released(self, relay_mark: int) -> str:
        """The relay released after ``relay_mark``. Not waiting for it to lock again lets
        a next ``door = "open"`` step walk through while it is open, as a person does."""
        rig = self.rig

        def released() -> bool:
            levels = rig.relay_levels()
            edges = range(max(relay_mark, 1), len(levels))
            return any(levels[i] and not levels[i - 1] for i in edges)

        if wait_until(released, 3):
            return f"relay released (open_ms = {rig.config.relay.open_ms})"
        # Still released from before (a REX a moment earlier): a pulse extends, no new edge.
        if rig.relay_levels()[relay_mark - 1 : relay_mark] == [True]:
            return "relay released (it already was when the card was tapped)"
        raise StepFailed("the relay did not release")

    # -- the rest of the terminal ----------------------------------------------------------------

    def _cli(self, step: Step) -> tuple[bool, str]:
        assert isinstance(step.value, tuple)
        code, gist = run_cli([self.places.expand(a) for a in step.value], self.places.work)
        saw = f"exit {code}" + ("" if code == step.exit else f", expected {step.exit}")
        return code == step.exit, saw + (f": {gist}" if gist else "")

    def _reload(self, step: Step) -> tuple[bool, str]:
        rig, before, mark = self.rig, self.rig.config, self.rig.log.count
        rig.reload()

        def refusals() -> list[str]:
            return [line for line in rig.log.since(mark) if "event=reload_refused" in line]

        # A taken reload replaces the running configuration; a refused one logs why.
        if not wait_until(lambda: rig.config is not before or bool(refusals()), RELOAD_WAIT_S):
            raise StepFailed(f"no reload within {RELOAD_WAIT_S:g} s")
        if rig.config is not before:
            return True, "configuration reloaded"
        wait_until(lambda: any("kept the running" in line for line in refusals()), 1)
        return False, "reload refused: " + " | ".join(refusals())

    def _rex(self, step: Step) -> tuple[bool, str]:
        since, relay_mark = self.rig.observer.mark(), self.rig.relay_mark()
        self.rig.set_input(DoorInput.REX, True)
        try:
            record = wait_record(self.rig, "rex", since, INPUT_WAIT_S)
        finally:
            self.rig.set_input(DoorInput.REX, False)
        if record.detail != "request to exit":
            return True, f"rex ({record.detail})"
        return True, "rex; " + self._released(relay_mark)

    def _vend_complete(self, step: Step) -> tuple[bool, str]:
        try:
            which = DoorInput(VEND_COMPLETE)
        except ValueError:
            raise StepFailed("this terminald has no vend-complete input") from None
        try:
            self.rig.pulse_input(which)
        except RuntimeError as exc:  # the board has no vend-complete input
            raise StepFailed(str(exc)) from None
        return True, f"vend-complete input pulsed ({PULSE_S * 1000:.0f} ms)"

    def _door(self, step: Step) -> tuple[bool, str]:
        opening = step.value == "open"
        if self.inputs.get(DoorInput.DOOR, False) == opening:
            return True, f"the door was already {step.value}"
        since = self.rig.observer.mark()
        self.rig.set_input(DoorInput.DOOR, opening)
        self.inputs[DoorInput.DOOR] = opening
        kind = "door_opened" if opening else "door_closed"
        record = wait_record(self.rig, kind, since, INPUT_WAIT_S)
        alarms = ",".join(sorted(self.rig.the_daemon.snapshot().alarms)) or "none"
        detail = f" {record.detail}" if record.detail else ""
        return True, f"{record.kind}{detail}; alarms {alarms}"

    def _tamper(self, step: Step) -> tuple[bool, str]:
        active = bool(step.value)
        if self.inputs.get(DoorInput.TAMPER, False) == active:
            return True, f"tamper was already {'on' if active else 'off'}"
        since = self.rig.observer.mark()
        self.rig.set_input(DoorInput.TAMPER, active)
        self.inputs[DoorInput.TAMPER] = active
        wait_alarm(self.rig, "tamper", active, since, INPUT_WAIT_S)
        return True, "alarm tamper " + ("raised" if active else "cleared")

    def _mode(self, step: Step) -> tuple[bool, str]:
        mode = Mode(str(step.value))
        if self.rig.the_daemon.snapshot().mode == mode.value:
            return True, f"already in mode {mode.value}"
        since = self.rig.observer.mark()
        self.rig.set_mode(mode)
        record = wait_record(self.rig, "mode", since, INPUT_WAIT_S, f"-> {mode.value}")
        return True, f"mode {record.detail}"

    def _clock(self, step: Step) -> tuple[bool, str]:
        zone = ZoneInfo(self.rig.config.terminal.timezone)
        try:
            at = self.rig.clock.move(parse_clock(str(step.value)), zone)
        except ClockBackwards as exc:
            raise StepFailed(str(exc)) from None
        ahead = ahead_text(self.rig.clock.offset)
        return True, f"the daemon's clock reads {at.astimezone(zone):%a %Y-%m-%d %H:%M} ({ahead})"

    def _wait_s(self, step: Step) -> tuple[bool, str]:
        assert isinstance(step.value, float)
        time.sleep(step.value)
        return True, f"waited {step.value:g} s"
