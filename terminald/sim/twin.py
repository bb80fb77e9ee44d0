"""The ``twin`` card: card-001's serial under another root generation.

X.509 serials are unique per issuer only, and every J-LIS root generation carries the
same DN, so two genuine cards can show the same serial (jpki-card.md §5.2). The twin is
the hardest such pair for a terminal: the same serial, subject CN, validity and CRL
distribution point as card-001, so even the first 256 bytes of EF 000A (serial, issuer
DN, validity, subject) are identical. Only its issuer (Authority Key Identifier and
signature), its key, its PIN and its signing certificate differ.

A terminal must treat it as another person: enrolled as card-001 it is ``not_enrolled``,
and a cached card-001 must never stand in for it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from cryptography.hazmat.primitives.asymmetric import rsa

from terminald.core.reasons import Reason
from terminald.sim.testpki import (
    NEWEST_ROOT,
    OLDER_ROOT,
    CardPlan,
    IssuedCard,
    PkiAuthorities,
    issue_card,
    municipality_for,
)

TWIN = "twin"
TWIN_OF = "card-001"


def twin_root(original_root: str) -> str:
    """Another trusted generation than the original's: the previous one, or the newest."""
    return OLDER_ROOT if original_root == NEWEST_ROOT else NEWEST_ROOT


def issue_twin(
    issued: Sequence[IssuedCard],
    plans: Sequence[CardPlan],
    authorities: PkiAuthorities,
    *,
    auth_key: rsa.RSAPrivateKey,
    sign_serial: int,
) -> IssuedCard:
    """The twin of ``TWIN_OF`` (already in ``issued``), with its own key and PIN."""
    index = next(i for i, plan in enumerate(plans) if plan.name == TWIN_OF)
    original, plan = issued[index], plans[index]
    assert original.entry.name == TWIN_OF and original.entry.serial is not None
    twin = CardPlan(
        TWIN,
        Reason.OK,
        root=twin_root(plan.root),
        issued=original.entry.not_before,
        note=f"{TWIN_OF}'s serial, subject and validity under another root generation "
        "(another person)",
    )
    card = issue_card(
        twin,
        authorities,
        auth_key=auth_key,
        serial=original.entry.serial,
        sign_serial=sign_serial,
        municipality=municipality_for(index),
        subject_of=original.entry,
    )
    if card.entry.pin == original.entry.pin:  # its own PIN, so a test can tell them apart
        pin = f"{(int(original.entry.pin or 0) + 1) % 10_000:04d}"
        card = IssuedCard(replace(card.profile, auth_pin=pin), replace(card.entry, pin=pin))
    return card
