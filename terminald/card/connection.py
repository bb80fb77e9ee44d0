"""The boundary between card logic and whatever carries APDUs.

A connection carries one APDU at a time and gives back the response data and
the status word. It never interprets either. Adapters (pyscard, the in-process
virtual card) implement it; sessions only ever see this Protocol.
"""

from __future__ import annotations

from typing import Protocol


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
        self.apdus = 0
        self.bytes_sent = 0
        self.bytes_received = 0

    def transmit(self, apdu: bytes) -> tuple[bytes, int]:
        self.apdus += 1
        self.bytes_sent += len(apdu)
        data, sw = self._inner.transmit(apdu)
        self.bytes_received += len(data) + 2
        return data, sw
