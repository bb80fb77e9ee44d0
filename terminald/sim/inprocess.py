"""The virtual card as a :class:`~terminald.card.connection.CardConnection`, in process.

For fast unit tests of the terminal: no pcscd, no sockets. ``remove`` and ``remove_after``
take the card out of the field at any step, so tests can prove that a removal at each APDU
leaves no half-done effect.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from terminald.card.errors import CardRemovedError
from terminald.sim.card import VirtualJpkiCard


class InProcessConnection:
    """A powered, held virtual card. Construction powers the card on.

    ``realtime=True`` sleeps for the profile's timing model after each APDU, as a real
    NFC card would take.
    """

    def __init__(
        self,
        card: VirtualJpkiCard,
        *,
        realtime: bool = False,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.card = card
        self._realtime = realtime
        self._sleep = sleep
        self._removed = False
        self._remove_countdown: int | None = None
        self.apdus = 0
        card.power_on()

    @property
    def removed(self) -> bool:
        return self._removed

    def transmit(self, apdu: bytes) -> tuple[bytes, int]:
        if self._removed:
            raise CardRemovedError("virtual card removed")
        if not self.card.powered:
            self.card.power_on()  # after unpower(): the next use powers it up, like a reconnect
        response = self.card.process(apdu)
        if self._realtime:
            self._sleep(self.card.delay_for(apdu, response))
        self.apdus += 1
        if self._remove_countdown is not None:
            self._remove_countdown -= 1
            if self._remove_countdown <= 0:
                self.remove()
        return response[:-2], int.from_bytes(response[-2:], "big")

    def remove(self) -> None:
        """Take the card out of the field: it loses power, and every later transmit raises."""
        self._removed = True
        self._remove_countdown = None
        if self.card.powered:
            self.card.power_off()

    def remove_after(self, n: int) -> None:
        """Remove the card once ``n`` more APDUs have been answered (0 = now)."""
        if n < 0:
            raise ValueError("n must be >= 0")
        if n == 0:
            self.remove()
        else:
            self._remove_countdown = n

    def unpower(self) -> None:
        """Cut the card's power (as SCARD_UNPOWER_CARD does); PIN state is gone."""
        if self.card.powered:
            self.card.power_off()
