"""The office gate: door groups, the person's weekly schedule with holidays, anti-passback."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from terminald.core.policy.calendar import HolidayCalendar
from terminald.core.policy.decision import PolicyDecision
from terminald.core.policy.passback import Presence
from terminald.core.policy.schedule import allowed
from terminald.core.policy.settings import PolicySettings
from terminald.core.reasons import Reason
from terminald.enrolment.model import Person, WeeklySchedule


def decide_gate(
    settings: PolicySettings,
    person: Person,
    now: datetime,
    schedule_of: Callable[[str], WeeklySchedule | None],
    calendar: Callable[[], HolidayCalendar],
    presence: Presence,
) -> PolicyDecision:
    """OK or a refusal (without the subject) for an enrolled ``person`` at ``now``.
    ``schedule_of`` and ``calendar`` read the enrolment set (``calendar`` may raise
    ValueError for a country the holidays library does not know: refused, fail closed)."""
    gate = settings.gate
    if gate.groups and not person.groups & gate.groups:
        return PolicyDecision(
            Reason.NO_ACCESS, f"not in a group of this door ({', '.join(sorted(gate.groups))})"
        )
    refusal = schedule_refusal(settings, person, now, schedule_of, calendar)
    if refusal is not None:
        return refusal
    if gate.passback is None:
        return PolicyDecision(Reason.OK)
    reason, detail, attrs = presence.check(person.subject, gate.passback, now, settings.timezone)
    return PolicyDecision(reason, detail, attrs=(("passback", gate.passback.role), *attrs))


def schedule_refusal(
    settings: PolicySettings,
    person: Person,
    now: datetime,
    schedule_of: Callable[[str], WeeklySchedule | None],
    calendar: Callable[[], HolidayCalendar],
) -> PolicyDecision | None:
    """``outside_schedule`` when ``person``'s weekly schedule (with the holidays) does not
    allow ``now``, else None (no schedule: any time). Used by every door: the gate, and
    an attendance clock's role-based door."""
    if person.schedule is None:
        return None
    schedule = schedule_of(person.schedule)
    if schedule is None:  # the set names a schedule it does not carry: fail closed
        return PolicyDecision(
            Reason.OUTSIDE_SCHEDULE, f"schedule {person.schedule!r} is not in the enrolment set"
        )
    try:
        holidays = calendar()
    except ValueError as exc:
        return PolicyDecision(Reason.OUTSIDE_SCHEDULE, str(exc))
    local = now.astimezone(settings.timezone)
    if allowed(schedule, local, holidays.is_holiday):
        return None
    when = local.strftime("%a %H:%M")
    holiday = " (a holiday)" if holidays.is_holiday(local.date()) else ""
    return PolicyDecision(
        Reason.OUTSIDE_SCHEDULE, f"schedule {schedule.name!r} does not allow {when}{holiday}"
    )
