"""The serial port under the link: two threads pumping bytes between a tty and a link node.

The node (the terminal's :class:`terminald.link.terminal_node.TerminalNode` or the back
office's line) is pure: it takes bytes and the time, and hands out encoded frames. This
adapter owns the port: it opens it with pyserial (kernel RS-485 direction control when
asked, see reference/serial-link.md §1: RTS from user space is too slow), reads in one
thread and writes in another, and reopens the port with a growing pause when it goes away
(a USB adapter unplugged), logging once per outage.

Writing takes one frame at a time and waits until the kernel's output queue has nearly
drained before taking the next, so no more than about one frame is ever queued ahead of an
interactive message that arrives during a bulk transfer (issue 10: "never wait behind a
bulk transfer longer than one frame").
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import serial
import serial.rs485

logger = logging.getLogger(__name__)

READ_TIMEOUT_S = 0.02
REOPEN_FIRST_S = 0.5
REOPEN_MAX_S = 10.0
DRAIN_POLL_S = 0.002


class LinkNode(Protocol):
    """What the port drives. Called from the port's two threads under the port's lock."""

    def on_bytes(self, data: bytes, now: float) -> None: ...

    def take_frames(self, now: float, limit: int) -> list[bytes]:
        """Encoded frames (each ending in 0x00) to write now, at most ``limit``."""
        ...

    def next_deadline(self) -> float | None:
        """Monotonic time at which ``take_frames`` must be asked again absent input."""
        ...


Opener = Callable[[], "serial.Serial"]


def serial_opener(path: Path, baud: int, *, rs485: bool = False) -> Opener:
    """Open ``path`` raw 8N1 at ``baud``, exclusively (a second terminald, or a getty left
    on the port, is refused rather than sharing the line)."""

    def open_port() -> serial.Serial:
        port = serial.Serial(
            str(path), baud, timeout=READ_TIMEOUT_S, write_timeout=5.0, exclusive=True
        )
        if rs485:
            try:
                port.rs485_mode = serial.rs485.RS485Settings(
                    rts_level_for_tx=True, rts_level_for_rx=False
                )
            except (OSError, ValueError) as exc:
                port.close()
                raise OSError(f"kernel RS-485 mode refused ({exc}); see docs/operations.md") from (
                    exc
                )
        return port

    return open_port


class LinkPort:
    """Pump bytes between the port and ``node``; ``wake()`` when the node has news to send.

    ``drain_below``: bytes left in the kernel's output queue below which the next frame is
    written (a quarter of a frame keeps the line busy and the queue short). ``on_input``
    is called (on the reader thread, outside the lock) after the node took new bytes.
    """

    def __init__(
        self,
        opener: Opener,
        node: LinkNode,
        *,
        name: str = "link",
        drain_below: int = 256,
        clock: Callable[[], float] = time.monotonic,
        on_input: Callable[[], None] | None = None,
    ) -> None:
        self._open = opener
        self.on_input = on_input
        self.node = node
        self.name = name
        self.drain_below = drain_below
        self.clock = clock
        self.lock = threading.RLock()  # guards the node
        self._wake = threading.Condition(self.lock)
        self._stop = threading.Event()
        self._port: serial.Serial | None = None
        self._port_ready = threading.Event()
        self.problem: str | None = None
        self.bytes_in = 0
        self.bytes_out = 0
        self._threads = [
            threading.Thread(target=self._reader, name=f"{name}-rx", daemon=True),
            threading.Thread(target=self._writer, name=f"{name}-tx", daemon=True),
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        self.wake()
        for thread in self._threads:
            if thread.is_alive():
                thread.join(timeout)
        port, self._port = self._port, None
        if port is not None:
            port.close()

    def wait_open(self, timeout: float) -> bool:
        """Wait (off the loop) until the port is open; False if ``timeout`` came first."""
        return self._port_ready.wait(timeout)

    def wake(self) -> None:
        """Something to send: let the writer ask the node now (any thread)."""
        with self._wake:
            self._wake.notify_all()

    # -- the port's life ---------------------------------------------------------------

    def _reader(self) -> None:
        pause = REOPEN_FIRST_S
        while not self._stop.is_set():
            port = self._port
            if port is None:
                try:
                    port = self._open()
                except (OSError, serial.SerialException) as exc:
                    problem = f"cannot open: {exc}"
                    if problem != self.problem:
                        logger.error("event=link_port_down link=%s problem=%r", self.name, problem)
                        self.problem = problem
                    self._stop.wait(pause)
                    pause = min(pause * 2, REOPEN_MAX_S)
                    continue
                pause = REOPEN_FIRST_S
                if self.problem is not None:
                    logger.info("event=link_port_up link=%s", self.name)
                with self.lock:
                    self.problem = None
                    self._port = port
                    self._port_ready.set()
                self.wake()
            try:
                data = port.read(max(1, port.in_waiting))
            except (OSError, serial.SerialException) as exc:
                self._lost(port, f"read failed: {exc}")
                continue
            if data:
                self.bytes_in += len(data)
                with self.lock:
                    self.node.on_bytes(data, self.clock())
                # Only a 0x00 ends a frame (COBS): before it nothing new can be delivered,
                # so the other threads are not woken for every read (at 115200 baud a read
                # returns every millisecond or so; waking on each cost a tap ~5 ms).
                if 0 in data:
                    self.wake()
                    if self.on_input is not None:
                        self.on_input()

    def _lost(self, port: serial.Serial, problem: str) -> None:
        with contextlib.suppress(OSError, serial.SerialException):
            port.close()
        with self.lock:
            # Both threads see a failing port; the second report may come after the reader
            # opened the next one, and must not mark that one down (the writer would then
            # wait for a ready port for ever while the reader reads on).
            if self._port is not port:
                return
            self._port = None
            self._port_ready.clear()
            self.problem = problem
        logger.error("event=link_port_down link=%s problem=%r", self.name, problem)

    def _writer(self) -> None:
        while not self._stop.is_set():
            if not self._port_ready.wait(0.1):
                continue
            port = self._port
            if port is None:
                continue
            with self._wake:
                now = self.clock()
                frames = self.node.take_frames(now, 1)
                if not frames:
                    deadline = self.node.next_deadline()
                    wait = 0.1 if deadline is None else min(0.1, max(0.0, deadline - now))
                    if wait > 0:
                        self._wake.wait(wait)
                    continue
            try:
                for frame in frames:
                    port.write(frame)
                    self.bytes_out += len(frame)
                while not self._stop.is_set() and port.out_waiting > self.drain_below:
                    time.sleep(DRAIN_POLL_S)
            except (OSError, serial.SerialException, TypeError) as exc:
                # TypeError: pyserial's calls on a port closed under us (fd None).
                if not self._stop.is_set():
                    self._lost(port, f"write failed: {exc}")
