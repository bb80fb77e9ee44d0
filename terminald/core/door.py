"""Door supervision: what the door contact, REX and tamper inputs mean.

Pure: inputs and ``now`` (monotonic seconds) in, commands out. The terminal state
machine tells it when the lock was released; it decides whether an opening was
authorised, when a door has been held open too long, and when to relock early.

* An opening while the lock is released (card, REX or emergency) is authorised;
  any other opening is *forced* — alarm until the door closes.
* An authorised opening longer than ``held_open_s`` raises *held open* until closed.
* Closing the door after an authorised opening relocks at once instead of waiting
  for the end of the pulse, so a door cannot be reopened on the same grant.
* REX releases the lock in every mode, lockdown included: egress is a life-safety
  function, lockdown is about who gets in.
* Tamper raises an alarm while the enclosure is open; with ``tamper_blocks_grants``
  no card is admitted until it closes (someone may be at the wiring). REX still works.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from terminald.core.commands import AlarmChanged, Command, PulseRelay, Record, ReleaseRelay
from terminald.core.hardware import DoorInput, InputChanged


class Alarm(Enum):
    FORCED_OPEN = "forced_open"
    HELD_OPEN = "held_open"
    TAMPER = "tamper"


@dataclass(frozen=True)
class DoorSettings:
    open_ms: int = 5000
    held_open_s: float = 30.0
    contact_wired: bool = True
    rex_wired: bool = True
    tamper_wired: bool = True
    tamper_blocks_grants: bool = True


class DoorSupervisor:
    def __init__(self, settings: DoorSettings) -> None:
        self.settings = settings
        self._released_until: float | None = None  # end of the current lock release
        self._release_by_rex = False  # the current release is an exit, not a card grant
        self._held_open = False  # the lock is held released (emergency open)
        self._door_open = False
        self._opened_authorised_at: float | None = None
        self.alarms: set[Alarm] = set()

    # -- what the terminal tells it ----------------------------------------------------------

    @property
    def door_state(self) -> str:
        """``open``, ``closed``, or ``not_wired`` when no door contact is wired."""
        if not self.settings.contact_wired:
            return "not_wired"
        return "open" if self._door_open else "closed"

    def released(self, now: float, *, by_rex: bool = False) -> None:
        """The lock was just pulsed open for ``open_ms``."""
        self._released_until = now + self.settings.open_ms / 1000
        self._release_by_rex = by_rex

    def relocked(self) -> None:
        """The relay was de-energised outside the door logic (an error, a mode change):
        an opening from now on is forced, not authorised."""
        self._released_until = None
        self._release_by_rex = False

    def cancel_grant(self, now: float) -> bool:
        """End a card grant's release early (lockdown); an exit (REX) is left to run.
        True when a grant was cut, so the relay must be de-energised."""
        if self._is_released(now) and not self._held_open and not self._release_by_rex:
            self.relocked()
            return True
        return False

    def unwire(self) -> list[Command]:
        """After a reconfiguration: clear the alarms of inputs no longer wired (they
        can never be cleared by their input again)."""
        commands: list[Command] = []
        if not self.settings.contact_wired:
            self._door_open = False
            self._opened_authorised_at = None
            commands += self._alarm(Alarm.FORCED_OPEN, False)
            commands += self._alarm(Alarm.HELD_OPEN, False)
        if not self.settings.tamper_wired:
            commands += self._alarm(Alarm.TAMPER, False)
        return commands

    @property
    def grants_blocked(self) -> bool:
        """The enclosure is open and the configuration refuses grants meanwhile."""
        return self.settings.tamper_blocks_grants and Alarm.TAMPER in self.alarms

    def hold(self, held: bool) -> None:
        """Emergency open on (lock held released) or off."""
        self._held_open = held

    def _is_released(self, now: float) -> bool:
        return self._held_open or (self._released_until is not None and now < self._released_until)

    # -- inputs ------------------------------------------------------------------------------

    def on_input(self, event: InputChanged, now: float) -> list[Command]:
        if event.input is DoorInput.DOOR and self.settings.contact_wired:
            return self._door(event.active, now)
        if event.input is DoorInput.REX and self.settings.rex_wired and event.active:
            return self._rex(now)
        if event.input is DoorInput.TAMPER and self.settings.tamper_wired:
            return self._alarm(Alarm.TAMPER, event.active)
        # VEND_COMPLETE is the vending machine's line, not the door's (core/vend.py).
        return []

    def _rex(self, now: float) -> list[Command]:
        if self._held_open:
            return [Record("rex", "door already held open")]
        self.released(now, by_rex=True)
        return [PulseRelay(self.settings.open_ms), Record("rex", "request to exit")]

    def _door(self, opened: bool, now: float) -> list[Command]:
        if opened == self._door_open:
            return []
        self._door_open = opened
        if opened:
            if self._is_released(now):
                self._opened_authorised_at = now
                return [Record("door_opened", "authorised")]
            return [*self._alarm(Alarm.FORCED_OPEN, True), Record("door_opened", "forced")]
        commands: list[Command] = [Record("door_closed", "")]
        if self._opened_authorised_at is not None and not self._held_open:
            if self._released_until is not None and now < self._released_until:
                commands.append(ReleaseRelay())  # relock on close
            self._released_until = None
        self._opened_authorised_at = None
        commands += self._alarm(Alarm.FORCED_OPEN, False)
        commands += self._alarm(Alarm.HELD_OPEN, False)
        return commands

    def _alarm(self, alarm: Alarm, active: bool) -> list[Command]:
        if active == (alarm in self.alarms):
            return []
        if active:
            self.alarms.add(alarm)
        else:
            self.alarms.discard(alarm)
        return [AlarmChanged(alarm.value, active)]

    # -- time --------------------------------------------------------------------------------

    def deadline(self) -> float | None:
        """When ``tick`` must next run, if anything is pending."""
        if (
            self._opened_authorised_at is not None
            and Alarm.HELD_OPEN not in self.alarms
            and not self._held_open
        ):
            return self._opened_authorised_at + self.settings.held_open_s
        return None

    def tick(self, now: float) -> list[Command]:
        due = self.deadline()
        if due is not None and now >= due and self._door_open:
            return self._alarm(Alarm.HELD_OPEN, True)
        return []
