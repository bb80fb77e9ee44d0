"""The policy: who may pass here, now, for what — decided before the PIN.

One :class:`Policy` per runtime. ``decide`` runs on the card worker thread after the
certificate checks (it may block on the age oracle up to the link's timeout); ``granted``
runs on the event loop once a grant is final, so that anti-passback and the attendance
toggle learn only of passages that happened. Order of the checks: the enrolment set's state
(unavailable, stale) → the certificate's person (unknown_certificate) → the person's
validity → the purpose's rules (gate, vend, attendance).
"""

from __future__ import annotations

import logging
from contextlib import suppress
from datetime import datetime

from terminald.core.auth import CardIdentity
from terminald.core.policy.attendance import AttendanceBook, decide_attendance
from terminald.core.policy.calendar import CalendarCache, HolidayCalendar
from terminald.core.policy.decision import PolicyDecision
from terminald.core.policy.gate import decide_gate, schedule_refusal
from terminald.core.policy.passback import Presence
from terminald.core.policy.settings import PolicySettings
from terminald.core.policy.vending import AgeCheck, AgeOracle, decide_vend
from terminald.core.reasons import Reason
from terminald.enrolment.model import Enrolment, Person, WeeklySchedule

logger = logging.getLogger(__name__)

# The source recorded with our own passages (Presence: anything but the partner's id).
OWN_SOURCE = ""


class _Unavailable(Exception):
    """The enrolment store could not be read (a decision refuses enrolment_unavailable)."""


class Policy:
    """Thread-safe: its state (presence, attendance, the day's age noes, the calendar)
    lives in objects that lock themselves."""

    def __init__(
        self,
        settings: PolicySettings,
        enrolment: Enrolment | None,
        presence: Presence,
        age_oracle: AgeOracle | None,
    ) -> None:
        self.settings = settings
        self.enrolment = enrolment
        self.presence = presence
        self.attendance = AttendanceBook()
        self.ages = AgeCheck(age_oracle)
        self._calendars = CalendarCache()
        # Performance only: build the holiday calendar now, not at the first tap. The
        # holidays library imports a country's module on first use: 0.1-0.5 s on the
        # benchmark VM (docs/benchmarks.md, "Policy"), more on a Pi. A store that cannot
        # be read, or an unknown country, is left for decide to refuse, as before.
        if enrolment is not None:
            with suppress(_Unavailable, ValueError):
                self._calendar()

    def decide(
        self, identity: CardIdentity, now: datetime, selection: str | None
    ) -> PolicyDecision:
        """OK or a refusal for ``identity`` at ``now`` (aware) with the key ``selection``
        ("A"-"D", or None) pressed before the tap. Never raises for a store problem: that
        is ``enrolment_unavailable``. Raises ValueError for a naive ``now``."""
        if now.tzinfo is None:
            raise ValueError("now must be an aware datetime")
        try:
            return self._decide(identity, now, selection)
        except _Unavailable as exc:
            return PolicyDecision(Reason.ENROLMENT_UNAVAILABLE, str(exc))

    def granted(self, decision: PolicyDecision, now: datetime) -> None:
        """The grant of ``decision`` is final (the PIN and the signature checked): the
        passage and the attendance event happened at ``now``."""
        if not decision.granted or decision.subject is None:
            return
        direction = decision.attr("passback")
        if direction is not None:
            self.presence.passed(decision.subject, direction, now, OWN_SOURCE)
        event = decision.attr("attendance")
        if event is not None:
            self.attendance.record(decision.subject, event, now)

    def seed_attendance(self, subject: str, event: str, at: datetime) -> None:
        """The subject's last attendance event from the audit log (at start). Raises
        ValueError for an unknown event type or a naive time."""
        self.attendance.record(subject, event, at)

    # --- the checks ------------------------------------------------------------------

    def _decide(
        self, identity: CardIdentity, now: datetime, selection: str | None
    ) -> PolicyDecision:
        settings = self.settings
        if settings.enrolment_required:
            refusal = self._set_refusal(now)
            if refusal is not None:
                return refusal
        if identity.issuer_key_id is None:
            return PolicyDecision(
                Reason.UNKNOWN_CERTIFICATE, f"{identity.describe()}: no trusted issuer"
            )
        if not settings.enrolment_required and settings.purpose == "gate":
            return PolicyDecision(Reason.OK)  # any card: no subject, so no anti-passback
        key = (identity.issuer_key_id, identity.serial)
        person = self._person(key, required=settings.enrolment_required)
        if person is None and (settings.enrolment_required or settings.purpose == "attendance"):
            return PolicyDecision(
                Reason.UNKNOWN_CERTIFICATE,
                f"{identity.describe()} is not linked to an enrolled person",
            )
        # The person's display label travels as an attribute: the recorder writes it to
        # the audit log's label column (the loop must not look the person up again).
        label = (("label", person.label),) if person is not None and person.label else ()
        if person is not None and settings.enrolment_required:
            refusal = _validity_refusal(person, now)
            if refusal is not None:
                return PolicyDecision(
                    refusal.reason, refusal.detail, refusal.subject, attrs=(*refusal.attrs, *label)
                )
        subject = person.subject if person is not None else None
        local = now.astimezone(settings.timezone)
        if settings.purpose == "vend":
            decision = decide_vend(
                settings.vending, self.ages, key, selection, local, person, self.enrolment
            )
        elif person is None:  # unreachable: refused as unknown above
            return PolicyDecision(Reason.UNKNOWN_CERTIFICATE, identity.describe())
        elif settings.purpose == "attendance":
            decision = decide_attendance(
                settings.attendance, self.attendance, person, selection, local
            )
            if decision.attr("door") == "open":
                # A role-based door is a door: the person's schedule applies as at a gate
                # (it opened at any hour before). The attendance event is still recorded.
                shut = schedule_refusal(settings, person, now, self._schedule, self._calendar)
                if shut is not None:
                    attrs = tuple(a for a in decision.attrs if a[0] != "door")
                    decision = PolicyDecision(
                        Reason.OK,
                        f"door stays shut: {shut.detail}",
                        attrs=(*attrs, ("door", "closed")),
                    )
        else:
            decision = decide_gate(
                settings, person, now, self._schedule, self._calendar, self.presence
            )
        return PolicyDecision(
            decision.reason,
            decision.detail,
            subject,
            decision.pin_required,
            (*decision.attrs, *label),
        )

    def _set_refusal(self, now: datetime) -> PolicyDecision | None:
        if self.enrolment is None:
            return PolicyDecision(Reason.ENROLMENT_UNAVAILABLE, "no enrolment store")
        try:
            info = self.enrolment.info()
        except Exception as exc:  # the protocol says None; a store may still raise
            raise _Unavailable(f"enrolment store unreadable: {exc}") from exc
        if info is None:
            return PolicyDecision(Reason.ENROLMENT_UNAVAILABLE, "no enrolment set installed")
        _aware(info.valid_until, "the set's valid_until")
        if now > info.valid_until + self.settings.enrolment_grace:
            return PolicyDecision(
                Reason.ENROLMENT_STALE,
                f"set version {info.version} valid until {info.valid_until.isoformat()}",
            )
        return None

    def _person(self, key: tuple[bytes, int], *, required: bool) -> Person | None:
        if self.enrolment is None:
            return None
        try:
            return self.enrolment.lookup(*key)
        except Exception as exc:
            if not required:  # any card passes anyway; the person only adds an attestation
                logger.warning("enrolment lookup failed: %s", exc)
                return None
            raise _Unavailable(f"enrolment lookup failed: {exc}") from exc

    def _schedule(self, name: str) -> WeeklySchedule | None:
        assert self.enrolment is not None
        try:
            return self.enrolment.schedule(name)
        except Exception as exc:
            raise _Unavailable(f"enrolment schedule unreadable: {exc}") from exc

    def _calendar(self) -> HolidayCalendar:
        assert self.enrolment is not None
        try:
            calendar = self.enrolment.calendar()
        except Exception as exc:
            raise _Unavailable(f"enrolment calendar unreadable: {exc}") from exc
        return self._calendars.of(calendar)


def _aware(value: datetime | None, what: str) -> None:
    """A time from the set must be aware: a naive one (a store or codec bug) would make a
    comparison with ``now`` raise TypeError on the card worker, a traceback and a
    ``card_error`` at the door. It is the set that is unusable: ``enrolment_unavailable``."""
    if value is not None and (not isinstance(value, datetime) or value.tzinfo is None):
        raise _Unavailable(f"enrolment set unusable: {what} is not a time with a time zone")


def _validity_refusal(person: Person, now: datetime) -> PolicyDecision | None:
    """valid_from is inclusive, valid_until exclusive."""
    _aware(person.valid_from, f"{person.subject}'s valid_from")
    _aware(person.valid_until, f"{person.subject}'s valid_until")
    if person.valid_from is not None and now < person.valid_from:
        return PolicyDecision(
            Reason.PERSON_NOT_YET_VALID,
            f"valid from {person.valid_from.isoformat()}",
            person.subject,
        )
    if person.valid_until is not None and now >= person.valid_until:
        return PolicyDecision(
            Reason.PERSON_EXPIRED, f"valid until {person.valid_until.isoformat()}", person.subject
        )
    return None
