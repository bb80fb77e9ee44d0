"""A line editor for a dumb serial terminal: bytes in, echo bytes and whole lines out.

Pure and bounded. What technicians' terminals send (picocom, screen, minicom; TERM=dumb
or unset, docs/console.md): backspace as 0x08 or 0x7F, CR, LF or CRLF at the end of a
line, and ANSI escape sequences for arrow and function keys, which are skipped whole.
Only printable ASCII is taken into a line: a serial console has no agreed encoding, and
a byte that is not shown cannot be erased with one ``"\\b \\b"``.

Keys: ^H/DEL erase a character, ^U the line, ^W a word; ^C cancels the line; ^D on an
empty line is the end of input; ``?`` (when ``help_key``) asks what may come next and
keeps the line. In ``masked`` mode (a password) nothing typed is echoed, not even a star.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Final

MAX_LINE: Final = 256  # characters in a line; more ring the bell and are dropped
MAX_PENDING: Final = 4096  # bytes waiting to be edited; more are dropped (typed far ahead)
_MAX_ESCAPE: Final = 16  # bytes of one escape sequence before it is given up as garbage

BS, DEL, ESC, BEL = 0x08, 0x7F, 0x1B, 0x07
CTRL_C, CTRL_D, CTRL_U, CTRL_W = 0x03, 0x04, 0x15, 0x17
CR, LF = 0x0D, 0x0A
ERASE: Final = b"\b \b"
NEWLINE: Final = b"\r\n"


@dataclass(frozen=True, slots=True)
class Line:
    """Enter: the line typed (without its end)."""

    text: str


@dataclass(frozen=True, slots=True)
class Cancelled:
    """^C: the line was thrown away."""


@dataclass(frozen=True, slots=True)
class EndOfInput:
    """^D on an empty line."""


@dataclass(frozen=True, slots=True)
class HelpAsked:
    """``?``: the line so far (kept in the editor) to list what may follow."""

    text: str


EditorEvent = Line | Cancelled | EndOfInput | HelpAsked


@dataclass(frozen=True, slots=True)
class Edited:
    """What one ``step`` did: bytes to echo, and at most one event."""

    echo: bytes
    event: EditorEvent | None


class LineEditor:
    def __init__(self, max_line: int = MAX_LINE, *, help_key: bool = True) -> None:
        self.max_line = max_line
        self.help_key = help_key
        self.masked = False
        self._line: list[str] = []
        self._pending: deque[int] = deque()
        self._escape: int | None = None  # bytes seen of an escape sequence, or None
        self._after_cr = False  # an LF right after CR is the same line end

    @property
    def text(self) -> str:
        return "".join(self._line)

    def feed(self, data: bytes) -> None:
        """Queue bytes from the port; beyond MAX_PENDING they are dropped."""
        room = MAX_PENDING - len(self._pending)
        self._pending.extend(data[: max(room, 0)])

    def discard_pending(self) -> None:
        """Forget what was typed ahead and the line so far (after a failed login)."""
        self._pending.clear()
        self._line.clear()
        self._escape = None

    def step(self) -> Edited:
        """Edit queued bytes up to the next event (or until none are left)."""
        echo = bytearray()
        while self._pending:
            event = self._byte(self._pending.popleft(), echo)
            if event is not None:
                return Edited(bytes(echo), event)
        return Edited(bytes(echo), None)

    def _byte(self, byte: int, echo: bytearray) -> EditorEvent | None:
        after_cr, self._after_cr = self._after_cr, False
        if self._escape is not None:
            self._in_escape(byte)
            return None
        if byte == LF and after_cr:
            return None
        if byte in (CR, LF):
            self._after_cr = byte == CR
            text = self.text
            self._line.clear()
            echo += NEWLINE
            return Line(text)
        if byte == ESC:
            self._escape = 0
        elif byte in (BS, DEL):
            self._erase(1, echo)
        elif byte == CTRL_U:
            self._erase(len(self._line), echo)
        elif byte == CTRL_W:
            self._erase(self._word_length(), echo)
        elif byte == CTRL_C:
            self._line.clear()
            echo += b"^C" + NEWLINE
            return Cancelled()
        elif byte == CTRL_D:
            if not self._line:
                echo += NEWLINE
                return EndOfInput()
            echo.append(BEL)
        elif byte == ord("?") and self.help_key and not self.masked:
            echo += b"?" + NEWLINE
            return HelpAsked(self.text)
        elif 0x20 <= byte < 0x7F:
            if len(self._line) >= self.max_line:
                echo.append(BEL)
            else:
                self._line.append(chr(byte))
                if not self.masked:
                    echo.append(byte)
        return None  # any other control byte (tab, NUL, XON/XOFF, 8-bit) is ignored

    def _in_escape(self, byte: int) -> None:
        """ESC [ params final (CSI), ESC O x (SS3), or ESC x: skipped whole (ECMA-48 §5.4:
        a CSI ends at a byte in 0x40-0x7E). Bounded, so garbage cannot swallow input."""
        seen = self._escape or 0
        self._escape = seen + 1
        if seen == 0:
            if byte not in (ord("["), ord("O")):
                self._escape = None  # ESC x: one key with Alt; x goes with it
            elif byte == ord("O"):
                self._escape = -1  # SS3: one more byte
            return
        if seen < 0 or 0x40 <= byte <= 0x7E or seen >= _MAX_ESCAPE:
            self._escape = None

    def _erase(self, count: int, echo: bytearray) -> None:
        count = min(count, len(self._line))
        if count:
            del self._line[-count:]
            if not self.masked:
                echo += ERASE * count

    def _word_length(self) -> int:
        """^W: the spaces before the cursor, then the word before them."""
        end = len(self._line)
        i = end
        while i and self._line[i - 1] == " ":
            i -= 1
        while i and self._line[i - 1] != " ":
            i -= 1
        return end - i
