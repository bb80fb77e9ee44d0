"""The PIN being typed on the keypad: at most four digits, ``*`` clears, ``#`` submits.

Pure and small, so the terminal uses the same rules whether the prompt has come or the
card is still being checked (``early``): the holder hears the same beep for the same key
either way. The digits leave only through ``take``; the repr never shows them.
"""

from __future__ import annotations

from terminald.core.commands import Command, PlayBeep
from terminald.core.feedback import ERROR_BEEP, KEY_BEEP

PIN_LENGTH = 4  # the JPKI user-authentication PIN (jpki-card.md §3)


class PinEntry:
    def __init__(self) -> None:
        self._digits = ""
        # ``#`` after four digits while the card was checked: submit when the prompt comes.
        self.submitted = False

    def __repr__(self) -> str:
        return f"PinEntry(digits={len(self._digits)}, submitted={self.submitted})"

    def __len__(self) -> int:
        return len(self._digits)

    def clear(self) -> None:
        self._digits = ""
        self.submitted = False

    def take(self) -> str:
        pin = self._digits
        self.clear()
        return pin

    def press(self, key: str, *, early: bool) -> tuple[list[Command], bool]:
        """The key's feedback, and whether the PIN is to be sent now."""
        if key == "*":  # nothing has been sent: clearing is always possible
            self.clear()
            return [PlayBeep(KEY_BEEP)], False
        if self.submitted:  # complete, waiting for the prompt
            return [PlayBeep(ERROR_BEEP)], False
        if key == "#" and len(self._digits) == PIN_LENGTH:
            if early:
                self.submitted = True
                return [PlayBeep(KEY_BEEP)], False
            return [], True
        if key.isdigit() and len(self._digits) < PIN_LENGTH:
            self._digits += key
            return [PlayBeep(KEY_BEEP)], False
        # A short ``#`` (never send a short PIN: the card would count a wrong try), a
        # fifth digit, a function key: refused, and the entry stays as it was.
        return [PlayBeep(ERROR_BEEP)], False
