"""The gate through the Policy engine: the set's state, unknown certificates and relinks,
validity edges, door groups, schedules with holidays, anti-passback."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from terminald.core.auth import CardIdentity
from terminald.core.policy import (
    GateSettings,
    PassbackSettings,
    Policy,
    PolicySettings,
    Presence,
    parse_period,
)
from terminald.core.reasons import Reason
from terminald.enrolment.memory import MemoryEnrolment
from terminald.enrolment.model import Calendar, Person, SetInfo, WeeklySchedule

from .support import (
    ONE_US,
    OTHER_ROOT,
    ROOT,
    SET_UNTIL,
    TOKYO,
    UTC,
    card,
    content,
    enrolment,
    jst,
    schedule,
)

OFFICE_HOURS = schedule(
    "office-hours", {d: (parse_period("08:00-19:00"),) for d in range(5)}, holiday=()
)
SATO = Person("E1001", "Sato Hanako", frozenset({"office"}), schedule="office-hours")
LAB = Person("E2002", groups=frozenset({"lab"}))
TEMP = Person(
    "T3003",
    groups=frozenset({"office"}),
    valid_from=jst(2026, 12, 1),
    valid_until=jst(2026, 12, 15),
)
NIGHT = Person("E4004", groups=frozenset({"office"}), schedule="no-such-schedule")
PEOPLE = [SATO, LAB, TEMP, NIGHT]
CARDS = {1: "E1001", 2: "E2002", 3: "T3003", 4: "E4004"}
WEEKDAY = jst(2026, 11, 30, 10)  # a Monday, 10:00 in Tokyo


def gate(
    store: MemoryEnrolment | None = None,
    groups: frozenset[str] = frozenset({"office"}),
    passback: PassbackSettings | None = None,
    presence: Presence | None = None,
    required: bool = True,
    timezone: ZoneInfo = TOKYO,
) -> Policy:
    settings = PolicySettings(
        "gate",
        timezone=timezone,
        enrolment_required=required,
        enrolment_grace=timedelta(hours=24),
        gate=GateSettings(groups, passback),
    )
    if store is None:
        store = enrolment(PEOPLE, CARDS, (OFFICE_HOURS,))
    return Policy(settings, store, presence if presence is not None else Presence(), None)


def test_an_enrolled_person_in_the_doors_group_is_admitted_as_their_subject() -> None:
    decision = gate().decide(card(1), WEEKDAY, None)
    assert decision.granted and decision.subject == "E1001" and decision.pin_required
    assert decision.attrs == (("label", "Sato Hanako"),)  # for the audit log's label


def test_no_store_or_no_set_is_enrolment_unavailable() -> None:
    assert gate(MemoryEnrolment()).decide(card(1), WEEKDAY, None).reason is (
        Reason.ENROLMENT_UNAVAILABLE
    )
    policy = Policy(PolicySettings("gate"), None, Presence(), None)
    assert policy.decide(card(1), WEEKDAY, None).reason is Reason.ENROLMENT_UNAVAILABLE


def test_a_stale_set_refuses_everyone_after_the_grace() -> None:
    policy = gate(groups=frozenset())
    edge = SET_UNTIL + timedelta(hours=24)
    assert policy.decide(card(2), edge, None).granted  # LAB: no schedule
    stale = policy.decide(card(2), edge + ONE_US, None)
    assert stale.reason is Reason.ENROLMENT_STALE and "version 1" in stale.detail


def test_a_store_that_raises_is_enrolment_unavailable_not_a_traceback() -> None:
    class Broken(MemoryEnrolment):
        def lookup(self, issuer_key_id: bytes, serial: int) -> Person | None:
            raise OSError("database disk image is malformed")

    store = Broken(content(PEOPLE, CARDS), enrolment(PEOPLE, CARDS).info())
    decision = gate(store).decide(card(1), WEEKDAY, None)
    assert decision.reason is Reason.ENROLMENT_UNAVAILABLE and "malformed" in decision.detail


def test_an_unknown_certificate_is_refused_naming_its_identity() -> None:
    decision = gate().decide(card(99), WEEKDAY, None)
    assert decision.reason is Reason.UNKNOWN_CERTIFICATE and decision.subject is None
    assert f"issuer {ROOT.hex()} serial 99" in decision.detail
    # The same serial under another root is another certificate.
    assert gate().decide(card(1, OTHER_ROOT), WEEKDAY, None).reason is Reason.UNKNOWN_CERTIFICATE
    # A certificate no trusted root vouched for names no one.
    assert gate().decide(CardIdentity(1), WEEKDAY, None).reason is Reason.UNKNOWN_CERTIFICATE


def test_a_renewed_card_is_unknown_until_the_relink_arrives() -> None:
    store = enrolment(PEOPLE, CARDS, (OFFICE_HOURS,))
    policy = gate(store)
    renewed = card(1001)  # Sato's new certificate after renewal
    assert policy.decide(renewed, WEEKDAY, None).reason is Reason.UNKNOWN_CERTIFICATE
    # The back office links the new serial to the same subject; the next set carries it.
    store.install(
        content(PEOPLE, {**CARDS, 1001: "E1001"}, (OFFICE_HOURS,)),
        jst(2026, 11, 30, 11),
        SET_UNTIL,
        version=2,
    )
    after = policy.decide(renewed, WEEKDAY + timedelta(hours=2), None)
    assert after.granted and after.subject == "E1001"


def test_validity_edges() -> None:
    policy = gate()
    start, end = TEMP.valid_from, TEMP.valid_until
    assert start is not None and end is not None
    early = policy.decide(card(3), start - ONE_US, None)
    assert early.reason is Reason.PERSON_NOT_YET_VALID and early.subject == "T3003"
    assert policy.decide(card(3), start, None).granted  # valid_from is inclusive
    assert policy.decide(card(3), end - ONE_US, None).granted
    late = policy.decide(card(3), end, None)  # valid_until is exclusive
    assert late.reason is Reason.PERSON_EXPIRED and late.subject == "T3003"


def test_door_groups() -> None:
    refused = gate().decide(card(2), WEEKDAY, None)
    assert refused.reason is Reason.NO_ACCESS and "office" in refused.detail
    assert refused.subject == "E2002"
    assert gate(groups=frozenset({"office", "lab"})).decide(card(2), WEEKDAY, None).granted
    assert gate(groups=frozenset()).decide(card(2), WEEKDAY, None).granted  # any enrolled person


def test_schedule_and_a_japanese_public_holiday() -> None:
    policy = gate()
    assert policy.decide(card(1), jst(2026, 11, 30, 18, 59), None).granted
    assert policy.decide(card(1), jst(2026, 11, 30, 19, 0), None).reason is Reason.OUTSIDE_SCHEDULE
    assert policy.decide(card(1), jst(2026, 11, 28, 10), None).reason is Reason.OUTSIDE_SCHEDULE
    # 2026-11-23, a Monday, is Labour Thanksgiving Day: the holiday periods (none) apply.
    holiday = policy.decide(card(1), jst(2026, 11, 23, 10), None)
    assert holiday.reason is Reason.OUTSIDE_SCHEDULE and "holiday" in holiday.detail


def test_the_back_office_calendar() -> None:
    company = Calendar(dates=frozenset({date(2026, 12, 29)}))
    policy = gate(enrolment(PEOPLE, CARDS, (OFFICE_HOURS,), company))
    assert policy.decide(card(1), jst(2026, 12, 29, 10), None).reason is Reason.OUTSIDE_SCHEDULE
    assert policy.decide(card(1), jst(2026, 11, 23, 10), None).granted  # not in its list


def test_an_unknown_schedule_name_fails_closed() -> None:
    decision = gate().decide(card(4), WEEKDAY, None)
    assert decision.reason is Reason.OUTSIDE_SCHEDULE and "'no-such-schedule'" in decision.detail


def test_an_unknown_calendar_country_fails_closed() -> None:
    policy = gate(enrolment(PEOPLE, CARDS, (OFFICE_HOURS,), Calendar(country="XX")))
    decision = policy.decide(card(1), WEEKDAY, None)
    assert decision.reason is Reason.OUTSIDE_SCHEDULE and "'XX'" in decision.detail
    assert policy.decide(card(2), WEEKDAY, None).reason is Reason.NO_ACCESS  # no schedule needed


def test_a_dst_zone_reads_schedules_on_the_wall_clock() -> None:
    # New York springs forward on 2026-03-08 (a Sunday) at 02:00 -> 03:00.
    sunday_night = schedule("s", {6: (parse_period("01:00-04:00"),)})
    person = Person("U1", groups=frozenset({"office"}), schedule="s")
    store = enrolment([person], {1: "U1"}, (sunday_night,), Calendar(dates=frozenset()))
    policy = gate(store, timezone=ZoneInfo("America/New_York"))
    assert policy.decide(card(1), datetime(2026, 3, 8, 7, 30, tzinfo=UTC), None).granted  # 03:30
    assert policy.decide(card(1), datetime(2026, 3, 8, 8, 0, tzinfo=UTC), None).reason is (
        Reason.OUTSIDE_SCHEDULE  # 04:00 EDT: the period's end on the wall, 2 hours after 01:00
    )
    assert policy.decide(card(1), datetime(2026, 3, 8, 6, 30, tzinfo=UTC), None).granted  # 01:30


def test_anti_passback_through_the_engine() -> None:
    presence = Presence()
    entry = PassbackSettings("entry", "gate-out", reset=time(3, 0))
    policy = gate(passback=entry, presence=presence)
    presence.partner_seen("gate-out", WEEKDAY)
    first = policy.decide(card(1), WEEKDAY, None)
    assert first.granted and first.attr("passback") == "entry"
    # A refused or unfinished tap (the PIN failed) leaves no passage.
    assert policy.decide(card(1), WEEKDAY, None).granted
    policy.granted(first, WEEKDAY)
    second = policy.decide(card(1), WEEKDAY + timedelta(seconds=10), None)
    assert second.reason is Reason.ANTI_PASSBACK and second.subject == "E1001"
    policy.granted(second, WEEKDAY)  # a refusal: nothing changes
    presence.passed("E1001", "exit", WEEKDAY + timedelta(hours=7), "gate-out")
    presence.partner_seen("gate-out", WEEKDAY + timedelta(hours=8))
    assert policy.decide(card(1), WEEKDAY + timedelta(hours=8), None).granted


def test_any_card_gate_admits_without_a_subject() -> None:
    policy = gate(None, required=False)
    decision = policy.decide(card(12345), WEEKDAY, None)
    assert decision.granted and decision.subject is None and decision.attrs == ()
    # Even an enrolled person outside their schedule: the gate checks only the card.
    assert policy.decide(card(1), jst(2026, 11, 28, 10), None).granted


def test_a_naive_now_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="aware"):
        gate().decide(card(1), datetime(2026, 11, 30, 10), None)


def test_every_store_failure_is_enrolment_unavailable() -> None:
    class NoInfo(MemoryEnrolment):
        def info(self) -> SetInfo | None:
            raise OSError("locked")

    class NoSchedules(MemoryEnrolment):
        def schedule(self, name: str) -> WeeklySchedule | None:
            raise OSError("io error")

    class NoCalendar(MemoryEnrolment):
        def calendar(self) -> Calendar:
            raise OSError("io error")

    good = enrolment(PEOPLE, CARDS, (OFFICE_HOURS,))
    for broken in (NoInfo, NoSchedules, NoCalendar):
        store = broken(good.content(), good.info())
        decision = gate(store).decide(card(1), WEEKDAY, None)
        assert decision.reason is Reason.ENROLMENT_UNAVAILABLE, broken
        assert "io error" in decision.detail or "locked" in decision.detail
