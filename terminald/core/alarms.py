"""Door alarms made seen and heard: which alarm leads, and its beeps until it clears.

Pure, beside ``DoorSupervisor`` (which decides when an alarm is up): the terminal hands
it the set of alarms after every door event and asks it for beeps on its deadline. A
BeepPattern plays once, so the beeps are issued again every ``every_ms`` while the
alarm is up; the light is the terminal's resting light (core/terminal.py).
"""

from __future__ import annotations

from collections.abc import Collection

from terminald.core.commands import Command, PlayBeep
from terminald.core.door import Alarm
from terminald.core.feedback import ALARM_FEEDBACK, ALARM_PRIORITY, AlarmFeedback


def leading(alarms: Collection[Alarm]) -> Alarm | None:
    """The alarm shown and heard when several are up."""
    return next((a for a in ALARM_PRIORITY if a in alarms), None)


class AlarmSounder:
    def __init__(self) -> None:
        self.leading: Alarm | None = None
        self._beep_at: float | None = None

    @property
    def feedback(self) -> AlarmFeedback | None:
        return ALARM_FEEDBACK[self.leading] if self.leading is not None else None

    def update(self, alarms: Collection[Alarm], now: float) -> list[Command]:
        """After a door event: beeps at once when another alarm leads, none when all cleared."""
        top = leading(alarms)
        if top is self.leading:
            return []
        self.leading = top
        if top is None:
            self._beep_at = None
            return []
        feedback = ALARM_FEEDBACK[top]
        self._beep_at = now + feedback.every_ms / 1000
        return [PlayBeep(feedback.beeps)]

    def deadline(self) -> float | None:
        return self._beep_at

    def tick(self, now: float) -> list[Command]:
        feedback = self.feedback
        if feedback is None or self._beep_at is None or now < self._beep_at:
            return []
        self._beep_at = now + feedback.every_ms / 1000
        return [PlayBeep(feedback.beeps)]
