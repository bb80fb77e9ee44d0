"""The boundary between card logic and whatever carries APDUs.

A connection carries one APDU at a time and gives back the response data and
the status word. It never interprets either. Adapters (pyscard, the in-process
virtual card) implement it; sessions only ever see this Protocol.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class ReaderLimits:
    """What the reader carrying a connection is known to pass (``hw/readers.toml``).

    ``max_response``: the most data bytes one response APDU may carry through this
    reader, or None when no profile says (the card's ``6Cxx`` answers still count).
    ``source`` names where the figure comes from, for error details.
    """

    reader: str = ""
    max_response: int | None = None
    source: str = "no reader profile"


def reader_limits(connection: object) -> ReaderLimits | None:
    """The :class:`ReaderLimits` a connection (or a wrapper of one) carries, if any.

    Optional on purpose: the in-process virtual card and test doubles have no reader.
    """
    limits = getattr(connection, "limits", None)
    return limits if isinstance(limits, ReaderLimits) else None


class CardConnection(Protocol):
    """A powered, exclusively held card.

    ``transmit`` raises :class:`~terminald.card.errors.CardRemovedError` when the
    card is gone and :class:`~terminald.card.errors.ReaderUnavailableError` when the
    reader or service is; any status word, good or bad, is returned, not raised.
    """

    def transmit(self, apdu: bytes) -> tuple[bytes, int]:
        """Send one command APDU; return (response data, SW1SW2)."""
        ...


class CountingConnection:
    """Wraps a connection to count APDUs and bytes each way (for verdicts and benchmarks)."""

    def __init__(self, inner: CardConnection) -> None:
        self._inner = inner
        self.limits = reader_limits(inner)
        self.apdus = 0
        self.bytes_sent = 0
        self.bytes_received = 0

    def transmit(self, apdu: bytes) -> tuple[bytes, int]:
        self.apdus += 1
        self.bytes_sent += len(apdu)
        data, sw = self._inner.transmit(apdu)
        self.bytes_received += len(data) + 2
        return data, sw
