"""The tour's door steps: REX, forced and held-open door, tamper, lockdown, emergency open.

A mixin of ``demo_tour.Tour``: each step acts on the door inputs and the mode and reads
the outcome from the daemon's records and the mock relay (``checks``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from terminald.core.commands import Record
from terminald.core.hardware import DoorInput
from terminald.core.reasons import Reason
from terminald.core.terminal import Mode
from terminald.sim.checks import (
    StepFailed,
    led_text,
    still_locked,
    wait_alarm,
    wait_pulse,
    wait_record,
    wait_verdict,
)
from terminald.sim.demo_rig import GOOD, DemoRig
from terminald.sim.rig import wait_until


@dataclass(frozen=True)
class Seen:
    """What one step observed: its words, its verdict (if any) and the relay pulse."""

    text: str
    ok: bool
    reason: Reason | None = None
    pulse_s: float | None = None


class DoorSteps:
    """The steps that need no card but ``GOOD`` in lockdown and emergency open."""

    rig: DemoRig
    open_s: float
    _inputs: set[DoorInput]

    def _pulse(self, relay_mark: int) -> float:
        return wait_pulse(self.rig, relay_mark, self.open_s)

    def _press(self, which: DoorInput, active: bool) -> None:
        self.rig.set_input(which, active)
        if active:
            self._inputs.add(which)
        else:
            self._inputs.discard(which)

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
