"""Attendance: function keys, the toggle by the local day, auto, the role-based door."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from terminald.core.policy import AttendanceSettings, Policy, PolicySettings, Presence
from terminald.core.policy.attendance import AttendanceBook
from terminald.core.reasons import Reason
from terminald.enrolment.memory import MemoryEnrolment
from terminald.enrolment.model import Person

from .support import UTC, card, enrolment, jst

STAFF = Person("E1", groups=frozenset({"staff"}))
GUARD = Person("G1", groups=frozenset({"security", "staff"}))
MORNING = jst(2026, 11, 30, 8, 30)


def clock(mode: str, store: MemoryEnrolment | None = None, required: bool = True) -> Policy:
    settings = PolicySettings(
        "attendance",
        enrolment_required=required,
        attendance=AttendanceSettings(mode, door_groups=frozenset({"security"})),
    )
    if store is None:
        store = enrolment([STAFF, GUARD], {1: "E1", 2: "G1"})
    return Policy(settings, store, Presence(), None)


def tap(policy: Policy, serial: int, at: datetime, key: str | None = None) -> str | None:
    """One tap that is granted; the event it recorded."""
    decision = policy.decide(card(serial), at, key)
    assert decision.granted, decision
    policy.granted(decision, at)
    return decision.attr("attendance")


@pytest.mark.parametrize(
    ("key", "event"),
    [("A", "clock_in"), ("B", "clock_out"), ("C", "break_out"), ("D", "break_in")],
)
def test_keys_choose_the_event(key: str, event: str) -> None:
    decision = clock("keys").decide(card(1), MORNING, key)
    assert decision.granted and decision.attr("attendance") == event
    assert decision.subject == "E1"


def test_keys_mode_needs_a_key_and_a_known_one() -> None:
    policy = clock("keys")
    assert policy.decide(card(1), MORNING, None).reason is Reason.NO_SELECTION
    wrong = policy.decide(card(1), MORNING, "#")
    assert wrong.reason is Reason.NO_SELECTION and "'#'" in wrong.detail


def test_toggle_alternates_in_and_out_and_ignores_keys() -> None:
    policy = clock("toggle")
    assert tap(policy, 1, MORNING, "B") == "clock_in"
    assert tap(policy, 1, MORNING + timedelta(hours=9)) == "clock_out"
    assert tap(policy, 1, MORNING + timedelta(hours=10)) == "clock_in"
    assert tap(policy, 2, MORNING + timedelta(hours=10)) == "clock_in"  # per subject


def test_toggle_starts_each_local_day_with_clock_in() -> None:
    policy = clock("toggle")
    assert tap(policy, 1, jst(2026, 11, 30, 23, 0)) == "clock_in"
    assert tap(policy, 1, jst(2026, 12, 1, 0, 30)) == "clock_in"  # a new day in Tokyo


def test_toggle_days_are_local_not_utc() -> None:
    policy = clock("toggle")
    # 08:30 JST is 23:30 UTC the day before; 18:00 JST is 09:00 UTC: another UTC date,
    # the same day in Tokyo.
    morning = datetime(2026, 11, 29, 23, 30, tzinfo=UTC)
    assert tap(policy, 1, morning) == "clock_in"
    assert tap(policy, 1, datetime(2026, 11, 30, 9, 0, tzinfo=UTC)) == "clock_out"


def test_toggle_after_a_break_clocks_out() -> None:
    policy = clock("auto")
    assert tap(policy, 1, MORNING, "A") == "clock_in"
    assert tap(policy, 1, MORNING + timedelta(hours=3), "C") == "break_out"
    assert tap(policy, 1, MORNING + timedelta(hours=4)) == "clock_out"


def test_auto_takes_the_key_when_pressed_else_toggles() -> None:
    policy = clock("auto")
    assert tap(policy, 1, MORNING) == "clock_in"
    assert tap(policy, 1, MORNING + timedelta(hours=4), "C") == "break_out"
    assert tap(policy, 1, MORNING + timedelta(hours=5), "D") == "break_in"
    assert tap(policy, 1, MORNING + timedelta(hours=9)) == "clock_out"
    assert policy.decide(card(1), MORNING, "*").reason is Reason.NO_SELECTION


def test_the_toggle_is_seeded_from_the_audit_log() -> None:
    policy = clock("toggle")
    policy.seed_attendance("E1", "clock_in", MORNING)
    assert tap(policy, 1, MORNING + timedelta(hours=9)) == "clock_out"
    # An older seed does not overwrite what is known.
    policy.seed_attendance("E1", "clock_in", MORNING - timedelta(hours=1))
    assert tap(policy, 1, MORNING + timedelta(hours=10)) == "clock_in"
    with pytest.raises(ValueError, match="overtime_in"):
        policy.seed_attendance("E1", "overtime_in", MORNING)


def test_a_refused_or_unfinished_tap_does_not_toggle() -> None:
    policy = clock("toggle")
    first = policy.decide(card(1), MORNING, None)
    assert first.attr("attendance") == "clock_in"  # decided, but the PIN never came
    assert policy.decide(card(1), MORNING, None).attr("attendance") == "clock_in"


def test_the_door_opens_for_its_roles_only() -> None:
    policy = clock("auto")
    assert policy.decide(card(2), MORNING, "A").attr("door") == "open"
    assert policy.decide(card(1), MORNING, "A").attr("door") == "closed"
    # No door groups: the door never opens.
    none = Policy(
        PolicySettings("attendance", attendance=AttendanceSettings("auto")),
        enrolment([GUARD], {2: "G1"}),
        Presence(),
        None,
    )
    assert none.decide(card(2), MORNING, "A").attr("door") == "closed"


def test_attendance_needs_an_enrolled_person() -> None:
    assert clock("auto").decide(card(9), MORNING, "A").reason is Reason.UNKNOWN_CERTIFICATE
    anyone = clock("auto", MemoryEnrolment(), required=False)
    assert anyone.decide(card(9), MORNING, "A").reason is Reason.UNKNOWN_CERTIFICATE


def test_the_book_is_bounded() -> None:
    book = AttendanceBook(max_subjects=2)
    for i in range(3):
        book.record(f"E{i}", "clock_in", MORNING + timedelta(minutes=i))
    assert book.last("E0") is None and book.last("E2") is not None
