"""The test PKI's card set: root generations, flaws and the plan of cards to issue."""

from __future__ import annotations

import enum
import secrets
import string
from dataclasses import dataclass
from datetime import datetime, timedelta

from terminald.core.reasons import Reason
from terminald.sim.profile import (
    CardKind,
)
from terminald.sim.testpki_x509 import (
    MAX_CARDS,
    _add_years,
)

# --------------------------------------------------------------------------- the card set


class CertFlaw(enum.Enum):
    """The deliberately broken certificates; each is the auth cert of its own card."""

    FORGED_ISSUER = "forged-issuer"  # AKI names a trusted root, signed by another key
    UNKNOWN_ISSUER = "unknown-issuer"  # same DN, AKI and signature of an untrusted root
    EXPIRED = "expired"
    NOT_YET_VALID = "not-yet-valid"
    WRONG_USAGE = "wrong-usage"  # UsageFlaw.KEY_ENCIPHERMENT_ONLY
    BAD_SIGNATURE = "bad-signature"  # a good certificate with one signature bit flipped


FLAW_VERDICTS: dict[CertFlaw, Reason] = {
    CertFlaw.FORGED_ISSUER: Reason.CERT_SIGNATURE_INVALID,
    CertFlaw.UNKNOWN_ISSUER: Reason.UNKNOWN_ISSUER,
    CertFlaw.EXPIRED: Reason.CERT_EXPIRED,
    CertFlaw.NOT_YET_VALID: Reason.CERT_NOT_YET_VALID,
    CertFlaw.WRONG_USAGE: Reason.CERT_WRONG_USAGE,
    CertFlaw.BAD_SIGNATURE: Reason.CERT_SIGNATURE_INVALID,
}

_FLAW_NOTES: dict[CertFlaw, str] = {
    CertFlaw.FORGED_ISSUER: "AKI claims a trusted root's key id; signed by an untrusted key",
    CertFlaw.UNKNOWN_ISSUER: "same issuer DN; AKI and signature of an untrusted root",
    CertFlaw.EXPIRED: "notAfter in the past",
    CertFlaw.NOT_YET_VALID: "notBefore in the future",
    CertFlaw.WRONG_USAGE: "KeyUsage keyEncipherment only, no digitalSignature",
    CertFlaw.BAD_SIGNATURE: "one bit of the certificate's signature value flipped",
}


@dataclass(frozen=True)
class RootGeneration:
    """One auth root generation, issued ``years_ago`` before the build time.

    Relative to ``now`` so that a PKI built at any date looks like J-LIS today: with 10-year
    roots issued 11, 7 and 3 years ago the oldest has expired, as authca01 did in 2025.
    Serials copy the real ones' shapes: 1 (authca01) and the JPKI-TEST roots' (§5.2).
    """

    name: str
    years_ago: int
    serial: int


ROOT_GENERATIONS = (
    RootGeneration("test-gen1", 11, 0x01),
    RootGeneration("test-gen2", 7, 0x00BFCD),
    RootGeneration("test-gen3", 3, 0x218887),
)
NEWEST_ROOT = ROOT_GENERATIONS[-1].name
OLDER_ROOT = ROOT_GENERATIONS[-2].name  # still valid: issues the "older generation" cards
SIGN_ROOT = "test-sign"
ROGUE_ROOT = "rogue-root"  # not trusted; copies the newest root's DN and serial


@dataclass(frozen=True)
class CardPlan:
    """One card to issue, before any key or certificate exists."""

    name: str
    expected: Reason
    kind: CardKind = "jpki"
    root: str = NEWEST_ROOT
    issued: datetime | None = None
    flaw: CertFlaw | None = None
    auth_tries: int = 3
    note: str = ""


def _random_time(start: datetime, end: datetime) -> datetime:
    span = int((end - start).total_seconds())
    return start + timedelta(seconds=secrets.randbelow(max(span, 1)))


def _years_before(now: datetime, years: int) -> datetime:
    return datetime.combine(_add_years(now.date(), -years), now.time(), now.tzinfo)


def plan_cards(cards: int, now: datetime) -> list[CardPlan]:
    """The card set: ``cards`` good cards, PIN-state cards, other card kinds, broken certs.

    Issuance windows (days before ``now``) keep every verdict true for months after ``now``:
    a cert lives 4-5 years (until the 5th birthday after issuance).
    """
    if not 1 <= cards <= MAX_CARDS:
        raise ValueError(f"cards must be 1..{MAX_CARDS}, not {cards}")
    days = timedelta(days=1)
    newest_since = _years_before(now, ROOT_GENERATIONS[-1].years_ago) + 7 * days

    def recent() -> datetime:  # under the newest root
        return _random_time(newest_since, now - days)

    def older() -> datetime:  # under the previous root, before the newest existed
        return _random_time(now - 1400 * days, now - 1130 * days)

    plans = [
        CardPlan(
            name=f"card-{index:03d}",
            expected=Reason.OK,
            root=OLDER_ROOT if index % 3 == 0 else NEWEST_ROOT,
            issued=older() if index % 3 == 0 else recent(),
        )
        for index in range(1, cards + 1)
    ]
    plans += [
        CardPlan(
            "last-try",
            Reason.PIN_TRIES_LOW,
            root=OLDER_ROOT,
            issued=older(),
            auth_tries=1,
            note="one PIN try left: a terminal must refuse rather than risk it",
        ),
        CardPlan("blocked", Reason.PIN_BLOCKED, issued=recent(), auth_tries=0),
        CardPlan(
            "face-auth",
            Reason.FACE_AUTH_CARD,
            kind="face_auth",
            issued=recent(),
            note="顔認証マイナンバーカード: no PIN, no signing certificate",
        ),
        CardPlan("non-jpki", Reason.NOT_JPKI_CARD, kind="non_jpki", note="no JPKI application"),
    ]
    for flaw in CertFlaw:
        issued = recent()
        root = NEWEST_ROOT
        if flaw is CertFlaw.EXPIRED:  # 5.3-5.75 years ago: ended 4+ months before now
            issued, root = _random_time(now - 2100 * days, now - 1950 * days), OLDER_ROOT
        elif flaw is CertFlaw.NOT_YET_VALID:
            issued = _random_time(now + 300 * days, now + 400 * days)
        plans.append(
            CardPlan(
                flaw.value,
                FLAW_VERDICTS[flaw],
                root=root,
                issued=issued,
                flaw=flaw,
                note=_FLAW_NOTES[flaw],
            )
        )
    return plans


def random_pin() -> str:
    return f"{secrets.randbelow(10_000):04d}"


def random_sign_password() -> str:
    """6-16 characters, uppercase letters and digits (jpki-card.md §3)."""
    length = 8 + secrets.randbelow(5)
    return "".join(secrets.choice(string.ascii_uppercase + string.digits) for _ in range(length))


def random_birthday() -> tuple[int, int]:
    return 1 + secrets.randbelow(12), 1 + secrets.randbelow(28)  # never 29 February
