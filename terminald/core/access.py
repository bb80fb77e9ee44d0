"""Who may pass: the policy consulted after the certificate checks, before the PIN.

A card refused by policy is refused before VERIFY, so a person who is not enrolled
never spends a PIN try at this terminal. The check needs only the certificate the card
shows to anyone; the PIN and the signature later prove that it is this card.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from terminald.core.auth import CardIdentity


class AccessPolicy(Protocol):
    def refusal(self, identity: CardIdentity) -> str | None:
        """None to admit (subject to the PIN), else why not, for the log."""
        ...


class AnyCard:
    """Any genuine, unrevoked card with its PIN: an age check, a kiosk."""

    def refusal(self, identity: CardIdentity) -> str | None:
        return None


@dataclass(frozen=True)
class EnrolledCard:
    serial: int
    # The issuing CA's key id; None matches the serial under any trusted root.
    issuer_key_id: bytes | None = None
    label: str = ""


class EnrolledCards:
    """An allow-list of certificates, by serial number (and issuer, when given).

    A JPKI user-authentication certificate is replaced when the card is renewed (every
    5 years, or after a PIN reset at the municipal office), so enrolment must be
    renewed with it: the serial is the only identifier the terminal may keep.
    """

    def __init__(self, cards: Mapping[int, tuple[EnrolledCard, ...]]) -> None:
        self._by_serial = dict(cards)

    @classmethod
    def of(cls, cards: list[EnrolledCard]) -> EnrolledCards:
        by_serial: dict[int, tuple[EnrolledCard, ...]] = {}
        for card in cards:
            by_serial[card.serial] = (*by_serial.get(card.serial, ()), card)
        return cls(by_serial)

    def __len__(self) -> int:
        return sum(len(v) for v in self._by_serial.values())

    def match(self, identity: CardIdentity) -> EnrolledCard | None:
        for card in self._by_serial.get(identity.serial, ()):
            if card.issuer_key_id is None or card.issuer_key_id == identity.issuer_key_id:
                return card
        return None

    def refusal(self, identity: CardIdentity) -> str | None:
        if self.match(identity) is not None:
            return None
        return f"serial {identity.serial} is not enrolled at this terminal"
