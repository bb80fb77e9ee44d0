"""The policy a configuration turns into (core/policy), and what outlives a reload.

``build_policy`` makes the :class:`Policy` of one runtime from ``[terminal]``,
``[access]``, ``[gate]``, ``[vending]`` and ``[attendance]``, with its enrolment source:
the signed set's SQLite store (``enrolment``), the old enrolled-cards file (``enrolled``)
held in memory, or none (``any_card``). :class:`PolicyShared` is what a reload must not
forget: the anti-passback memory, the attendance toggle's memory, and the way to the back
office's age service (set once the link runs).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Final
from zoneinfo import ZoneInfo

from terminald.config import Config
from terminald.config_policy import ProductSection
from terminald.core.auth import CardIdentity
from terminald.core.policy import (
    AgeAnswer,
    AgeOracle,
    AttendanceSettings,
    GateSettings,
    PassbackSettings,
    Policy,
    PolicyDecision,
    PolicySettings,
    Presence,
    Product,
    VendingSettings,
    parse_period,
)
from terminald.core.policy.attendance import AttendanceBook
from terminald.core.reasons import Reason
from terminald.enrolment.memory import MemoryEnrolment
from terminald.enrolment.model import Credential, Enrolment, EnrolmentContent, Person
from terminald.store.enrolled import EnrolledFileError, load_enrolled
from terminald.store.enrolment_db import FILE_NAME as ENROLMENT_NAME
from terminald.store.enrolment_db import EnrolmentStore

# The old enrolled-cards file has no validity of its own: it is valid until replaced.
_FILE_ISSUED: Final = datetime(2000, 1, 1, tzinfo=UTC)
_FILE_VALID_UNTIL: Final = datetime(9000, 1, 1, tzinfo=UTC)


class PolicyShared:
    """Kept by the daemon across reloads; every part is safe from any thread."""

    def __init__(self) -> None:
        self.presence = Presence()
        self.attendance = AttendanceBook()
        self.ask: AgeOracle | None = None  # the link's ask_age, once the link runs

    def age_oracle(
        self, issuer_key_id: bytes, serial: int, age: int, today: date
    ) -> AgeAnswer | None:
        ask = self.ask
        return None if ask is None else ask(issuer_key_id, serial, age, today)


@dataclass(frozen=True)
class PolicyParts:
    policy: Policy
    enrolment: Enrolment | None
    store: EnrolmentStore | None  # the signed set's store, kept across reloads


def enrolment_path(config: Config) -> Path:
    return config.state.dir / ENROLMENT_NAME


def _product(section: ProductSection, machine_age: int) -> Product:
    """A product without its own ``age`` takes the machine's: a forgotten key must not
    sell alcohol to minors; ``age = 0`` says "no age check" explicitly."""
    hours = tuple(parse_period(text) for text in section.hours)
    age = machine_age if section.age is None else section.age
    return Product(section.key, section.name, age or None, section.pin, hours)


def policy_settings(config: Config) -> PolicySettings:
    """Raises ValueError naming the value a policy class refused (config.py checked the
    file already, so this is a second line of defence)."""
    gate = config.gate
    passback = None
    if gate.anti_passback != "off":
        passback = PassbackSettings(
            gate.anti_passback,
            gate.passback_partner,
            gate.passback_reset,
            gate.passback_unreachable,
            gate.passback_partner_timeout_s,
        )
    vending = config.vending
    return PolicySettings(
        purpose=config.terminal.purpose,
        timezone=ZoneInfo(config.terminal.timezone),
        enrolment_required=config.access.policy in ("enrolment", "enrolled"),
        enrolment_grace=timedelta(hours=config.access.grace_hours),
        gate=GateSettings(frozenset(gate.groups), passback),
        vending=VendingSettings(
            tuple(_product(p, vending.age) for p in vending.products),
            vending.age or None,
        ),
        attendance=AttendanceSettings(
            config.attendance.mode, frozenset(config.attendance.door_groups)
        ),
    )


def _file_enrolment(config: Config) -> MemoryEnrolment:
    """The old enrolled.toml as a set: each card one person, allowed through every door
    group of this terminal (the file is per terminal), at any time."""
    cards = load_enrolled(config.access.enrolled)
    groups = frozenset(config.gate.groups) | frozenset(config.attendance.door_groups)
    content = EnrolmentContent()
    for card in cards:
        subject = card.label or f"{card.issuer_key_id.hex()}:{card.serial}"
        if subject in content.people:  # two cards with one label: still two people
            subject = f"{subject} ({card.issuer_key_id.hex()}:{card.serial})"
        content.people[subject] = Person(subject, card.label, groups)
        content.credentials[card.key] = Credential(card.issuer_key_id, card.serial, subject)
    return MemoryEnrolment.installed(content, _FILE_ISSUED, _FILE_VALID_UNTIL)


class FilePolicy(Policy):
    """The old enrolled-cards file: a card it does not list is ``not_enrolled``, as it
    always was (``unknown_certificate`` is the signed set's relink signal)."""

    def decide(
        self, identity: CardIdentity, now: datetime, selection: str | None
    ) -> PolicyDecision:
        decision = super().decide(identity, now, selection)
        if decision.reason is not Reason.UNKNOWN_CERTIFICATE:
            return decision
        detail = f"serial {identity.serial} of issuer {identity.issuer_hex}"
        return PolicyDecision(Reason.NOT_ENROLLED, f"{detail} is not enrolled at this terminal")


def build_policy(
    config: Config, shared: PolicyShared, previous: EnrolmentStore | None, *, check_only: bool
) -> tuple[PolicyParts | None, list[str]]:
    """The policy of ``config``, or the problems that prevent it (one line each).
    ``previous``: the running runtime's store, reused when its file is the same.
    ``check_only`` (check-config): the signed set's store is not opened."""
    try:
        settings = policy_settings(config)
    except ValueError as exc:
        return None, [f"policy: {exc}"]
    policy_class = Policy
    store: EnrolmentStore | None = None
    enrolment: Enrolment | None = None
    if config.access.policy == "enrolled":
        try:
            enrolment = _file_enrolment(config)
        except EnrolledFileError as exc:
            return None, [f"access.enrolled: {exc}"]
        policy_class = FilePolicy
    elif not check_only and (
        config.access.policy == "enrolment" or config.terminal.purpose == "vend"
    ):
        # A vending machine open to any card still keeps the back office's age yeses (and
        # reads attestations of a set, when one is installed) in the store.
        path = enrolment_path(config)
        store = previous if previous is not None and previous.path == path else EnrolmentStore(path)
        enrolment = store
    policy = policy_class(settings, enrolment, shared.presence, shared.age_oracle)
    policy.attendance = shared.attendance
    return PolicyParts(policy, enrolment, store), []
