"""The demo's rig: the real gate daemon on mock GPIO, virtual cards on the real pcscd.

``DemoRig`` builds what ``terminald run`` would run on a Pi, in a temporary directory:
the demo configuration (``systemd/terminald-demo.toml``, copied with the test PKI's
trust directory and the demo's timings), an ``enrolled.toml`` that enrols every test
card with a serial except one good card (so a refusal for "not enrolled" can be shown),
pcscd with the vpcd driver (or the one already running in the sandbox), and the
``Daemon`` from ``open_daemon`` with its loop on a thread. Then it gives a person (the
curses UI) or a script (the tour) hands: tap and remove virtual cards, type on the
matrix keypad, open the door, press REX, flip tamper, change the mode; and eyes: the
daemon's records and alarms, its snapshot, the mock pins and the last log lines.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import terminald
from terminald.backends.gpio_mock import MockGpioDriver
from terminald.core.commands import AlarmChanged, Record
from terminald.core.hardware import DoorInput
from terminald.core.reasons import Reason
from terminald.core.terminal import Mode, ModeSet
from terminald.daemon.logfmt import LogfmtFormatter
from terminald.daemon.main import open_daemon
from terminald.daemon.service import Daemon, Stop
from terminald.sim.card import VirtualJpkiCard
from terminald.sim.pcscd import (
    READER_0,
    Pcscd,
    SandboxRequiredError,
    list_readers,
    wait_for_card_state,
)
from terminald.sim.profile import TimingModel
from terminald.sim.testpki import CardEntry, TestPkiManifest
from terminald.sim.twin import TWIN
from terminald.sim.vpcd import SWAP_GAP, VpcdCard

logger = logging.getLogger(__name__)

DEMO_CONFIG = Path(terminald.__file__).resolve().parent.parent / "systemd" / "terminald-demo.toml"
NOT_ENROLLED_CARD = "card-003"  # a good card the demo deliberately leaves out of enrolled.toml
# The keypad scanner needs a key down for debounce_ms (20 ms at a 5 ms scan on every
# board in hw/boards) and up as long again: hold each for more than three times that.
KEY_HOLD_S = 0.07
CARD_WAIT_S = 10.0
RETAP_AFTER_S = 4.0  # pcscd reports a tapped card within ~0.5 s
LETTERS = "abcefghijklnopsuvwyz"  # card keys in the UI: no d, m, q, r, t, x (commands)

Item = Record | AlarmChanged


# -- hands --------------------------------------------------------------------------------------


def type_keys(mock: MockGpioDriver, keys: str, hold_s: float = KEY_HOLD_S) -> None:
    """Press and release each key on the matrix keypad, long enough for the debouncer."""
    for key in keys:
        mock.press(key)
        time.sleep(hold_s)
        mock.release(key)
        time.sleep(hold_s)


def wait_until(condition: Callable[[], bool], timeout: float, poll_s: float = 0.005) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            return False
        time.sleep(poll_s)
    return True


# -- the daemon's log, kept for a screen -------------------------------------------------------


class LogTail(logging.Handler):
    """The last lines the daemon logged, as ``HH:MM:SS event=... key=value``."""

    def __init__(self, size: int = 200) -> None:
        super().__init__(logging.INFO)
        self._lines: collections.deque[str] = collections.deque(maxlen=size)
        self._count = 0
        self._lock_lines = threading.Lock()
        self.setFormatter(LogfmtFormatter())

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith("terminald.sim") and record.levelno < logging.WARNING:
            return  # the virtual card's own chatter is not the terminal's log
        try:
            line = self.format(record)
        except Exception:
            self.handleError(record)
            return
        line = re.sub(r"^level=info logger=\S+ ", "", line)
        line = re.sub(r"^level=(\w+) logger=\S+ ", lambda m: m.group(1).upper() + " ", line)
        # The screen is narrow: 8 hex digits tell the test roots apart (the journal keeps all).
        line = re.sub(r"issuer=([0-9a-f]{8})[0-9a-f]{8,}", r"issuer=\1..", line)
        stamp = time.strftime("%H:%M:%S", time.localtime(record.created))
        with self._lock_lines:
            self._lines.append(f"{stamp} {line}")
            self._count += 1

    @property
    def count(self) -> int:
        """Lines logged so far (also those the tail no longer holds)."""
        return self._count

    def lines(self, last: int | None = None) -> list[str]:
        with self._lock_lines:
            lines = list(self._lines)
        return lines if last is None else lines[-last:] if last > 0 else []

    def since(self, count: int) -> list[str]:
        """The lines logged after ``count`` was read (as many as the tail still holds)."""
        with self._lock_lines:
            new = self._count - count
            return list(self._lines)[-new:] if new > 0 else []


def capture_logging(tail: LogTail) -> Callable[[], None]:
    """Send every log line to ``tail`` only; returns a function putting the old handlers back."""
    root = logging.getLogger()
    previous = list(root.handlers)
    level = root.level
    for handler in previous:
        root.removeHandler(handler)
    root.addHandler(tail)
    root.setLevel(logging.INFO)

    def restore() -> None:
        root.removeHandler(tail)
        for handler in previous:
            root.addHandler(handler)
        root.setLevel(level)

    return restore


# -- the daemon's records, for waiting on --------------------------------------------------------


class Observer:
    """The daemon's listener: keeps every Record and AlarmChanged, wakes waiters."""

    def __init__(self) -> None:
        self._items: list[Item] = []
        self._cond = threading.Condition()

    def __call__(self, item: Item) -> None:
        with self._cond:
            self._items.append(item)
            self._cond.notify_all()

    def mark(self) -> int:
        with self._cond:
            return len(self._items)

    def items(self, since: int = 0) -> list[Item]:
        with self._cond:
            return self._items[since:]

    def wait_for(self, match: Callable[[Item], bool], since: int, timeout: float) -> Item | None:
        """The first item after ``since`` that matches, waiting up to ``timeout`` s."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for item in self._items[since:]:
                    if match(item):
                        return item
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._cond.wait(remaining)

    def verdict(self, since: int, timeout: float) -> Record | None:
        item = self.wait_for(is_verdict, since, timeout)
        return item if isinstance(item, Record) else None

    def last_verdict(self) -> Record | None:
        with self._cond:
            for item in reversed(self._items):
                if is_verdict(item) and isinstance(item, Record):
                    return item
        return None


def is_verdict(item: Item) -> bool:
    return isinstance(item, Record) and item.kind in ("granted", "refused")


# -- the cards on the desk --------------------------------------------------------------------


_SUMMARIES = {
    "last-try": "1 PIN try left",
    "blocked": "PIN blocked",
    "face-auth": "face-auth card, no PIN",
    "non-jpki": "not a My Number Card",
    "expired": "certificate expired",
    "not-yet-valid": "cert not yet valid",
    "wrong-usage": "cert wrong key usage",
    "bad-signature": "cert signature broken",
    "forged-issuer": "forged issuer",
    "unknown-issuer": "untrusted root",
}


@dataclass(frozen=True)
class DemoCard:
    letter: str
    entry: CardEntry
    card: VirtualJpkiCard
    enrolled: bool

    @property
    def name(self) -> str:
        return self.entry.name

    @property
    def good(self) -> bool:
        return self.entry.expected is Reason.OK

    @property
    def summary(self) -> str:
        if self.name == TWIN:
            return "card-001's serial, other root"
        if self.good:
            return "good card" if self.enrolled else "good, NOT enrolled"
        return _SUMMARIES.get(self.name, self.entry.expected.value)

    def tries_left(self) -> int | None:
        if self.entry.kind != "jpki":
            return None
        try:
            return self.card.tries_left()
        except KeyError:
            return None


def desk_cards(manifest: TestPkiManifest, enrolled: set[str], realtime: bool) -> list[DemoCard]:
    timing = TimingModel.nfc() if realtime else TimingModel()
    cards = []
    for letter, entry in zip(LETTERS, manifest.cards, strict=False):
        profile = dataclasses.replace(manifest.load_profile(entry.name), timing=timing)
        cards.append(DemoCard(letter, entry, VirtualJpkiCard(profile), entry.name in enrolled))
    return cards


# -- configuration ------------------------------------------------------------------------------


@dataclass(frozen=True)
class DemoTimings:
    """What the demo changes in the demo configuration (every value within its limits)."""

    pin_timeout_s: float = 30.0
    open_ms: int = 3000
    held_open_s: float = 15.0


TOUR_TIMINGS = DemoTimings(pin_timeout_s=5.0, open_ms=1000, held_open_s=1.0)


def enrolled_names(manifest: TestPkiManifest) -> list[str]:
    """Every card whose certificate has a serial, but one good card and the twin (card-001's
    serial under another root: enrolling card-001 must not let it in)."""
    left_out = (NOT_ENROLLED_CARD, TWIN)
    return [c.name for c in manifest.cards if c.serial is not None and c.name not in left_out]


def _set_key(text: str, key: str, value: str) -> str:
    pattern = re.compile(rf"^{re.escape(key)}\s*=.*$", re.MULTILINE)
    if len(pattern.findall(text)) != 1:
        raise ValueError(f"{DEMO_CONFIG}: expected one `{key} = ...` line")
    return pattern.sub(lambda _m: f"{key} = {value}", text)


def write_demo_config(
    directory: Path,
    manifest: TestPkiManifest,
    timings: DemoTimings,
    template: Path = DEMO_CONFIG,
) -> Path:
    """The demo configuration and its enrolled.toml in ``directory``; returns the config."""
    try:
        text = template.read_text()
    except OSError as exc:
        raise FileNotFoundError(
            f"the demo configuration {template} is missing: run the demo from the source tree"
        ) from exc
    trust = str(manifest.trust_dir.absolute()).replace("\\", "\\\\").replace('"', '\\"')
    text = _set_key(text, "anchors", f'["{trust}"]')
    text = _set_key(text, "pin_timeout_s", repr(float(timings.pin_timeout_s)))
    text = _set_key(text, "open_ms", str(int(timings.open_ms)))
    text = _set_key(text, "held_open_s", repr(float(timings.held_open_s)))
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "state").mkdir(exist_ok=True)
    lines = ["# The demo's enrolled cards; one good card is left out on purpose."]
    for name in enrolled_names(manifest):
        entry = manifest.card(name)
        lines += [
            "",
            "[[card]]",
            f'issuer = "{entry.issuer_key_id}"',
            f"serial = {entry.serial}",
            f'label = "{name}"',
        ]
    (directory / "enrolled.toml").write_text("\n".join(lines) + "\n")
    path = directory / "terminald.toml"
    path.write_text(text)
    return path


# -- the rig ---------------------------------------------------------------------------------------


class DemoRig:
    """The daemon, its virtual reader slot and the cards beside it; see the module doc."""

    def __init__(
        self,
        workdir: Path,
        manifest: TestPkiManifest,
        *,
        timings: DemoTimings = DemoTimings(),
        realtime: bool = True,
    ) -> None:
        self.workdir = workdir
        self.manifest = manifest
        self.timings = timings
        self.realtime = realtime
        self.config_path = write_demo_config(workdir, manifest, timings)
        self.cards = desk_cards(manifest, set(enrolled_names(manifest)), realtime)
        self.by_name = {c.name: c for c in self.cards}
        self.by_letter = {c.letter: c for c in self.cards}
        self.observer = Observer()
        self.log = LogTail()
        self.pcscd: Pcscd | None = None
        self.slot: VpcdCard | None = None
        self.daemon: Daemon | None = None
        self.on_reader: DemoCard | None = None
        self._thread: threading.Thread | None = None
        self._restore_logging: Callable[[], None] | None = None
        self._slot_lock = threading.Lock()
        self._removed_at = float("-inf")

    # -- life -----------------------------------------------------------------------------

    def start(self) -> None:
        """pcscd (unless the sandbox already runs one), the reader slot, the daemon."""
        self._restore_logging = capture_logging(self.log)
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> None:
        if os.environ.get("TERMINALD_SANDBOX") != "1":
            raise SandboxRequiredError()
        readers = list_readers()
        if readers is None or READER_0 not in readers:
            self.pcscd = Pcscd(log_path=self.workdir / "pcscd.log")
            self.pcscd.start()
        self.slot = VpcdCard(self.cards[0].card, realtime=self.realtime, inserted=False)
        self.slot.start()
        daemon = open_daemon(self.config_path)
        self.daemon = daemon
        daemon.add_listener(self.observer)
        self._thread = threading.Thread(target=self._run, name="terminald-loop", daemon=True)
        self._thread.start()
        if not wait_until(lambda: daemon.monitor.beat > 0 and daemon.worker.alive, 10):
            raise RuntimeError("the daemon did not start its reader monitor and card worker")

    def _run(self) -> None:
        assert self.daemon is not None
        try:
            self.daemon.run()
        except Exception:
            logger.exception("event=demo_daemon_crashed")

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self) -> None:
        """Stop the daemon (the relay de-energised), take the card out, stop pcscd."""
        if self.daemon is not None and self._thread is not None:
            self.daemon.post(Stop("demo"))
            self._thread.join(10)
        if self.slot is not None:
            self.slot.stop()
            if self.on_reader is not None and self.pcscd is None:
                wait_for_card_state(READER_0, False, 5)  # leave the shared pcscd empty
            self.slot = None
            self.on_reader = None
        if self.pcscd is not None:
            self.pcscd.stop()
            self.pcscd = None
        if self._restore_logging is not None:
            self._restore_logging()
            self._restore_logging = None

    def __enter__(self) -> DemoRig:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- what is wired -------------------------------------------------------------------------

    @property
    def the_daemon(self) -> Daemon:
        if self.daemon is None:
            raise RuntimeError("the demo rig is not started")
        return self.daemon

    @property
    def mock(self) -> MockGpioDriver:
        mock = self.the_daemon.hardware.mock
        if mock is None:
            raise RuntimeError("the demo configuration must use gpio backend 'mock'")
        return mock

    # -- hands -----------------------------------------------------------------------------------

    def tap(self, name: str) -> None:
        """Put card ``name`` on the reader (taking off the one there) until pcscd sees it."""
        card = self.by_name[name]
        with self._slot_lock:
            slot = self.slot
            if slot is None:
                raise RuntimeError("the demo rig is not started")
            if self.on_reader is not None:
                self._remove(slot)
            slot.swap(card.card)
            # pcscd's vpcd driver can miss a card put back right after one was taken
            # away (the reader stays "empty" with the card linked); no hand is that fast.
            gap = self._removed_at + SWAP_GAP - time.monotonic()
            if gap > 0:
                time.sleep(gap)
            slot.insert()
            self.on_reader = card
            if wait_for_card_state(READER_0, True, RETAP_AFTER_S):
                return
            logger.warning('event=demo_retap why="pcscd did not see the card; tapping again"')
            slot.remove()
            time.sleep(SWAP_GAP)
            slot.insert()
            if not wait_for_card_state(READER_0, True, CARD_WAIT_S):
                raise RuntimeError("pcscd did not report the virtual card")

    def remove(self) -> None:
        """Take the card off the reader until pcscd reports the reader empty."""
        with self._slot_lock:
            if self.slot is not None and self.on_reader is not None:
                self._remove(self.slot)

    def _remove(self, slot: VpcdCard) -> None:
        slot.remove()
        self.on_reader = None
        self._removed_at = time.monotonic()
        if not wait_for_card_state(READER_0, False, CARD_WAIT_S):
            raise RuntimeError("pcscd did not report the card removed")

    def type(self, keys: str) -> None:
        type_keys(self.mock, keys)

    def set_input(self, which: DoorInput, active: bool) -> None:
        self.mock.set_input(which, active)

    def set_mode(self, mode: Mode) -> None:
        self.the_daemon.post(ModeSet(mode))

    def pin(self, name: str) -> str:
        pin = self.manifest.card(name).pin
        if pin is None:
            raise ValueError(f"{name} has no PIN")
        return pin

    # -- eyes ------------------------------------------------------------------------------------

    def wait_state(self, state: str, timeout: float) -> bool:
        daemon = self.the_daemon
        return wait_until(lambda: daemon.snapshot().state == state, timeout)

    def relay_energised(self) -> bool:
        return self.mock.relay_energised()

    def relay_mark(self) -> int:
        return self.mock.relay_mark()

    def relay_pulses(self, since: int) -> list[float]:
        return self.mock.relay_pulses(since)
