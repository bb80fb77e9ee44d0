"""Who may pass: the policy consulted after the certificate checks, before the PIN.

A card refused by policy is refused before VERIFY, so a person who is not enrolled
never spends a PIN try at this terminal. The check needs only the certificate the card
shows to anyone; the PIN and the signature later prove that it is this card.

A certificate is named by the pair (issuer key id, serial), never by its serial alone:
serials are unique per issuer only, and the J-LIS root generations share one DN, so the
same serial under two roots is two people.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
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
    issuer_key_id: bytes  # the issuing root's key id: the serial means nothing without it
    label: str = ""

    @property
    def key(self) -> tuple[bytes, int]:
        return self.issuer_key_id, self.serial


class EnrolledCards:
    """An allow-list of certificates, by (issuer key id, serial).

    A JPKI user-authentication certificate is replaced when the card is renewed (every
    5 years, or after a PIN reset at the municipal office), so enrolment must be
    renewed with it: the pair is the only identifier the terminal may keep.
    """

    def __init__(self, cards: Iterable[EnrolledCard]) -> None:
        self._by_pair: dict[tuple[bytes, int], EnrolledCard] = {}
        for card in cards:
            if card.key in self._by_pair:
                raise ValueError(
                    f"serial {card.serial} of issuer {card.issuer_key_id.hex()} is listed twice"
                )
            self._by_pair[card.key] = card

    @classmethod
    def of(cls, cards: list[EnrolledCard]) -> EnrolledCards:
        return cls(cards)

    def __len__(self) -> int:
        return len(self._by_pair)

    def __iter__(self) -> Iterator[EnrolledCard]:
        """In the order given (the file's order)."""
        return iter(self._by_pair.values())

    def match(self, identity: CardIdentity) -> EnrolledCard | None:
        if identity.issuer_key_id is None:  # an issuer never proven matches no one
            return None
        return self._by_pair.get((identity.issuer_key_id, identity.serial))

    def refusal(self, identity: CardIdentity) -> str | None:
        if self.match(identity) is not None:
            return None
        issuer = identity.issuer_key_id.hex() if identity.issuer_key_id else "unknown"
        return f"serial {identity.serial} of issuer {issuer} is not enrolled at this terminal"
