"""Attacks on the policy engine: who could be admitted who should not be, and whether a
bad set or a bad answer ends as a clear refusal rather than a traceback."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from terminald.core.policy import (
    AgeAnswer,
    AttendanceSettings,
    GateSettings,
    PassbackSettings,
    Policy,
    PolicySettings,
    Presence,
    Product,
    VendingSettings,
    parse_period,
)
from terminald.core.reasons import Reason
from terminald.enrolment.memory import MemoryEnrolment
from terminald.enrolment.model import (
    AgeAttestation,
    Credential,
    EnrolmentContent,
    Person,
)

from .support import (
    OTHER_ROOT,
    ROOT,
    SET_ISSUED,
    SET_UNTIL,
    ScriptedOracle,
    card,
    content,
    enrolment,
    jst,
    schedule,
)

MONDAY = jst(2026, 11, 30, 10)
OFFICE_HOURS = schedule("office-hours", {d: (parse_period("08:00-19:00"),) for d in range(5)})


def gate(store: MemoryEnrolment, groups: frozenset[str] = frozenset()) -> Policy:
    return Policy(PolicySettings("gate", gate=GateSettings(groups)), store, Presence(), None)


# --- the set ------------------------------------------------------------------------------


def test_a_naive_validity_in_the_set_refuses_instead_of_raising() -> None:
    """A store or codec bug that yields a naive ``valid_until`` made ``decide`` raise
    TypeError (comparing aware and naive): a traceback on the card worker, and a
    ``card_error`` at the door that says nothing true. It is the set that is broken."""
    naive = Person("E1", valid_until=datetime(2027, 1, 1))
    decision = gate(enrolment([naive], {1: "E1"})).decide(card(1), MONDAY, None)
    assert decision.reason is Reason.ENROLMENT_UNAVAILABLE
    assert "valid_until" in decision.detail and "time zone" in decision.detail


def test_a_naive_set_validity_refuses_instead_of_raising() -> None:
    store = MemoryEnrolment.installed(
        content([Person("E1")], {1: "E1"}), SET_ISSUED, datetime(2027, 1, 1)
    )
    decision = gate(store).decide(card(1), MONDAY, None)
    assert decision.reason is Reason.ENROLMENT_UNAVAILABLE and "time zone" in decision.detail


def test_a_credential_naming_a_person_not_in_the_set_is_unknown() -> None:
    broken = EnrolmentContent(
        people={"E1": Person("E1")},
        credentials={(ROOT, 1): Credential(ROOT, 1, "E1"), (ROOT, 2): Credential(ROOT, 2, "GONE")},
    )
    store = MemoryEnrolment.installed(broken, SET_ISSUED, SET_UNTIL)
    decision = gate(store).decide(card(2), MONDAY, None)
    assert decision.reason is Reason.UNKNOWN_CERTIFICATE and decision.subject is None


def test_the_same_serial_under_two_issuers_is_two_certificates() -> None:
    both = EnrolmentContent(
        people={"A": Person("A", groups=frozenset({"lab"})), "B": Person("B")},
        credentials={
            (ROOT, 7): Credential(ROOT, 7, "A"),
            (OTHER_ROOT, 7): Credential(OTHER_ROOT, 7, "B"),
        },
    )
    policy = gate(MemoryEnrolment.installed(both, SET_ISSUED, SET_UNTIL), frozenset({"lab"}))
    assert policy.decide(card(7), MONDAY, None).subject == "A"
    other = policy.decide(card(7, OTHER_ROOT), MONDAY, None)
    assert other.reason is Reason.NO_ACCESS and other.subject == "B"


# --- attendance: a role-based door is still a door ------------------------------------------


def attendance_policy(store: MemoryEnrolment) -> Policy:
    settings = PolicySettings(
        "attendance", attendance=AttendanceSettings("auto", frozenset({"staff"}))
    )
    return Policy(settings, store, Presence(), None)


def test_the_attendance_door_stays_shut_outside_the_persons_schedule() -> None:
    """Found: the clock's role-based door opened for a person of its door groups at any
    hour, although the person's schedule keeps them out of every gate then (Sunday 03:00
    here). The attendance event is still recorded; only the door stays shut."""
    night_worker = Person("E1", groups=frozenset({"staff"}), schedule="office-hours")
    store = enrolment([night_worker], {1: "E1"}, (OFFICE_HOURS,))
    policy = attendance_policy(store)
    inside = policy.decide(card(1), MONDAY, None)
    assert inside.granted and inside.attr("door") == "open"
    sunday_night = jst(2026, 11, 29, 3)
    outside = policy.decide(card(1), sunday_night, None)
    assert outside.granted and outside.attr("attendance") == "clock_in"
    assert outside.attr("door") == "closed"
    assert "schedule" in outside.detail


def test_the_attendance_door_with_an_unknown_schedule_stays_shut() -> None:
    person = Person("E1", groups=frozenset({"staff"}), schedule="nope")
    decision = attendance_policy(enrolment([person], {1: "E1"})).decide(card(1), MONDAY, None)
    assert decision.granted and decision.attr("door") == "closed"


# --- vending: ages ------------------------------------------------------------------------

BEER = Product("A", "beer", age=20)
SNACK = Product("B", "snack", age=18, pin=False)
TEA = Product("C", "tea", pin=False)


def vend_policy(oracle: ScriptedOracle, store: MemoryEnrolment | None = None) -> Policy:
    settings = PolicySettings(
        "vend", enrolment_required=False, vending=VendingSettings((BEER, SNACK, TEA))
    )
    return Policy(settings, store, Presence(), oracle)


def test_a_kept_yes_at_a_lower_age_is_not_a_yes_at_a_higher_one() -> None:
    oracle = ScriptedOracle(AgeAnswer("valid", True))
    store = MemoryEnrolment()
    policy = vend_policy(oracle, store)
    assert policy.decide(card(1), MONDAY, "B").granted  # yes at 18, kept
    assert store.age_yes(ROOT, 1) == (AgeAttestation(18, date(2026, 11, 30)),)
    oracle.answer = AgeAnswer("valid", False)
    later = MONDAY + timedelta(days=3)
    assert policy.decide(card(1), later, "A").reason is Reason.AGE_UNDER  # 20: asked again
    assert oracle.asked[-1][2] == 20


def test_a_no_does_not_outlive_the_local_day_even_within_the_same_utc_day() -> None:
    """23:30 and 00:30 in Tokyo are the same UTC date (14:30, 15:30): the no of the
    evening must not refuse the next local morning without asking."""
    oracle = ScriptedOracle(AgeAnswer("valid", False))
    policy = vend_policy(oracle)
    evening, after_midnight = jst(2026, 11, 30, 23, 30), jst(2026, 12, 1, 0, 30)
    assert evening.date() == after_midnight.date()  # the same UTC day
    assert policy.decide(card(1), evening, "A").reason is Reason.AGE_UNDER
    oracle.answer = AgeAnswer("valid", True)  # the 20th birthday
    assert policy.decide(card(1), after_midnight, "A").granted
    assert [q[3] for q in oracle.asked] == [date(2026, 11, 30), date(2026, 12, 1)]


def test_a_no_for_one_certificate_is_not_a_no_for_another() -> None:
    oracle = ScriptedOracle(AgeAnswer("valid", False))
    policy = vend_policy(oracle)
    assert policy.decide(card(1), MONDAY, "A").reason is Reason.AGE_UNDER
    oracle.answer = AgeAnswer("valid", True)
    assert policy.decide(card(2), MONDAY, "A").granted
    assert policy.decide(card(1, OTHER_ROOT), MONDAY, "A").granted


@given(
    selection=st.sampled_from([None, "A", "B", "C", "D", "", "a", "AB"]),
    answer=st.sampled_from(
        [None, AgeAnswer("valid", True), AgeAnswer("valid", False), AgeAnswer("unknown", None)]
    ),
)
def test_no_pin_is_left_out_unless_the_sold_products_own_setting_says_so(
    selection: str | None, answer: AgeAnswer | None
) -> None:
    decision = vend_policy(ScriptedOracle(answer)).decide(card(1), MONDAY, selection)
    if decision.granted and not decision.pin_required:
        product = decision.attr("product")
        assert product in ("B", "C") and selection == product
    if decision.granted:
        assert decision.attr("product") == selection


def test_a_persons_two_cards_share_anti_passback() -> None:
    """The renewed card and the old one (both linked) are one person at the gate: the
    old card passed back over the barrier does not let a second person in."""
    both = EnrolmentContent(
        people={"E1": Person("E1")},
        credentials={
            (ROOT, 1): Credential(ROOT, 1, "E1"),
            (OTHER_ROOT, 1001): Credential(OTHER_ROOT, 1001, "E1"),
        },
    )
    presence = Presence()
    settings = PolicySettings(
        "gate", gate=GateSettings(passback=PassbackSettings("entry", "gate-out"))
    )
    policy = Policy(
        settings, MemoryEnrolment.installed(both, SET_ISSUED, SET_UNTIL), presence, None
    )
    presence.partner_seen("gate-out", MONDAY)
    first = policy.decide(card(1), MONDAY, None)
    assert first.granted
    policy.granted(first, MONDAY)
    second = policy.decide(card(1001, OTHER_ROOT), MONDAY + timedelta(seconds=5), None)
    assert second.reason is Reason.ANTI_PASSBACK and second.subject == "E1"


def test_a_date_where_the_set_should_hold_a_datetime_refuses_instead_of_raising() -> None:
    person = Person("E1", valid_from=date(2026, 1, 1))  # type: ignore[arg-type]
    decision = gate(enrolment([person], {1: "E1"})).decide(card(1), MONDAY, None)
    assert decision.reason is Reason.ENROLMENT_UNAVAILABLE and "valid_from" in decision.detail
