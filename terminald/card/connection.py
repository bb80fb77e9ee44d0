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
