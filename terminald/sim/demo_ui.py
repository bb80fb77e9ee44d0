"""The demo's screen: the gate daemon's outside, drawn with curses, driven from the keyboard.

``build_view`` reads the rig into a ``View``, and ``demo_screen.render`` (pure, tested
without a terminal) lays it out. ``run_ui`` is the curses loop around them: it redraws
ten times a second and turns keys into the person's actions, which ``Hands`` carries out
on worker threads (a tap waits for pcscd, a key press lasts 70 ms) so the screen never
freezes; the arrow and page keys scroll the log. It fits an 80x24 terminal, and says so
when the window is smaller than that.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from terminald.core.hardware import DoorInput
from terminald.core.terminal import Mode
from terminald.sim.demo_rig import DemoCard, DemoRig
from terminald.sim.demo_screen import (
    CardRow,
    LogScroll,
    Row,
    View,
    fits,
    plain,
    render,
    shown_verdict,
)

__all__ = ["CardRow", "Hands", "PinWatch", "View", "build_view", "plain", "render", "run_ui"]

FRAME_S = 0.1
REX_PRESS_S = 0.3
MODES = (Mode.NORMAL, Mode.LOCKDOWN, Mode.EMERGENCY_OPEN)
PAGE_LINES = 5  # log lines per PgUp/PgDn


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


def build_view(
    rig: DemoRig, watches: Watches, note: str, ascii_only: bool, scroll: LogScroll | None = None
) -> View:
    daemon = rig.the_daemon
    inputs = daemon.hardware.inputs.state()
    snapshot = daemon.snapshot()
    last = rig.observer.last_verdict()
    reason = last.reason.value if last is not None and last.reason is not None else None
    log = rig.log.lines()
    back = scroll.update(rig.log.count, len(log)) if scroll is not None else 0
    return View(
        snapshot=snapshot,
        leds={c: w.active() for c, w in watches.leds.items()},
        buzzer=watches.buzzer.active(),
        door_open=inputs.door_open,
        rex_pressed=inputs.rex_pressed,
        tamper=inputs.tamper,
        cards=card_rows(rig.cards, rig.on_reader),
        log=log,
        verdict=shown_verdict(snapshot.state, last.kind if last else None, reason),
        note=note,
        terminal_id=daemon.config.terminal.id,
        ascii=ascii_only,
        state_dir=str(daemon.config.state.dir),
        log_back=back,
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


def _draw(screen: Any, rows: Sequence[Row], attrs: dict[str, int], error: type[Exception]) -> None:
    screen.erase()
    for y, row in enumerate(rows):
        x = 0
        for text, style in row:
            # The bottom-right cell raises after writing: harmless.
            with contextlib.suppress(error):
                screen.addstr(y, x, text, attrs.get(style, 0))
            x += len(text)
    screen.refresh()


def _loop(screen: Any, rig: DemoRig, hands: Hands, ascii_only: bool) -> None:
    import curses

    attrs = _attributes(curses)
    with contextlib.suppress(curses.error):
        curses.curs_set(0)
    screen.timeout(int(FRAME_S * 1000))
    watches = Watches.of(rig)
    scroll = LogScroll()
    scroll_keys: dict[int, Callable[[], None]] = {
        curses.KEY_UP: lambda: scroll.scroll(1),
        curses.KEY_DOWN: lambda: scroll.scroll(-1),
        curses.KEY_PPAGE: lambda: scroll.scroll(PAGE_LINES),
        curses.KEY_NPAGE: lambda: scroll.scroll(-PAGE_LINES),
        curses.KEY_END: scroll.follow,
    }
    while True:
        note = hands.current_note()
        if not note and rig.the_daemon.snapshot().state == "pin_entry":
            note = "type the 4-digit PIN, then # (* clears)"
        if not rig.running:
            note = "the daemon has stopped; see the log; q quits"
        height, width = screen.getmaxyx()
        view = build_view(rig, watches, note, ascii_only, scroll)
        _draw(screen, render(view, width, height), attrs, curses.error)
        code = screen.getch()
        if not fits(view, width, height) and code not in (ord("q"), ord("Q")):
            continue  # no acting blind: only q works until the window is large enough
        if code in scroll_keys:
            scroll_keys[code]()
            continue
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
