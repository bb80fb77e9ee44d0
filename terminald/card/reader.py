"""What the terminal asks of a card reader, as a Protocol.

The adapter owns everything about the reader's lifetime (contexts, reconnects,
plug events); the terminal only waits for a card, holds it for one transaction,
and lets go, which always unpowers it.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Protocol

from terminald.card.connection import CardConnection


class CardReader(Protocol):
    @property
    def name(self) -> str:
        """The reader's name as the service reports it (or as configured)."""
        ...

    def wait_for_card(self, timeout: float) -> bool:
        """Block until a card is present (True) or ``timeout`` seconds pass (False).

        Service restarts and reader unplug/replug are survived inside the call.
        """
        ...

    def wait_for_removal(self, timeout: float) -> bool:
        """Block until no card is present (True) or ``timeout`` seconds pass (False)."""
        ...

    def connect(self) -> AbstractContextManager[CardConnection]:
        """Hold the present card exclusively; leaving the context unpowers it."""
        ...
