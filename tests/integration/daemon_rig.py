"""A gate daemon on MockFactory GPIO and the real pcscd, for the daemon's tests.

``GateRig`` writes a configuration next to the shared test PKI's trust directory,
builds the daemon with ``open_daemon`` (the code ``terminald run`` runs), runs its
loop on a thread, and gives the test hands: tap and remove virtual cards on vpcd,
type on the matrix keypad, flip the door inputs, and wait for the daemon's records.
"""

from __future__ import annotations

import itertools
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from terminald.core.commands import AlarmChanged, Record
from terminald.core.hardware import DoorInput, KeyPressed
from terminald.core.reasons import Reason
from terminald.daemon.main import open_daemon
from terminald.daemon.service import Daemon, Stop
from terminald.sim.card import VirtualJpkiCard
from terminald.sim.pcscd import READER_0, wait_for_card_state
from terminald.sim.profile import CardProfile
from terminald.sim.testpki import TestPkiManifest
from terminald.sim.vpcd import SWAP_GAP, VpcdCard

KEY_HOLD_S = 0.06  # the keypad's debounce is 20 ms at a 5 ms scan (hw/boards/rpi4.toml)
KEY_ACK_S = 2.0  # a pressed key reaches the daemon within one debounce; this is a bound
OPEN_MS = 300


def gate_config(
    directory: Path,
    pki: TestPkiManifest,
    *,
    enrolled: list[str],
    mode: str = "normal",
    extra: str = "",
    revocation: str = "required = false",
) -> Path:
    (directory / "state").mkdir(exist_ok=True)
    lines = []
    for name in enrolled:
        entry = pki.card(name)
        lines += [
            "[[card]]",
            f'issuer = "{entry.issuer_key_id}"',
            f"serial = {entry.serial}",
            f'label = "{name}"',
        ]
    (directory / "enrolled.toml").write_text("\n".join(lines) + "\n")
    path = directory / "terminald.toml"
    path.write_text(
        f"""
[terminal]
id = "test-gate"
mode = "{mode}"
[card]
reader = "{READER_0}"
pin_timeout_s = 5.0
extended_reads = true
[trust]
anchors = ["{pki.trust_dir}"]
include_builtin = false
[revocation]
{revocation}
[gpio]
board = "rpi4"
backend = "mock"
[relay]
open_ms = {OPEN_MS}
[door]
held_open_s = 1.0
contact = true
rex = true
tamper = true
[access]
policy = "enrolled"
[state]
dir = "state"
{extra}
"""
    )
    return path


@dataclass
class GateRig:
    daemon: Daemon
    pki: TestPkiManifest
    records: queue.SimpleQueue[Record | AlarmChanged] = field(default_factory=queue.SimpleQueue)
    slot: VpcdCard | None = None
    thread: threading.Thread | None = None
    realtime: bool = False  # the slot sleeps each card's timing model before answering
    keys_delivered: int = 0
    _counting_keys: bool = False

    def start(self) -> None:
        self.daemon.add_listener(self.records.put)
        self.thread = threading.Thread(target=self.daemon.run, name="daemon-loop", daemon=True)
        self.thread.start()
        assert self.daemon.ready.wait(10), "the daemon did not start"

    def stop(self) -> None:
        self.daemon.post(Stop("test"))
        if self.thread is not None:
            self.thread.join(10)
            assert not self.thread.is_alive(), "the daemon loop did not stop"
        if self.slot is not None:
            self.slot.stop()
            wait_for_card_state(READER_0, False, 5)

    @property
    def mock(self):  # type: ignore[no-untyped-def]
        mock = self.daemon.hardware.mock
        assert mock is not None
        return mock

    # -- hands ---------------------------------------------------------------------------------

    def tap(self, name: str) -> VirtualJpkiCard:
        card = VirtualJpkiCard(self.pki.load_profile(name))
        return self.tap_card(card)

    def tap_card(self, card: VirtualJpkiCard) -> VirtualJpkiCard:
        if self.slot is None:
            self.slot = VpcdCard(card, realtime=self.realtime)
            self.slot.start()
        elif self.slot.inserted:
            self.slot.swap(card)
        else:  # taken off by remove(): put it back, after a gap pcscd cannot miss
            self.slot.swap(card)
            time.sleep(SWAP_GAP)
            self.slot.insert()
        assert wait_for_card_state(READER_0, True, 10), "pcscd never saw the card"
        return card

    def remove(self) -> None:
        assert self.slot is not None
        self.slot.remove()
        assert wait_for_card_state(READER_0, False, 10)

    def type(self, keys: str) -> None:
        self.type_paced(keys, per_key_s=2 * KEY_HOLD_S)

    def type_paced(self, keys: str, per_key_s: float = 0.05) -> None:
        """Type as fast as a hand could: ``per_key_s`` a key, half down and half up. A
        key stays down until the keypad delivered it (a loaded test machine may scan
        late) and up for longer before the same key again (its release must debounce)."""
        if not self._counting_keys:  # count deliveries on their way to the daemon's queue
            self.daemon.hardware.keypad.set_handler(self._deliver_key)
            self._counting_keys = True
        half = per_key_s / 2
        for index, key in enumerate(keys):
            delivered = self.keys_delivered
            start = time.monotonic()
            self.mock.press(key)
            self.wait_until(lambda d=delivered: self.keys_delivered > d, KEY_ACK_S)
            time.sleep(max(0.0, half - (time.monotonic() - start)))
            self.mock.release(key)
            again = index + 1 < len(keys) and keys[index + 1] == key
            time.sleep(half + (KEY_HOLD_S if again else 0.0))

    def _deliver_key(self, event: KeyPressed) -> None:
        self.keys_delivered += 1
        self.daemon.post(event)

    def set_input(self, which: DoorInput, active: bool) -> None:
        self.mock.set_input(which, active)

    def pin(self, name: str) -> str:
        pin = self.pki.card(name).pin
        assert pin is not None
        return pin

    # -- eyes ------------------------------------------------------------------------------------

    def wait_until(self, condition: Callable[[], bool], timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            assert time.monotonic() < deadline, "condition not reached in time"
            time.sleep(0.01)

    def wait_state(self, state: str, timeout: float = 10.0) -> None:
        self.wait_until(lambda: self.daemon.snapshot().state == state, timeout)

    def next_record(self, kind: str | None = None, timeout: float = 10.0) -> Record:
        """The next Record (of ``kind``), skipping alarms and other kinds."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"no {kind or 'record'} within {timeout} s"
            item = self.records.get(timeout=remaining)
            if isinstance(item, Record) and (kind is None or item.kind == kind):
                return item

    def next_alarm(self, timeout: float = 10.0) -> AlarmChanged:
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"no alarm within {timeout} s"
            item = self.records.get(timeout=remaining)
            if isinstance(item, AlarmChanged):
                return item

    def verdict(self, timeout: float = 15.0) -> Reason:
        deadline = time.monotonic() + timeout
        while True:
            record = self.next_record(timeout=max(0.01, deadline - time.monotonic()))
            if record.kind in ("granted", "refused"):
                assert record.reason is not None
                return record.reason

    def relay_energised_levels(self) -> list[bool]:
        return self.mock.relay_levels()

    def relay_pulses(self) -> list[float]:
        return self.mock.relay_pulses()

    def pin_mark(self, pin: int) -> int:
        return len(self.mock.pin(pin).states)

    def rises(self, pin: int, since: int) -> int:
        """How often GPIO ``pin`` went high after ``pin_mark`` was ``since`` (MockPin keeps
        every level it took)."""
        states = self.mock.pin(pin).states[max(since - 1, 0) :]
        return sum(1 for a, b in itertools.pairwise(states) if b.state and not a.state)


class HeldCard(VirtualJpkiCard):
    """A card whose first READ BINARY is answered only when the test lets it go: its
    checks last exactly as long as the test needs to type (a slow card, made certain)."""

    def __init__(self, profile: CardProfile) -> None:
        super().__init__(profile)
        self.holding = threading.Event()  # the daemon is waiting on the card
        self.go = threading.Event()

    def process(self, apdu: bytes) -> bytes:
        if apdu[1:2] == b"\xb0" and not self.go.is_set():
            self.holding.set()
            self.go.wait(30)
        return super().process(apdu)


def open_rig(
    config: Path, pki: TestPkiManifest, clock: Callable[[], datetime] | None = None
) -> GateRig:
    # A card another test left on the session's reader would be this daemon's first tap
    # (seen at start, then gone): wait until the reader is empty.
    wait_for_card_state(READER_0, False, 10)
    rig = GateRig(open_daemon(config, clock=clock) if clock else open_daemon(config), pki)
    rig.start()
    return rig
