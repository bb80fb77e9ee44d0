"""The demo's screen: the gate daemon's outside, drawn with curses, driven from the keyboard.

``render(view, width, height)`` is pure: a ``View`` (the daemon's snapshot, what the
mock pins show, the cards on the desk, the last log lines) in, rows of styled text
out, so it is tested without a terminal. ``run_ui`` is the curses loop around it: it
redraws ten times a second and turns keys into the person's actions, which ``Hands``
carries out on worker threads (a tap waits for pcscd, a key press lasts 70 ms) so the
screen never freezes. It fits an 80x24 terminal.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from terminald.core.hardware import DoorInput
from terminald.core.terminal import PIN_LENGTH, Mode
from terminald.daemon.service import Snapshot
from terminald.sim.demo_rig import DemoCard, DemoRig

Segment = tuple[str, str]  # text, style: "", dim, bold, title, green, red, amber, alert
Row = list[Segment]

WIDTH, HEIGHT = 80, 24
LEFT = 40  # the terminal panel's width; the cards take the rest
FRAME_S = 0.1
REX_PRESS_S = 0.3
MODES = (Mode.NORMAL, Mode.LOCKDOWN, Mode.EMERGENCY_OPEN)
LED_STYLE = {"green": "green", "red": "red", "amber": "amber"}
HELP = (
    " keypad: 0-9 * #    card: its letter (again: off)    r: remove card",
    " d: door open/close   x: press REX   t: tamper   m: mode   q: quit",
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


# -- rendering (pure) ------------------------------------------------------------------------


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


def render(view: View, width: int = WIDTH, height: int = HEIGHT) -> list[Row]:
    """The whole screen as ``height`` rows (fewer if it is smaller), each within ``width``."""
    if width < 20 or height < 3:
        return [_fit([("terminal too small", "alert")], width)][:height]
    left = _terminal_panel(view)
    right = _cards_panel(view)
    rows: list[Row] = []
    if width >= LEFT + 20:
        for i in range(max(len(left), len(right))):
            a = left[i] if i < len(left) else []
            b = right[i] if i < len(right) else []
            rows.append(_fit([*_pad(a, LEFT), *b], width))
    else:  # narrow: one column
        rows = [_fit(r, width) for r in (*left, *right)]
    rows += [_fit([(line, "dim")], width) for line in HELP]
    note = f" {view.note} " if view.note else ""
    rule = "-" if view.ascii else "─"
    head = f"{rule * 2} log {rule * 2}{note}"
    rows.append(_fit([(head, "title" if not note else "amber"), (rule * width, "dim")], width))
    room = height - len(rows)
    if room > 0:
        log = list(view.log)[-room:]
        rows += [_fit([(" " + line, "")], width) for line in log]
    return rows[:height]


# -- the rig's state as a View --------------------------------------------------------------


class PinWatch:
    """Whether a mock output pin was active at any moment since the last look.

    A key beep lasts 40 ms and the idle light flashes 60 ms every 3 s: a screen redrawn
    every 100 ms would miss them by sampling, so the pin's history is read instead.
    """

    def __init__(self, pin: Any, active_high: bool, hold_s: float = 0.0) -> None:
        self._pin = pin
        self._active_high = active_high
        self._seen = len(pin.states)
        self._hold_s = hold_s  # keep showing a blip this long, so an eye catches it
        self._last = float("-inf")

    def active(self) -> bool:
        states = self._pin.states
        new = states[self._seen :]
        self._seen = len(states)
        now = time.monotonic()
        if any(bool(s.state) == self._active_high for s in new) or (
            bool(self._pin.state) == self._active_high
        ):
            self._last = now
        return now - self._last <= self._hold_s


def card_rows(cards: Sequence[DemoCard], on_reader: DemoCard | None) -> list[CardRow]:
    return [
        CardRow(
            c.letter,
            c.name,
            c.summary,
            c.entry.pin if c.good else None,
            c.tries_left(),
            c.enrolled,
            c is on_reader,
        )
        for c in cards
    ]


@dataclass
class Watches:
    leds: dict[str, PinWatch]
    buzzer: PinWatch

    @classmethod
    def of(cls, rig: DemoRig) -> Watches:
        mock = rig.mock
        leds = mock.pinmap.leds
        return cls(
            {c: PinWatch(mock.pin(leds.pins[c]), leds.active_high) for c in leds.pins},
            PinWatch(mock.pin(mock.pinmap.buzzer.pin), mock.pinmap.buzzer.active_high, 0.25),
        )


def build_view(rig: DemoRig, watches: Watches, note: str, ascii_only: bool) -> View:
    daemon = rig.the_daemon
    inputs = daemon.hardware.inputs.state()
    last = rig.observer.last_verdict()
    verdict = None
    if last is not None and last.reason is not None:
        verdict = (f"{last.kind} {last.reason.value}", last.kind == "granted")
    return View(
        snapshot=daemon.snapshot(),
        leds={c: w.active() for c, w in watches.leds.items()},
        buzzer=watches.buzzer.active(),
        door_open=inputs.door_open,
        rex_pressed=inputs.rex_pressed,
        tamper=inputs.tamper,
        cards=card_rows(rig.cards, rig.on_reader),
        log=rig.log.lines(40),
        verdict=verdict,
        note=note,
        terminal_id=daemon.config.terminal.id,
        ascii=ascii_only,
    )


# -- hands: the person's actions, off the screen's thread ---------------------------------------


@dataclass
class Hands:
    rig: DemoRig
    door: bool = False
    tamper: bool = False
    note: str = ""
    _note_until: float = 0.0
    _cards: queue.SimpleQueue[Callable[[], None] | None] = field(default_factory=queue.SimpleQueue)
    _keys: queue.SimpleQueue[Callable[[], None] | None] = field(default_factory=queue.SimpleQueue)
    _threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> None:
        for name, work in (("demo-cards", self._cards), ("demo-keys", self._keys)):
            thread = threading.Thread(target=self._worker, args=(work,), name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._cards.put(None)
        self._keys.put(None)
        for thread in self._threads:
            thread.join(15)

    def say(self, text: str, seconds: float = 4.0) -> None:
        self.note, self._note_until = text, time.monotonic() + seconds

    def current_note(self) -> str:
        return self.note if time.monotonic() < self._note_until else ""

    def _worker(self, work: queue.SimpleQueue[Callable[[], None] | None]) -> None:
        while (job := work.get()) is not None:
            try:
                job()
            except Exception as exc:  # shown, never fatal: the person can try again
                self.say(f"failed: {exc}", 8)

    # -- actions --------------------------------------------------------------------------

    def card(self, card: DemoCard) -> None:
        def toggle() -> None:
            if self.rig.on_reader is card:
                self.say(f"taking {card.name} off the reader")
                self.rig.remove()
            else:
                self.say(f"tapping {card.name} ...")
                self.rig.tap(card.name)
                self.say(f"{card.name} on the reader")

        self._cards.put(toggle)

    def remove(self) -> None:
        self._cards.put(self.rig.remove)

    def key(self, key: str) -> None:
        self._keys.put(lambda: self.rig.type(key))

    def rex(self) -> None:
        def press() -> None:
            self.rig.set_input(DoorInput.REX, True)
            time.sleep(REX_PRESS_S)
            self.rig.set_input(DoorInput.REX, False)

        self._keys.put(press)

    def toggle_door(self) -> None:
        self.door = not self.door
        self.rig.set_input(DoorInput.DOOR, self.door)

    def toggle_tamper(self) -> None:
        self.tamper = not self.tamper
        self.rig.set_input(DoorInput.TAMPER, self.tamper)

    def next_mode(self) -> None:
        current = Mode(self.rig.the_daemon.snapshot().mode)
        mode = MODES[(MODES.index(current) + 1) % len(MODES)]
        self.rig.set_mode(mode)
        self.say(f"mode -> {mode.value}")

    def handle(self, key: str) -> bool:
        """One key from the keyboard; False to quit."""
        if key and key in "0123456789*#":
            self.key(key)
        elif key.lower() in self.rig.by_letter:
            self.card(self.rig.by_letter[key.lower()])
        elif key in ("q", "Q"):
            return False
        else:
            actions: dict[str, Callable[[], None]] = {
                "r": self.remove,
                "d": self.toggle_door,
                "x": self.rex,
                "t": self.toggle_tamper,
                "m": self.next_mode,
            }
            action = actions.get(key.lower())
            if action is not None:
                action()
        return True


# -- curses -----------------------------------------------------------------------------------


def _attributes(curses: Any) -> dict[str, int]:
    attrs = {"": 0, "dim": curses.A_DIM, "bold": curses.A_BOLD, "title": curses.A_REVERSE}
    colours = {"green": curses.COLOR_GREEN, "red": curses.COLOR_RED, "amber": curses.COLOR_YELLOW}
    if curses.has_colors():
        curses.start_color()
        try:
            curses.use_default_colors()
            background = -1
        except curses.error:
            background = curses.COLOR_BLACK
        for number, (name, colour) in enumerate(colours.items(), 1):
            curses.init_pair(number, colour, background)
            attrs[name] = curses.color_pair(number) | curses.A_BOLD
        attrs["alert"] = attrs["red"] | curses.A_REVERSE
    else:
        attrs.update(green=curses.A_BOLD, red=curses.A_BOLD, amber=curses.A_BOLD)
        attrs["alert"] = curses.A_REVERSE
    return attrs


def _loop(screen: Any, rig: DemoRig, hands: Hands, ascii_only: bool) -> None:
    import curses

    attrs = _attributes(curses)
    with contextlib.suppress(curses.error):
        curses.curs_set(0)
    screen.timeout(int(FRAME_S * 1000))
    watches = Watches.of(rig)
    while True:
        note = hands.current_note()
        if not note and rig.the_daemon.snapshot().state == "pin_entry":
            note = "type the 4-digit PIN, then # (* clears)"
        if not rig.running:
            note = "the daemon has stopped; see the log; q quits"
        height, width = screen.getmaxyx()
        rows = render(build_view(rig, watches, note, ascii_only), width, height)
        screen.erase()
        for y, row in enumerate(rows):
            x = 0
            for text, style in row:
                # The bottom-right cell raises after writing: harmless.
                with contextlib.suppress(curses.error):
                    screen.addstr(y, x, text, attrs.get(style, 0))
                x += len(text)
        screen.refresh()
        code = screen.getch()
        if code == -1 or code == curses.KEY_RESIZE or not 0 <= code < 256:
            continue
        if not hands.handle(chr(code)):
            return


def run_ui(rig: DemoRig) -> int:
    """The screen until q (or Ctrl-C); the rig stays the caller's to stop."""
    import curses
    import locale

    locale.setlocale(locale.LC_ALL, "")
    ascii_only = "utf" not in locale.getpreferredencoding(False).lower()
    hands = Hands(rig)
    hands.start()
    try:
        curses.wrapper(_loop, rig, hands, ascii_only)
    except KeyboardInterrupt:
        pass
    finally:
        hands.stop()
    return 0
