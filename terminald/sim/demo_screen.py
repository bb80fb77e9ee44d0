"""The demo's screen as a pure function: ``render(view, width, height)`` -> styled rows.

A ``View`` (the daemon's snapshot, what the mock pins show, the cards on the desk, the
daemon's log, the state directory) goes in; rows of (text, style) segments come out, each
within the width, so the layout is tested without a terminal. Log lines are wrapped, never
cut, and ``LogScroll`` lets the person page back through them. A window too small for the
whole terminal says so and how large it must be, rather than drawing half of it.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from terminald.core.terminal import PIN_LENGTH, Mode
from terminald.daemon.service import Snapshot

Segment = tuple[str, str]  # text, style: "", dim, bold, title, green, red, amber, alert
Row = list[Segment]

WIDTH, HEIGHT = 80, 24
LEFT = 40  # the terminal panel's width; the cards take the rest
NARROW = 40  # below this even one column cannot show a panel row
MIN_LOG_ROWS = 3  # fewer, and the log says nothing useful
LOG_INDENT = " " * 10  # a wrapped log line continues under its text, past the time
LED_STYLE = {"green": "green", "red": "red", "amber": "amber"}
HELP = (
    " keypad: 0-9 * #    card: its letter (again: off)    r: remove card",
    " d: door  x: REX  t: tamper  m: mode  log: Up Down PgUp PgDn End   q: quit",
)


@dataclass(frozen=True)
class CardRow:
    letter: str
    name: str
    summary: str
    pin: str | None = None  # good cards only
    tries: int | None = None
    enrolled: bool = True
    on_reader: bool = False


@dataclass(frozen=True)
class View:
    snapshot: Snapshot
    leds: Mapping[str, bool]  # lit now, or lit at some moment since the last frame
    buzzer: bool
    door_open: bool
    rex_pressed: bool
    tamper: bool
    cards: Sequence[CardRow] = ()
    log: Sequence[str] = ()
    verdict: tuple[str, bool] | None = None  # "refused pin_wrong", granted
    note: str = ""
    terminal_id: str = ""
    ascii: bool = False
    state_dir: str = ""
    log_back: int = 0  # log lines scrolled back from the newest (0: following)


# -- scrolling the log ---------------------------------------------------------------------------


class LogScroll:
    """How far back the person has scrolled, in log lines; 0 follows the newest.

    While scrolled back, new lines do not move what is shown: the offset grows with them.
    """

    def __init__(self) -> None:
        self.back = 0
        self._seen: int | None = None

    def update(self, logged: int, kept: int) -> int:
        """``logged`` lines so far (a running count), ``kept`` of them still held."""
        if self._seen is not None and self.back:
            self.back += max(0, logged - self._seen)
        self._seen = logged
        self.back = max(0, min(self.back, kept - 1))
        return self.back

    def scroll(self, lines: int) -> None:
        """Positive: back in time; negative: towards the newest."""
        self.back = max(0, self.back + lines)

    def follow(self) -> None:
        self.back = 0


# -- rendering -----------------------------------------------------------------------------------


def _fit(row: Row, width: int) -> Row:
    out: Row = []
    room = width
    for text, style in row:
        if room <= 0:
            break
        out.append((text[:room], style))
        room -= len(text[:room])
    return out


def _pad(row: Row, width: int) -> Row:
    row = _fit(row, width)
    used = sum(len(t) for t, _ in row)
    return [*row, (" " * (width - used), "")] if used < width else row


def plain(rows: Sequence[Row]) -> list[str]:
    """The rows as text, for tests and logs."""
    return ["".join(text for text, _ in row) for row in rows]


def wrap(text: str, width: int, indent: str = "") -> list[str]:
    """``text`` in lines of at most ``width``, broken at spaces where it can be, never cut."""
    if width <= len(indent):
        indent = ""
    return textwrap.wrap(
        text,
        width=max(1, width),
        subsequent_indent=indent,
        break_on_hyphens=False,
        drop_whitespace=True,
    ) or [""]


def _field(label: str, *value: Segment) -> Row:
    return [(f" {label:<9}", "dim"), *value]


def _terminal_panel(view: View) -> list[Row]:
    snap = view.snapshot
    lit, unlit = ("##", "..") if view.ascii else ("██", "░░")
    dot = "*" if view.ascii else "•"
    digits = dot * snap.pin_digits + "_" * max(0, PIN_LENGTH - snap.pin_digits)
    leds: Row = []
    for colour in ("green", "red", "amber"):
        on = view.leds.get(colour, False)
        leds += [(lit if on else unlit, LED_STYLE[colour] if on else "dim"), (f" {colour}  ", "")]
    mode_style = "" if snap.mode == Mode.NORMAL.value else "alert"
    alarms = ", ".join(sorted(snap.alarms))
    verdict: Segment = ("-", "dim")
    if view.verdict is not None:
        verdict = (view.verdict[0], "green" if view.verdict[1] else "red")
    card = next((c.name for c in view.cards if c.on_reader), None)
    return [
        [(f" TERMINAL {view.terminal_id}", "title")],
        _field("state", (snap.state, "bold")),
        _field("mode", (snap.mode, mode_style)),
        _field("PIN", (digits, "bold"), (f"  {snap.pin_digits} of {PIN_LENGTH}", "dim")),
        _field("LEDs", *leds),
        _field("buzzer", ("BEEP", "amber") if view.buzzer else ("silent", "dim")),
        _field("relay", ("RELEASED", "green") if snap.relay_energised else ("LOCKED", "bold")),
        _field("door", ("OPEN", "alert") if view.door_open else ("CLOSED", "")),
        _field("REX", ("PRESSED", "amber") if view.rex_pressed else ("released", "")),
        _field("tamper", ("OPEN", "alert") if view.tamper else ("closed", "")),
        _field("alarms", (alarms, "alert") if alarms else ("none", "dim")),
        _field("health", ("ok", "green") if snap.health is None else (snap.health, "alert")),
        _field("verdict", verdict),
        _field("reader", (card, "bold") if card else ("empty", "dim")),
    ]


def _card_text(card: CardRow) -> str:
    if card.pin is None:
        return card.summary
    tries = "" if card.tries is None else f" ({card.tries} left)"
    return f"PIN {card.pin}{tries}" if card.enrolled else f"PIN {card.pin}, NOT enrolled"


def _cards_panel(view: View) -> list[Row]:
    rows: list[Row] = [[(" CARDS  letter: tap / again: off", "title")]]
    for card in view.cards:
        mark = ">" if card.on_reader else " "
        style = "bold" if card.on_reader else ""
        rows.append(
            [
                (f"{mark}{card.letter} ", "amber" if card.on_reader else "bold"),
                (f"{card.name:<15}", style),
                (_card_text(card), style if card.pin else "dim"),
            ]
        )
    return rows


def _panels(view: View, width: int) -> list[Row]:
    left, right = _terminal_panel(view), _cards_panel(view)
    if width >= WIDTH:
        return [
            _fit(
                [
                    *_pad(left[i] if i < len(left) else [], LEFT),
                    *(right[i] if i < len(right) else []),
                ],
                width,
            )
            for i in range(max(len(left), len(right)))
        ]
    return [_fit(r, width) for r in (*left, *right)]  # narrow: one column


def _footer(view: View, width: int) -> list[Row]:
    """The keys and the state directory, wrapped to the width."""
    rows = [[(line, "dim")] for text in HELP for line in wrap(text, width, "   ")]
    if view.state_dir:
        label = " state dir "
        lines = wrap(view.state_dir, max(1, width - len(label)))
        rows.append([(label, "dim"), (lines[0], "")])
        rows += [[(" " * len(label), ""), (line, "")] for line in lines[1:]]
    return rows


def _log_rows(view: View, width: int, room: int) -> list[Row]:
    """The newest whole log lines that fit in ``room`` rows (wrapped), ``log_back`` back.

    Only the newest line, if it alone is taller than the room, is shown in part (its end).
    """
    lines = list(view.log)
    if view.log_back:
        lines = lines[: max(0, len(lines) - view.log_back)]
    rows: list[Row] = []
    for line in reversed(lines):
        wrapped = [[(part, "")] for part in wrap(" " + line, width, LOG_INDENT)]
        if len(rows) + len(wrapped) > room:
            if not rows:
                rows = wrapped
            break
        rows[:0] = wrapped
    return rows[-room:] if room > 0 else []


def needed(view: View) -> tuple[tuple[int, int], tuple[int, int]]:
    """The smallest (width, height) for two columns, and for one column."""

    def height(width: int) -> int:
        return len(_panels(view, width)) + len(_footer(view, width)) + 1 + MIN_LOG_ROWS

    return (WIDTH, height(WIDTH)), (NARROW, height(NARROW))


def too_small(view: View, width: int, height: int) -> list[Row]:
    two, one = needed(view)
    text = (
        f"The terminal is {width}x{height}: too small to show the demo. "
        f"It needs {two[0]}x{two[1]}, or {one[0]}x{one[1]} in one column. "
        "Enlarge the window; q quits."
    )
    return [_fit([(line, "alert")], width) for line in wrap(text, width)][: max(0, height)]


def fits(view: View, width: int, height: int) -> bool:
    """Whether the whole screen fits, in two columns or in one."""
    two, one = needed(view)
    return (width >= two[0] and height >= two[1]) or (one[0] <= width < two[0] and height >= one[1])


def render(view: View, width: int = WIDTH, height: int = HEIGHT) -> list[Row]:
    """The whole screen as at most ``height`` rows, each within ``width``."""
    if not fits(view, width, height):
        return too_small(view, width, height)
    rows = _panels(view, width) + _footer(view, width)
    note = f" {view.note} " if view.note else ""
    if view.log_back:
        note += f" {view.log_back} line(s) back, End follows "
    rule = "-" if view.ascii else "─"
    head = f"{rule * 2} log {rule * 2}{note}"
    rows.append(_fit([(head, "title" if not note else "amber"), (rule * width, "dim")], width))
    rows += _log_rows(view, width, height - len(rows))
    return rows[:height]


def shown_verdict(state: str, kind: str | None, reason: str | None) -> tuple[str, bool] | None:
    """The last verdict, while no newer card is being decided: a tap clears the old one."""
    if kind is None or reason is None or state not in ("idle", "verdict"):
        return None
    return f"{kind} {reason}", kind == "granted"
