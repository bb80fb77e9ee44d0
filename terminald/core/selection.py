"""The key chosen before the tap on a vending or attendance terminal: ``A``-``D``.

On a vending terminal the key names the product (its age threshold, its hours); on an
attendance terminal it names the event (clock-in, clock-out, break-out, break-in). It
is chosen while the terminal is idle with no card, kept for ``timeout_s`` seconds, and
goes with the next card's checks (``RunChecks.selection``). Pure: times are monotonic
seconds passed in.
"""

from __future__ import annotations

SELECTION_KEYS = ("A", "B", "C", "D")  # the function keys of a 4x4 keypad
SELECTING_PURPOSES = ("vend", "attendance")


class Selection:
    def __init__(self) -> None:
        self.key: str | None = None
        self._until: float | None = None

    def __repr__(self) -> str:
        return f"Selection(key={self.key!r}, until={self._until!r})"

    def choose(self, key: str, now: float, timeout_s: float) -> None:
        """Keep ``key`` (one of SELECTION_KEYS) until ``now + timeout_s``; a choice
        already held is replaced. ValueError for any other key."""
        if key not in SELECTION_KEYS:
            raise ValueError(f"a selection is one of {', '.join(SELECTION_KEYS)}, not {key!r}")
        self.key = key
        self._until = now + timeout_s

    def clear(self) -> bool:
        """Forget the choice; True when one was held."""
        held = self.key is not None
        self.key = self._until = None
        return held

    def take(self) -> str | None:
        """The choice, consumed (a card was tapped)."""
        key = self.key
        self.clear()
        return key

    def deadline(self) -> float | None:
        return self._until

    def expired(self, now: float) -> bool:
        """True once, when a held choice has run out at ``now`` (it is then forgotten)."""
        if self._until is not None and now >= self._until:
            self.clear()
            return True
        return False
