"""Typed errors of the card layer.

Every failure a reader or card can produce maps to one of these, so the
authentication flow can turn it into a stable reason code without looking at
PC/SC error numbers or status words.
"""

from __future__ import annotations


class CardError(Exception):
    """Base of every card-layer failure."""


class CardRemovedError(CardError):
    """The card left the field (or was unpowered) during a transaction."""


class ReaderUnavailableError(CardError):
    """The reader or the PC/SC service is gone; the reader adapter will rebuild."""


class CardCommunicationError(CardError):
    """The card answered nothing usable (transport error, malformed response)."""


class ApduError(CardError):
    """The card answered with a status word other than the one expected."""

    def __init__(self, sw: int, context: str) -> None:
        super().__init__(f"{context}: card answered SW={sw:04X}")
        self.sw = sw
        self.context = context


class ReadLimitError(CardError):
    """A READ BINARY failed for a reason that is the transport's, not the certificate's.

    The reader could not pass the response size asked for, or the card returned so
    little per READ that the read was cut off. The detail names the reader's limit.
    """


class PinStateUnknownError(ApduError):
    """The retry query gave no trustworthy count of tries left: no PIN may be sent."""
