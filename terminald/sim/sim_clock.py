"""A wall clock a scenario can move forward, and where a ``clock`` step moves it to.

``SimClock`` is what ``SimRig`` gives ``open_daemon(clock=...)``: the real UTC time plus
an offset that only grows. The daemon reads it from its loop, the card worker and the
link threads, so the offset sits behind a lock. A clock never goes back in a scenario:
the daemon's trusted-time floor only ever rises, and so does every time it recorded.

A ``clock`` step's value (docs/scenarios.md) is one of

* ``"mon 08:30"`` -- the next such local time (``mon`` .. ``sun``, ``HH:MM``), strictly
  after the daemon's current time: a week ahead when it is that minute already;
* ``"2026-12-24T09:00"`` (or ``...T09:00:30``) -- that local time, no offset; one
  earlier than the daemon's current time is an error when the step runs;
* ``"+30m"``, ``"+2h"``, ``"+1d"`` -- that much later (a day is 24 h).

Local means the configuration's ``[terminal] timezone``. A local time a DST change
skips or repeats resolves as ``zoneinfo`` does with ``fold=0`` (the offset before the
change); the default zone, Asia/Tokyo, has none.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MAX_AHEAD = timedelta(days=3660)  # a bound on one relative jump: ten years
_WEEKLY = re.compile(r"(mon|tue|wed|thu|fri|sat|sun) ([01]\d|2[0-3]):([0-5]\d)")
_ISO = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?")
_AHEAD = re.compile(r"\+([1-9]\d{0,6})([mhd])")
_UNITS = {"m": timedelta(minutes=1), "h": timedelta(hours=1), "d": timedelta(days=1)}
FORMS = '"mon 08:30" (mon..sun, HH:MM), "2026-12-24T09:00" (local, no offset), "+30m", "+2h", "+1d"'


class ClockBackwards(ValueError):
    """A ``clock`` step's time is before the daemon's current time (a clock never goes back)."""


@dataclass(frozen=True)
class ClockSpec:
    """A parsed ``clock`` value: exactly one of the three forms is set."""

    text: str
    weekday: int | None = None  # 0 = Monday, with ``at``
    at: time | None = None
    local: datetime | None = None  # naive: a local time in the configuration's zone
    ahead: timedelta | None = None


def parse_clock(text: str) -> ClockSpec:
    """The ``clock`` value ``text``; ValueError naming the forms when it is none of them."""
    if match := _WEEKLY.fullmatch(text):
        day, hour, minute = match.groups()
        return ClockSpec(text, weekday=WEEKDAYS.index(day), at=time(int(hour), int(minute)))
    if _ISO.fullmatch(text):
        try:
            local = datetime.fromisoformat(text)
        except ValueError as exc:
            raise ValueError(f"{text!r} is not a date and time: {exc}") from None
        return ClockSpec(text, local=local)
    if match := _AHEAD.fullmatch(text):
        ahead = int(match.group(1)) * _UNITS[match.group(2)]
        if ahead > MAX_AHEAD:
            raise ValueError(f"{text!r} is more than {MAX_AHEAD.days} days ahead")
        return ClockSpec(text, ahead=ahead)
    raise ValueError(f"{text!r} is not a time to move the clock to (forms: {FORMS})")


def next_instant(spec: ClockSpec, now: datetime, zone: ZoneInfo) -> datetime:
    """Where ``spec`` moves a clock that reads ``now`` (aware), as an aware UTC datetime.

    Never before ``now``: ClockBackwards for a local date and time already past.
    """
    if spec.ahead is not None:
        return now.astimezone(UTC) + spec.ahead  # in UTC: 24 h a day, whatever the zone
    if spec.local is not None:
        target = spec.local.replace(tzinfo=zone)
        if target < now:
            raise ClockBackwards(
                f"{spec.text} ({zone.key}) is before the daemon's time "
                f"{now.astimezone(zone):%a %Y-%m-%d %H:%M:%S}: a clock never goes back"
            )
        return target.astimezone(UTC)
    assert spec.weekday is not None and spec.at is not None
    today = now.astimezone(zone).date()
    # Eight days: today's date may have the weekday with the minute already past.
    for days in range(8):
        date = today + timedelta(days=days)
        if date.weekday() == spec.weekday:
            target = datetime.combine(date, spec.at, tzinfo=zone)
            if target > now:
                return target.astimezone(UTC)
    raise AssertionError("a weekday comes within eight days")  # pragma: no cover


def _utc_now() -> datetime:
    return datetime.now(UTC)


class SimClock:
    """The real time (``source``, aware UTC) plus an offset that only grows; thread-safe.

    Call it for the time, as ``open_daemon(clock=...)`` does.
    """

    def __init__(self, source: Callable[[], datetime] = _utc_now) -> None:
        self._source = source
        self._offset = timedelta(0)
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            offset = self._offset
        return self._source() + offset

    @property
    def offset(self) -> timedelta:
        """How far ahead of ``source`` the clock runs."""
        with self._lock:
            return self._offset

    def jump_to(self, target: datetime) -> None:
        """Run on from ``target`` (aware). ClockBackwards if it is before the clock's time."""
        with self._lock:
            now = self._source() + self._offset
            if target < now:
                raise ClockBackwards(
                    f"{target.isoformat()} is before the clock's time {now.isoformat()}"
                )
            self._offset += target - now

    def move(self, spec: ClockSpec, zone: ZoneInfo) -> datetime:
        """Jump to where ``spec`` says from the clock's current time; the new time (UTC).

        ClockBackwards for a local time already past.
        """
        with self._lock:
            now = self._source() + self._offset
            target = next_instant(spec, now, zone)
            self._offset += target - now
            return target


def ahead_text(offset: timedelta) -> str:
    """An offset in words, e.g. ``6 d 21 h 14 min ahead of the real time``."""
    minutes = int(offset.total_seconds() // 60)
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    parts = [f"{days} d"] if days else []
    parts += [f"{hours} h"] if hours else []
    parts += [f"{minutes} min"] if minutes or not parts else []
    return " ".join(parts) + " ahead of the real time"
