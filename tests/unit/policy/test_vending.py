"""Age-gated vending: product choice, hours, the age from an attestation, a kept yes, the
back office online (and offline), a no kept only for the day, the PIN-less product."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest

from terminald.core.policy import (
    AgeAnswer,
    Policy,
    PolicySettings,
    Presence,
    Product,
    VendingSettings,
    parse_period,
)
from terminald.core.reasons import Reason
from terminald.enrolment.memory import MemoryEnrolment
from terminald.enrolment.model import AgeAttestation, Person

from .support import ROOT, UTC, ScriptedOracle, card, enrolment, jst

BEER = Product("A", "beer", age=20, hours=(parse_period("05:00-23:00"),))
TOBACCO = Product("B", "tobacco", age=20)
TEA = Product("C", "tea", pin=False)
QUICK = Product("D", "tobacco (no PIN)", age=20, pin=False)
MACHINE = VendingSettings((BEER, TOBACCO, TEA, QUICK))

ADULT_FROM = date(2026, 12, 1)
SATO = Person("E1001", ages=(AgeAttestation(20, ADULT_FROM),))
NOON = jst(2026, 11, 30, 12)


def policy(
    vending: VendingSettings = MACHINE,
    oracle: ScriptedOracle | None = None,
    store: MemoryEnrolment | None = None,
    required: bool = False,
) -> Policy:
    settings = PolicySettings("vend", vending=vending, enrolment_required=required)
    return Policy(settings, store, Presence(), oracle)


def attested_store() -> MemoryEnrolment:
    return enrolment([SATO], {1: "E1001"})


def test_one_product_is_implied_several_need_a_selection() -> None:
    only = policy(VendingSettings((TOBACCO,)), ScriptedOracle())
    decision = only.decide(card(7), NOON, None)
    assert decision.granted and decision.attr("product") == "B"
    several = policy(oracle=ScriptedOracle())
    decision = several.decide(card(7), NOON, None)
    assert decision.reason is Reason.NO_SELECTION and "A, B, C, D" in decision.detail
    decision = several.decide(card(7), NOON, "B")
    assert decision.granted and decision.attr("product") == "B"


def test_a_key_without_a_product_is_no_selection() -> None:
    two = policy(VendingSettings((BEER, TOBACCO)), ScriptedOracle())
    decision = two.decide(card(7), NOON, "D")
    assert decision.reason is Reason.NO_SELECTION and "'D'" in decision.detail


def test_no_products_means_the_machines_own_age() -> None:
    oracle = ScriptedOracle()
    machine = policy(VendingSettings(machine_age=20), oracle)
    decision = machine.decide(card(7), NOON, None)
    assert decision.granted and decision.attr("product") is None
    assert decision.attr("age") == "20" and decision.pin_required
    assert oracle.asked == [(ROOT, 7, 20, date(2026, 11, 30))]
    # No threshold at all: nothing to ask.
    free = ScriptedOracle()
    assert policy(VendingSettings(), free).decide(card(7), NOON, None).granted
    assert free.asked == []


def test_product_hours_outside_are_refused() -> None:
    oracle = ScriptedOracle()
    shop = policy(oracle=oracle)
    assert shop.decide(card(7), jst(2026, 11, 30, 22, 59), "A").granted
    late = shop.decide(card(7), jst(2026, 11, 30, 23, 0), "A")
    assert late.reason is Reason.OUTSIDE_SCHEDULE and "05:00-23:00" in late.detail
    assert late.attr("product") == "A"
    assert shop.decide(card(7), jst(2026, 12, 1, 4, 59), "A").reason is Reason.OUTSIDE_SCHEDULE
    assert shop.decide(card(7), jst(2026, 11, 30, 23, 0), "B").granted  # tobacco: no hours
    assert len(oracle.asked) == 2  # the refused taps never asked


def test_age_the_day_before_the_attested_date_is_asked_and_on_it_admitted() -> None:
    offline = ScriptedOracle(answer=None)
    shop = policy(oracle=offline, store=attested_store())
    before = shop.decide(card(1), jst(2026, 11, 30, 23, 59, 59), "B")
    assert before.reason is Reason.AGE_SERVICE_OFFLINE  # not attested yet: asked, no answer
    assert offline.asked == [(ROOT, 1, 20, date(2026, 11, 30))]
    on = shop.decide(card(1), jst(2026, 12, 1, 0, 0), "B")
    assert on.granted and on.subject == "E1001"
    assert dict(on.attrs) == {"product": "B", "age": "20", "age_source": "attestation"}
    assert len(offline.asked) == 1  # the attestation needed no question


def test_today_is_the_local_date_not_utcs() -> None:
    shop = policy(oracle=ScriptedOracle(answer=None), store=attested_store())
    # 2026-11-30 23:30 UTC is 2026-12-01 08:30 in Tokyo: the attested date has come.
    late_utc = datetime(2026, 11, 30, 23, 30, tzinfo=UTC)
    assert shop.decide(card(1), late_utc, "B").granted
    # 2026-11-30 14:30 UTC is 23:30 JST on the 30th: not yet.
    assert shop.decide(card(1), datetime(2026, 11, 30, 14, 30, tzinfo=UTC), "B").reason is (
        Reason.AGE_SERVICE_OFFLINE
    )
    # And the question carries the local date.
    oracle = ScriptedOracle()
    policy(oracle=oracle).decide(card(9), late_utc, "B")
    assert oracle.asked[0][3] == date(2026, 12, 1)


def test_an_attestation_for_a_lower_age_does_not_count() -> None:
    teen = Person("E2", ages=(AgeAttestation(18, date(2020, 1, 1)),))
    oracle = ScriptedOracle(answer=None)
    shop = policy(oracle=oracle, store=enrolment([teen], {2: "E2"}))
    assert shop.decide(card(2), NOON, "B").reason is Reason.AGE_SERVICE_OFFLINE


def test_an_offline_back_office_refuses_with_its_own_reason() -> None:
    assert policy(oracle=ScriptedOracle(answer=None)).decide(card(7), NOON, "B").reason is (
        Reason.AGE_SERVICE_OFFLINE
    )
    assert policy(oracle=None).decide(card(7), NOON, "B").reason is Reason.AGE_SERVICE_OFFLINE

    def broken(issuer: bytes, serial: int, age: int, today: date) -> AgeAnswer | None:
        raise OSError("link down")

    shop = Policy(
        PolicySettings("vend", vending=MACHINE, enrolment_required=False), None, Presence(), broken
    )
    assert shop.decide(card(7), NOON, "B").reason is Reason.AGE_SERVICE_OFFLINE


def test_an_online_yes_is_kept_and_used_without_asking_again() -> None:
    store, oracle = attested_store(), ScriptedOracle(AgeAnswer("valid", True))
    shop = policy(oracle=oracle, store=store)
    first = shop.decide(card(9), NOON, "B")  # serial 9: not enrolled, any card may buy
    assert first.granted and first.attr("age_source") == "online" and first.subject is None
    assert store.age_yes(ROOT, 9) == (AgeAttestation(20, date(2026, 11, 30)),)
    oracle.answer = None  # the back office goes offline
    later = shop.decide(card(9), NOON + timedelta(days=40), "B")
    assert later.granted and later.attr("age_source") == "kept"
    assert len(oracle.asked) == 1


def test_a_no_is_kept_for_the_local_day_only() -> None:
    oracle, store = ScriptedOracle(AgeAnswer("valid", False)), attested_store()
    shop = policy(oracle=oracle, store=store)
    first = shop.decide(card(9), NOON, "B")
    assert first.reason is Reason.AGE_UNDER
    assert store.age_yes(ROOT, 9) == ()  # a no is never written to the store
    again = shop.decide(card(9), jst(2026, 11, 30, 23, 59), "B")
    assert again.reason is Reason.AGE_UNDER and "earlier today" in again.detail
    assert len(oracle.asked) == 1  # the same day: not asked again
    assert shop.ages.noes.said_no((ROOT, 9), 20, date(2026, 11, 30))
    oracle.answer = AgeAnswer("valid", True)  # the birthday
    tomorrow = shop.decide(card(9), jst(2026, 12, 1, 0, 0), "B")
    assert tomorrow.granted and len(oracle.asked) == 2
    assert not shop.ages.noes.said_no((ROOT, 9), 20, date(2026, 12, 1))
    assert store.age_yes(ROOT, 9) == (AgeAttestation(20, date(2026, 12, 1)),)


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (AgeAnswer("invalid", None), Reason.AGE_CERT_INVALID),
        (AgeAnswer("invalid", True), Reason.AGE_CERT_INVALID),
        (AgeAnswer("unknown", None), Reason.AGE_UNKNOWN),
        (AgeAnswer("valid", None), Reason.AGE_UNKNOWN),
        (AgeAnswer("revoked?", True), Reason.AGE_UNKNOWN),
        (AgeAnswer("valid", False), Reason.AGE_UNDER),
    ],
)
def test_the_back_offices_answers(answer: AgeAnswer, reason: Reason) -> None:
    store = MemoryEnrolment()
    decision = policy(oracle=ScriptedOracle(answer), store=store).decide(card(9), NOON, "B")
    assert decision.reason is reason
    assert store.age_yes(ROOT, 9) == ()  # only a valid yes is kept


def test_a_pinless_product_needs_no_pin_and_the_default_does() -> None:
    shop = policy(oracle=ScriptedOracle())
    assert shop.decide(card(9), NOON, "C").pin_required is False
    assert shop.decide(card(9), NOON, "D").pin_required is False
    assert shop.decide(card(9), NOON, "B").pin_required is True
    assert Product("A", "default").pin is True


def test_vending_with_enrolment_required_refuses_an_unknown_certificate() -> None:
    oracle = ScriptedOracle()
    shop = policy(oracle=oracle, store=attested_store(), required=True)
    decision = shop.decide(card(9), NOON, "B")
    assert decision.reason is Reason.UNKNOWN_CERTIFICATE and "serial 9" in decision.detail
    assert oracle.asked == []
    assert shop.decide(card(1), jst(2026, 12, 1, 9), "B").granted


def test_a_failing_store_still_lets_a_valid_yes_through() -> None:
    class Failing(MemoryEnrolment):
        def remember_age_yes(self, issuer_key_id: bytes, serial: int, yes: AgeAttestation) -> None:
            raise OSError("disk full")

        def age_yes(self, issuer_key_id: bytes, serial: int) -> tuple[AgeAttestation, ...]:
            raise OSError("disk gone")

    oracle = ScriptedOracle()
    assert policy(oracle=oracle, store=Failing()).decide(card(9), NOON, "B").granted
    assert len(oracle.asked) == 1


def test_a_no_at_one_age_is_a_no_at_higher_ones_but_not_lower() -> None:
    oracle = ScriptedOracle(AgeAnswer("valid", False))
    shop = policy(VendingSettings((Product("A", "sake", 20), Product("B", "energy", 18))), oracle)
    assert shop.decide(card(9), NOON, "A").reason is Reason.AGE_UNDER
    oracle.answer = AgeAnswer("valid", True)
    assert shop.decide(card(9), NOON, "B").granted  # 18 is asked: under 20 may be over 18
    assert [q[2] for q in oracle.asked] == [20, 18]
