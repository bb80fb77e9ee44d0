"""Anti-passback between an entry and an exit terminal: who is inside, as far as we know.

Each terminal keeps the last passage of every subject since the daily reset: its own
grants and the partner's, relayed over the link. An entry terminal refuses a subject whose
last passage was an entry (they are inside already: the card was passed back over the
barrier), an exit terminal one whose last passage was an exit. A subject not seen since
the reset passes.

A passage we did not hear of can only be the partner's, in the other direction, so it
could only turn a refusal into an admission. The answer therefore depends on the partner
exactly when the last passage we know of is our own; when the partner has not been heard
of within ``partner_timeout_s`` that answer is uncertain, and ``when_unreachable`` decides.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Final
from zoneinfo import ZoneInfo

from terminald.core.policy.settings import PassbackSettings
from terminald.core.reasons import Reason

# Subjects remembered at most: a partner relaying junk cannot grow memory without bound.
MAX_SUBJECTS: Final = 200_000
MAX_PARTNERS: Final = 64
# How far ahead of our clock a relayed passage or heartbeat may be dated and still count
# (two terminals' clocks differ by seconds). One further ahead comes from a clock that
# jumped or a relay that lies: it must not decide now (a future exit would admit a card
# passed back, again and again; a future entry would outlive every daily reset).
MAX_CLOCK_AHEAD: Final = timedelta(seconds=60)

Attrs = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class Passage:
    direction: str  # "entry" | "exit"
    at: datetime
    source: str  # the terminal that saw it ("" or our id for our own)


def last_reset(now: datetime, reset_local: time, timezone: ZoneInfo) -> datetime:
    """The latest instant at or before ``now`` when the local clock read ``reset_local``.
    Wall-clock arithmetic through zoneinfo, so a DST zone resets at the local time the
    operator wrote."""
    local_day: date = now.astimezone(timezone).date()
    for back in range(3):  # today's reset, else yesterday's (DST may shift by an hour)
        candidate = datetime.combine(local_day - timedelta(days=back), reset_local, timezone)
        if candidate <= now:
            return candidate
    raise AssertionError("unreachable: yesterday's reset is always in the past")


class Presence:
    """The last passage per subject and the partners' heartbeats; safe from any thread.
    Memory only: after a restart everyone is "not seen", which admits (fails open for
    anti-passback, never for access itself)."""

    def __init__(self, max_subjects: int = MAX_SUBJECTS) -> None:
        if max_subjects < 1:
            raise ValueError("max_subjects must be at least 1")
        self._max = max_subjects
        self._lock = threading.Lock()
        self._last: dict[str, Passage] = {}  # ordered by arrival: the first is the stalest
        self._partners: dict[str, datetime] = {}
        self._swept_at: datetime | None = None  # the reset the last sweep honoured

    def passed(self, subject: str, direction: str, at: datetime, source: str) -> None:
        """A subject passed ``direction`` at ``at``: our grant (``source`` is anything but
        the partner's id) or the partner's, relayed over the link. An older passage than
        the one known (a late relay) changes nothing."""
        if direction not in ("entry", "exit"):
            raise ValueError(f"passage direction must be entry or exit, not {direction!r}")
        if at.tzinfo is None:
            raise ValueError("passage time must be aware")
        with self._lock:
            if self._swept_at is not None and at < self._swept_at:
                return
            known = self._last.get(subject)
            if known is not None and known.at > at:
                return
            self._last.pop(subject, None)
            self._last[subject] = Passage(direction, at, source)
            while len(self._last) > self._max:
                del self._last[next(iter(self._last))]

    def partner_seen(self, terminal_id: str, at: datetime) -> None:
        """A heartbeat: the link heard of terminal ``terminal_id`` at ``at``."""
        with self._lock:
            previous = self._partners.get(terminal_id)
            # The newest wins (heartbeats may be reordered), except over one dated far
            # ahead of it, which would otherwise hide every true heartbeat after it.
            if previous is None or at > previous or previous > at + MAX_CLOCK_AHEAD:
                self._partners[terminal_id] = at
            while len(self._partners) > MAX_PARTNERS:
                del self._partners[next(iter(self._partners))]

    def last(self, subject: str) -> Passage | None:
        with self._lock:
            return self._last.get(subject)

    def __len__(self) -> int:
        with self._lock:
            return len(self._last)

    def reachable(self, settings: PassbackSettings, now: datetime) -> bool:
        with self._lock:
            seen = self._partners.get(settings.partner)
        return seen is not None and -MAX_CLOCK_AHEAD <= now - seen <= timedelta(
            seconds=settings.partner_timeout_s
        )

    def check(
        self, subject: str, settings: PassbackSettings, now: datetime, timezone: ZoneInfo
    ) -> tuple[Reason, str, Attrs]:
        """OK or a refusal for ``subject`` at this terminal (``settings.role``) at ``now``,
        with a detail and the attributes to record (("passback_check", "unverified") when
        admitted without the partner's say)."""
        reset = last_reset(now, settings.reset, timezone)
        with self._lock:
            self._sweep(reset)
            last = self._last.get(subject)
            if last is not None and last.at > now + MAX_CLOCK_AHEAD:
                # Forgotten, not just ignored: our own passages after now would otherwise
                # stay older than it and never be kept (passed drops older ones).
                del self._last[subject]
                last = None
        if last is None or last.at < reset or last.direction != settings.role:
            return Reason.OK, "", ()
        if last.source == settings.partner:  # the partner told us: certain
            return Reason.ANTI_PASSBACK, f"last passage was an {last.direction} at the partner", ()
        if self.reachable(settings, now):
            return Reason.ANTI_PASSBACK, f"last passage was an {last.direction} here", ()
        if settings.when_unreachable == "admit":
            return (
                Reason.OK,
                "partner unreachable: admitted unverified",
                (("passback_check", "unverified"),),
            )
        return (
            Reason.PASSBACK_PARTNER_UNREACHABLE,
            f"last passage was an {last.direction} here and partner {settings.partner} "
            f"cannot say whether an {settings.opposite} followed",
            (),
        )

    def _sweep(self, reset: datetime) -> None:
        """Forget passages before the last reset (once per reset; caller holds the lock)."""
        if self._swept_at is not None and self._swept_at > reset:
            # The clock was set back past the reset a sweep honoured: that sweep's reset
            # has not come yet, and ``passed`` must not drop passages from before it.
            self._swept_at = reset
            return
        if self._swept_at is not None and self._swept_at >= reset:
            return
        self._swept_at = reset
        for subject in [s for s, p in self._last.items() if p.at < reset]:
            del self._last[subject]
