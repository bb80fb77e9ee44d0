"""Attacks on the attendance toggle: an event dated in the future (a record written while
the clock ran ahead, seeded from the audit log at start) must not freeze the toggle."""

from __future__ import annotations

from datetime import timedelta

from terminald.core.policy import AttendanceSettings, Policy, PolicySettings, Presence
from terminald.core.policy.decision import PolicyDecision
from terminald.enrolment.model import Person

from .support import card, enrolment, jst

MORNING = jst(2026, 11, 30, 9)


def toggle_policy() -> Policy:
    settings = PolicySettings("attendance", attendance=AttendanceSettings("toggle"))
    return Policy(settings, enrolment([Person("E1")], {1: "E1"}), Presence(), None)


def tap(policy: Policy, at: timedelta) -> PolicyDecision:
    decision = policy.decide(card(1), MORNING + at, None)
    assert decision.granted
    policy.granted(decision, MORNING + at)
    return decision


def test_a_future_seed_does_not_freeze_the_toggle_at_clock_in() -> None:
    """Found: every later event was older than the seed, so none was kept; each tap of
    every day was a clock_in, and the employee could never clock out."""
    policy = toggle_policy()
    policy.seed_attendance("E1", "clock_out", MORNING + timedelta(days=400))
    assert tap(policy, timedelta(0)).attr("attendance") == "clock_in"
    assert tap(policy, timedelta(hours=8)).attr("attendance") == "clock_out"


def test_an_event_a_moment_older_than_the_known_one_still_changes_nothing() -> None:
    policy = toggle_policy()
    policy.seed_attendance("E1", "clock_in", MORNING)
    policy.seed_attendance("E1", "clock_out", MORNING - timedelta(seconds=30))
    last = policy.attendance.last("E1")
    assert last is not None and last[0] == "clock_in"
