"""Attendance: which event a tap records, and whether the clock's door opens.

Events are typed by the person with a function key (A clock-in, B clock-out, C break-out,
D break-in; the statuses of common attendance clocks, reference/uses.md §2), or toggled:
the first tap of a local day clocks in, a tap after an in (or a break) clocks out.
The last event per subject is kept in memory, seeded from the audit log at start.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from typing import Final

from terminald.core.policy.decision import PolicyDecision
from terminald.core.policy.settings import AttendanceSettings
from terminald.core.reasons import Reason
from terminald.enrolment.model import Person

KEY_EVENTS: Final = {"A": "clock_in", "B": "clock_out", "C": "break_out", "D": "break_in"}
EVENTS: Final = frozenset(KEY_EVENTS.values())
_AT_WORK: Final = frozenset({"clock_in", "break_in", "break_out"})  # a toggle clocks these out
MAX_SUBJECTS: Final = 200_000
# An event dated further than this after now came from a clock that ran ahead (a record
# seeded from the audit log): it is forgotten, or every later tap would be "older", never
# kept, and the toggle would clock in forever.
MAX_CLOCK_AHEAD: Final = timedelta(seconds=60)


class AttendanceBook:
    """The last event per subject; safe from any thread; bounded (the stalest go first)."""

    def __init__(self, max_subjects: int = MAX_SUBJECTS) -> None:
        self._lock = threading.Lock()
        self._last: dict[str, tuple[str, datetime]] = {}
        self._max = max_subjects

    def record(self, subject: str, event: str, at: datetime) -> None:
        """``event`` at ``at`` (aware); an event older than the one known changes nothing.
        Raises ValueError for an event type that is not one of the four."""
        if event not in EVENTS:
            raise ValueError(f"attendance event must be one of {sorted(EVENTS)}, not {event!r}")
        if at.tzinfo is None:
            raise ValueError("attendance time must be aware")
        with self._lock:
            known = self._last.get(subject)
            if known is not None and known[1] > at:
                return
            self._last.pop(subject, None)
            self._last[subject] = (event, at)
            while len(self._last) > self._max:
                del self._last[next(iter(self._last))]

    def last(self, subject: str, now: datetime | None = None) -> tuple[str, datetime] | None:
        """The subject's last event; with ``now`` (aware), one dated more than
        MAX_CLOCK_AHEAD after it is forgotten and None returned."""
        with self._lock:
            known = self._last.get(subject)
            if known is not None and now is not None and known[1] > now + MAX_CLOCK_AHEAD:
                del self._last[subject]
                return None
            return known


def toggled(last: tuple[str, datetime] | None, local: datetime) -> str:
    """clock_out after an in or a break on the same local day as ``local`` (aware, in the
    site's zone), else clock_in."""
    if (
        last is not None
        and last[0] in _AT_WORK
        and last[1].astimezone(local.tzinfo).date() == local.date()
    ):
        return "clock_out"
    return "clock_in"


def decide_attendance(
    settings: AttendanceSettings,
    book: AttendanceBook,
    person: Person,
    selection: str | None,
    local: datetime,
) -> PolicyDecision:
    """The event this tap records and the door, for ``person`` at ``local`` (the site's
    local time, an aware datetime in its zone). "toggle" ignores the keys."""
    if settings.mode == "toggle" or (settings.mode == "auto" and selection is None):
        event = toggled(book.last(person.subject, local), local)
    elif selection is None:
        return PolicyDecision(Reason.NO_SELECTION, "press A (in), B (out), C or D (break) first")
    elif selection not in KEY_EVENTS:
        return PolicyDecision(Reason.NO_SELECTION, f"key {selection!r} is not an attendance key")
    else:
        event = KEY_EVENTS[selection]
    door = "open" if person.groups & settings.door_groups else "closed"
    return PolicyDecision(Reason.OK, attrs=(("attendance", event), ("door", door)))
