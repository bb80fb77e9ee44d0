"""The site's holidays: the back office's own dates, or a country's public holidays.

Public holidays come from the ``holidays`` library (kept up to date with each country's
law, e.g. Japan's substitute and "sandwiched" holidays, which we would otherwise
reimplement and get wrong). It builds a year's holidays on first use and keeps them; the
lock is because that first use fills a dict that two threads may otherwise fill at once.
"""

from __future__ import annotations

import threading
from datetime import date
from typing import TYPE_CHECKING

from terminald.enrolment.model import Calendar

if TYPE_CHECKING:
    from holidays import HolidayBase


class HolidayCalendar:
    """``is_holiday(day)`` for a :class:`Calendar`. Raises ValueError at construction
    when the calendar names a country the ``holidays`` library does not know."""

    def __init__(self, calendar: Calendar) -> None:
        self.calendar = calendar
        self._lock = threading.Lock()
        self._public: HolidayBase | None = None
        if calendar.dates is None:
            import holidays  # here: its import takes ~80 ms, and only a schedule needs it

            try:
                self._public = holidays.country_holidays(calendar.country)
            except NotImplementedError as exc:
                raise ValueError(
                    f"calendar country {calendar.country!r} is not known to the holidays library"
                ) from exc

    def is_holiday(self, day: date) -> bool:
        if self._public is None:
            return day in (self.calendar.dates or frozenset())
        with self._lock:
            return day in self._public

    def name(self, day: date) -> str:
        """The holiday's name ("" when ``day`` is none, or the back office's own date)."""
        if self._public is None:
            return ""
        with self._lock:
            return str(self._public.get(day) or "")


class CalendarCache:
    """The :class:`HolidayCalendar` of the set's current :class:`Calendar`, rebuilt only
    when a new set brings another calendar; safe from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._current: HolidayCalendar | None = None

    def of(self, calendar: Calendar) -> HolidayCalendar:
        """Raises ValueError for an unknown country (see :class:`HolidayCalendar`)."""
        with self._lock:
            current = self._current
            if current is not None and (
                current.calendar is calendar or current.calendar == calendar
            ):
                return current
        built = HolidayCalendar(calendar)  # outside the lock: building may take a while
        with self._lock:
            self._current = built
        return built
