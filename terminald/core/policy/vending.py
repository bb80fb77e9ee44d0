"""Age-gated vending: which product, whether it is on sale now, and the holder's age.

The age comes, in this order, from the enrolment's attestation "at least N from date D"
(derived in the back office, never a birth date), from an online yes kept earlier, or from
the back office asked over the link (J-LIS's age determination, 年齢判定: the certificate's
status valid / invalid / unknown and yes / no; reference/uses.md §1). A yes "at least N as
of D" stays true, so it is kept (in the enrolment store's own table); a no is kept only in
memory and only for that local day, so a second tap does not ask again but tomorrow does.
No answer (offline, timeout) refuses: alcohol and tobacco fail closed.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Final, Protocol

from terminald.core.policy.decision import PolicyDecision
from terminald.core.policy.schedule import every_day, format_period
from terminald.core.policy.settings import Product, VendingSettings
from terminald.core.reasons import Reason
from terminald.enrolment.model import AgeAttestation, Enrolment, Person

logger = logging.getLogger(__name__)

MAX_NOES: Final = 10_000  # certificates refused today, at most (memory bound)


@dataclass(frozen=True)
class AgeAnswer:
    """The back office's answer: ``certificate`` "valid" | "invalid" | "unknown" (any other
    value is treated as "unknown"), ``over`` yes / no / None (could not tell)."""

    certificate: str
    over: bool | None


class AgeOracle(Protocol):
    """Asks the back office "is the holder at least ``age`` on ``today`` (local date)?";
    blocks up to its own timeout; None when offline or no answer in time."""

    def __call__(
        self, issuer_key_id: bytes, serial: int, age: int, today: date
    ) -> AgeAnswer | None: ...


def attested(ages: Iterable[AgeAttestation], threshold: int, today: date) -> bool:
    """Whether an attestation says the holder is at least ``threshold`` on ``today``."""
    return any(a.age >= threshold and today >= a.since for a in ages)


def choose_product(
    settings: VendingSettings, selection: str | None
) -> tuple[Product | None, PolicyDecision | None]:
    """The product a tap buys, or a refusal. One product: it, whatever the selection; none
    configured: no product (the machine's age applies); several: the selected key's."""
    if not settings.products:
        return None, None
    if len(settings.products) == 1:
        return settings.products[0], None
    if selection is None:
        keys = ", ".join(p.key for p in settings.products)
        return None, PolicyDecision(Reason.NO_SELECTION, f"choose a product ({keys}) first")
    product = settings.product(selection)
    if product is None:
        return None, PolicyDecision(Reason.NO_SELECTION, f"no product on key {selection!r}")
    return product, None


class DailyNoes:
    """Certificates the back office said are under an age, for one local day only."""

    def __init__(self, max_entries: int = MAX_NOES) -> None:
        self._lock = threading.Lock()
        self._day: date | None = None
        self._under: dict[tuple[bytes, int], int] = {}  # the lowest age answered no
        self._max = max_entries

    def said_no(self, key: tuple[bytes, int], age: int, today: date) -> bool:
        """A no at ``age`` or below today (under 18 is under 20 too)."""
        with self._lock:
            if self._day != today:
                return False
            lowest = self._under.get(key)
            return lowest is not None and lowest <= age

    def remember(self, key: tuple[bytes, int], age: int, today: date) -> None:
        with self._lock:
            if self._day != today:  # a new day forgets every no
                self._day, self._under = today, {}
            self._under[key] = min(age, self._under.get(key, age))
            while len(self._under) > self._max:
                del self._under[next(iter(self._under))]


class AgeCheck:
    """The age decision for one certificate; safe from any thread (the oracle is called
    without any lock held, as it blocks)."""

    def __init__(self, oracle: AgeOracle | None) -> None:
        self.oracle = oracle
        self.noes = DailyNoes()

    def decide(
        self,
        key: tuple[bytes, int],
        threshold: int,
        today: date,
        person: Person | None,
        enrolment: Enrolment | None,
    ) -> tuple[Reason, str, str]:
        """(reason, detail, age_source) for "at least ``threshold`` on ``today``"."""
        if person is not None and attested(person.ages, threshold, today):
            return Reason.OK, "", "attestation"
        if enrolment is not None and attested(self._kept(key, enrolment), threshold, today):
            return Reason.OK, "", "kept"
        if self.noes.said_no(key, threshold, today):
            return Reason.AGE_UNDER, f"under {threshold} (answered earlier today)", "online"
        answer = self._ask(key, threshold, today)
        if answer is None:
            return Reason.AGE_SERVICE_OFFLINE, "the back office did not answer", "online"
        if answer.certificate == "invalid":
            return (
                Reason.AGE_CERT_INVALID,
                "the back office says the certificate is invalid",
                "online",
            )
        if answer.certificate != "valid" or answer.over is None:
            return Reason.AGE_UNKNOWN, f"certificate {answer.certificate!r}, age unknown", "online"
        if not answer.over:
            self.noes.remember(key, threshold, today)
            return Reason.AGE_UNDER, f"under {threshold}", "online"
        if enrolment is not None:
            try:
                enrolment.remember_age_yes(*key, AgeAttestation(threshold, today))
            except Exception as exc:  # the yes holds now; it is only not kept for next time
                logger.warning("could not keep an online age yes: %s", exc)
        return Reason.OK, "", "online"

    def _kept(self, key: tuple[bytes, int], enrolment: Enrolment) -> tuple[AgeAttestation, ...]:
        try:
            return enrolment.age_yes(*key)
        except Exception as exc:  # an unreadable store: ask online instead
            logger.warning("could not read the kept age answers: %s", exc)
            return ()

    def _ask(self, key: tuple[bytes, int], threshold: int, today: date) -> AgeAnswer | None:
        if self.oracle is None:
            return None
        try:
            return self.oracle(key[0], key[1], threshold, today)
        except Exception as exc:  # the link promises never to raise; if it does, offline
            logger.warning("the age oracle raised: %r", exc)
            return None


def decide_vend(
    settings: VendingSettings,
    ages: AgeCheck,
    key: tuple[bytes, int],
    selection: str | None,
    local: datetime,
    person: Person | None,
    enrolment: Enrolment | None,
) -> PolicyDecision:
    """A vend decision (without the subject) for the certificate ``key`` at the site's
    local time ``local``; ``today`` for the age is ``local``'s date, not UTC's."""
    product, refusal = choose_product(settings, selection)
    if refusal is not None:
        return refusal
    attrs: list[tuple[str, str]] = []
    threshold = settings.machine_age
    pin_required = True
    if product is not None:
        attrs.append(("product", product.key))
        threshold, pin_required = product.age, product.pin
        if not every_day(product.hours, local):
            hours = ", ".join(format_period(p) for p in product.hours)
            return PolicyDecision(
                Reason.OUTSIDE_SCHEDULE, f"{product.name} is sold {hours} only", attrs=tuple(attrs)
            )
    if threshold is None:
        return PolicyDecision(Reason.OK, pin_required=pin_required, attrs=tuple(attrs))
    reason, detail, source = ages.decide(key, threshold, local.date(), person, enrolment)
    attrs += [("age", str(threshold)), ("age_source", source)]
    return PolicyDecision(reason, detail, pin_required=pin_required, attrs=tuple(attrs))
