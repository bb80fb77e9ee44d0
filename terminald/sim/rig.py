"""The real gate daemon on mock GPIO with a virtual reader slot: shared by demo and scenarios.

``SimRig`` runs what ``terminald run`` runs (``open_daemon`` on a configuration file
whose ``[gpio] backend`` is ``"mock"``, so gpiozero's MockFactory) with its loop on a
thread, pcscd with the vpcd driver (or the one already running in the sandbox), and
one vpcd slot. It gives a person or a script hands (tap and remove virtual cards, type
on the matrix keypad, flip door inputs, change the mode, reload) and eyes (the daemon's
records and alarms, its snapshot, the mock pins and the last log lines). ``demo_rig``
adds the demo's desk of cards; ``scenario`` plays a scenario file on it. The daemon's
wall clock is a ``sim_clock.SimClock``, which a scenario's ``clock`` step moves forward;
the log tail is ``rig_log``'s.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Self

from terminald.backends.gpio_mock import MockGpioDriver
from terminald.config import Config
from terminald.core.commands import AlarmChanged, Record
from terminald.core.hardware import DoorInput, KeyPressed
from terminald.core.terminal import Mode, ModeSet
from terminald.daemon.main import open_daemon
from terminald.daemon.reload import Reload
from terminald.daemon.service import Daemon, Stop
from terminald.sim.card import VirtualJpkiCard
from terminald.sim.pcscd import (
    READER_0,
    Pcscd,
    SandboxRequiredError,
    list_readers,
    wait_for_card_state,
)
from terminald.sim.rig_log import LogTail as LogTail  # the demo's screen reads it here
from terminald.sim.rig_log import capture_logging
from terminald.sim.sim_clock import SimClock
from terminald.sim.vpcd import SWAP_GAP, VpcdCard

logger = logging.getLogger(__name__)

# The keypad scanner needs a key down for debounce_ms (20 ms at a 5 ms scan on every
# board in hw/boards) and up as long again: hold each for more than three times that.
KEY_HOLD_S = 0.07
KEY_ACK_S = 2.0  # a bound on how long a pressed key may wait for the scanner to read it
CARD_WAIT_S = 10.0
RETAP_AFTER_S = 4.0  # pcscd reports a tapped card within ~0.5 s
PULSE_S = 0.1  # an input pulse: well over the inputs' debounce on every board in hw/boards

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

    def after(self, item: Item, since: int = 0) -> int:
        """The mark just past ``item`` (kept since ``since``), to read on from there."""
        with self._cond:
            for index in range(since, len(self._items)):
                if self._items[index] is item:
                    return index + 1
        raise ValueError("the observer never saw this item")

    def verdict(self, since: int, timeout: float) -> Record | None:
        item = self.wait_for(is_verdict, since, timeout)
        return item if isinstance(item, Record) else None

    def last_verdict(self) -> Record | None:
        with self._cond:
            for item in reversed(self._items):
                if is_verdict(item) and isinstance(item, Record):
                    return item
        return None


VERDICT_KINDS = ("granted", "refused", "attendance")  # a card's decision, whatever the use


def is_verdict(item: Item) -> bool:
    return isinstance(item, Record) and item.kind in VERDICT_KINDS


# -- the rig ---------------------------------------------------------------------------------------


class SimRig:
    """The daemon, its virtual reader slot and its mock pins; see the module doc.

    ``first_card`` is the card the slot holds (not inserted) until the first tap.
    ``clock`` is the daemon's wall clock: a scenario's ``clock`` step moves it forward.
    """

    def __init__(
        self,
        config_path: Path,
        first_card: VirtualJpkiCard,
        *,
        realtime: bool = True,
        clock: SimClock | None = None,
    ) -> None:
        self.config_path = config_path
        self.realtime = realtime
        self.clock = clock if clock is not None else SimClock()
        self.observer = Observer()
        self.log = LogTail()
        self.pcscd: Pcscd | None = None
        self.slot: VpcdCard | None = None
        self.daemon: Daemon | None = None
        self.card_on_reader: VirtualJpkiCard | None = None
        self._first_card = first_card
        self._thread: threading.Thread | None = None
        self._restore_logging: Callable[[], None] | None = None
        self._slot_lock = threading.Lock()
        self._removed_at = float("-inf")
        self._keys_delivered = 0

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
            self.pcscd = Pcscd(log_path=self.config_path.parent / "pcscd.log")
            self.pcscd.start()
        self.slot = VpcdCard(self._first_card, realtime=self.realtime, inserted=False)
        self.slot.start()
        daemon = open_daemon(self.config_path, clock=self.clock)
        self.daemon = daemon
        daemon.add_listener(self.observer)
        self._thread = threading.Thread(target=self._run, name="terminald-loop", daemon=True)
        self._thread.start()
        if not wait_until(lambda: daemon.monitor.beat > 0 and daemon.worker.alive, 10):
            raise RuntimeError("the daemon did not start its reader monitor and card worker")
        if not daemon.ready.wait(10):
            raise RuntimeError("the daemon did not start")
        # Count the keys the scanner delivers (then post them, as the daemon would), so
        # ``type`` can hold a key down until it was read.
        daemon.hardware.keypad.set_handler(self._deliver_key)

    def _delivered_since(self, count: int) -> bool:
        return self._keys_delivered > count

    def _deliver_key(self, event: KeyPressed) -> None:
        self._keys_delivered += 1  # only the scanner thread writes it
        self.the_daemon.post(event)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        assert self.daemon is not None
        try:
            self.daemon.run()
        except Exception:
            logger.exception("event=sim_daemon_crashed")

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self) -> None:
        """Stop the daemon (the relay de-energised), take the card out, stop pcscd."""
        if self.daemon is not None and self._thread is not None:
            self.daemon.post(Stop("sim"))
            self._thread.join(10)
        if self.slot is not None:
            self.slot.stop()
            if self.card_on_reader is not None and self.pcscd is None:
                wait_for_card_state(READER_0, False, 5)  # leave the shared pcscd empty
            self.slot = None
            self.card_on_reader = None
        if self.pcscd is not None:
            self.pcscd.stop()
            self.pcscd = None
        if self._restore_logging is not None:
            self._restore_logging()
            self._restore_logging = None

    # -- what is wired -------------------------------------------------------------------------

    @property
    def the_daemon(self) -> Daemon:
        if self.daemon is None:
            raise RuntimeError("the rig is not started")
        return self.daemon

    @property
    def config(self) -> Config:
        return self.the_daemon.config

    @property
    def mock(self) -> MockGpioDriver:
        mock = self.the_daemon.hardware.mock
        if mock is None:
            raise RuntimeError("the configuration must use gpio backend 'mock'")
        return mock

    # -- hands -----------------------------------------------------------------------------------

    def tap_card(self, card: VirtualJpkiCard) -> None:
        """Put ``card`` on the reader (taking off the one there) until pcscd sees it."""
        with self._slot_lock:
            slot = self.slot
            if slot is None:
                raise RuntimeError("the rig is not started")
            if self.card_on_reader is not None:
                self._remove(slot)
            slot.swap(card)
            # pcscd's vpcd driver can miss a card put back right after one was taken
            # away (the reader stays "empty" with the card linked); no hand is that fast.
            gap = self._removed_at + SWAP_GAP - time.monotonic()
            if gap > 0:
                time.sleep(gap)
            slot.insert()
            self.card_on_reader = card
            if wait_for_card_state(READER_0, True, RETAP_AFTER_S):
                return
            logger.warning('event=sim_retap why="pcscd did not see the card; tapping again"')
            slot.remove()
            time.sleep(SWAP_GAP)
            slot.insert()
            if not wait_for_card_state(READER_0, True, CARD_WAIT_S):
                raise RuntimeError("pcscd did not report the virtual card")

    def remove(self) -> None:
        """Take the card off the reader until pcscd reports the reader empty."""
        with self._slot_lock:
            if self.slot is not None and self.card_on_reader is not None:
                self._remove(self.slot)

    def _remove(self, slot: VpcdCard) -> None:
        slot.remove()
        self.card_on_reader = None
        self._removed_at = time.monotonic()
        if not wait_for_card_state(READER_0, False, CARD_WAIT_S):
            raise RuntimeError("pcscd did not report the card removed")

    def type(self, keys: str, hold_s: float = KEY_HOLD_S) -> None:
        """Each key down for ``hold_s`` and until the keypad read it (a loaded machine's
        scanner may run late: a lost key would make a scenario fail for nothing), then
        up for ``hold_s``, twice that before the same key again (its release must
        debounce first)."""
        for index, key in enumerate(keys):
            seen = self._keys_delivered
            start = time.monotonic()
            self.mock.press(key)
            wait_until(partial(self._delivered_since, seen), KEY_ACK_S)
            time.sleep(max(0.0, hold_s - (time.monotonic() - start)))
            self.mock.release(key)
            again = index + 1 < len(keys) and keys[index + 1] == key
            time.sleep(2 * hold_s if again else hold_s)

    def set_input(self, which: DoorInput, active: bool) -> None:
        """RuntimeError when the board has no such input (an optional one not wired)."""
        try:
            self.mock.set_input(which, active)
        except (KeyError, ValueError):  # not in the pin map (the mock says ValueError)
            board = self.config.gpio.board
            raise RuntimeError(f"board {board} has no {which.value} input") from None

    def pulse_input(self, which: DoorInput, hold_s: float = PULSE_S) -> None:
        """The input active for ``hold_s``, then inactive (a vend-complete pulse)."""
        self.set_input(which, True)
        try:
            time.sleep(hold_s)
        finally:
            self.set_input(which, False)

    def set_mode(self, mode: Mode) -> None:
        self.the_daemon.post(ModeSet(mode))

    def reload(self) -> None:
        """What SIGHUP does to ``terminald run``: the loop re-reads the configuration."""
        self.the_daemon.post(Reload())

    # -- eyes ------------------------------------------------------------------------------------

    def wait_state(self, state: str, timeout: float) -> bool:
        daemon = self.the_daemon
        return wait_until(lambda: daemon.snapshot().state == state, timeout)

    def relay_energised(self) -> bool:
        return self.mock.relay_energised()

    def relay_mark(self) -> int:
        return self.mock.relay_mark()

    def relay_levels(self) -> list[bool]:
        return self.mock.relay_levels()

    def relay_pulses(self, since: int) -> list[float]:
        return self.mock.relay_pulses(since)
