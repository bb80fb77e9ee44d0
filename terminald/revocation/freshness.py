"""Staleness as policy (DESIGN.md §5).

Past valid-until the terminal raises an alarm and fails closed, unless it is configured
with a grace period; within the grace it still answers, but every answer is flagged so
the caller logs it. The grace is bounded so a misconfiguration cannot turn into "never
stale".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum

MAX_GRACE = timedelta(days=7)


class Freshness(Enum):
    FRESH = "fresh"
    GRACE = "grace"
    STALE = "stale"


@dataclass(frozen=True)
class FreshnessPolicy:
    grace: timedelta = timedelta(0)

    def __post_init__(self) -> None:
        if not timedelta(0) <= self.grace <= MAX_GRACE:
            raise ValueError(f"grace must be between 0 and {MAX_GRACE}, got {self.grace}")

    def assess(self, valid_until: datetime, now: datetime) -> Freshness:
        if now < valid_until:
            return Freshness.FRESH
        if now < valid_until + self.grace:
            return Freshness.GRACE
        return Freshness.STALE
