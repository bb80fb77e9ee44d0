"""The test line: real tty devices joined by a throttled, fault-injecting wire.

Each party gets a pty pair in raw mode; its program opens the slave path (``path(name)``,
e.g. with ``serial.Serial(path)``, or as the daemon's ``[link] port``; a subprocess can
open it too). One pump thread per line reads the masters and delivers at the line rate
(115200 baud 8N1 = 11,520 B/s by default) through :mod:`terminald.sim.line_medium`:

- :class:`Line` is point to point and full duplex: each direction has its own budget.
- :class:`Bus` is a multi-drop RS-485 line, half duplex: one shared wire, what a port
  writes reaches every other port, overlapping talkers collide (random bytes to all).

Backpressure, as on a real UART: the pump reads a writer only while its transmit FIFO
(``fifo_bytes``, 4 KB by default, about a UART FIFO plus a USB adapter's buffer) has
room. When it is full the bytes stay in the kernel's pty buffer, and once that fills the
writer's ``write()`` blocks, as it does when a real TX FIFO is full. The kernel buffer
(about 20 KB each way on this Linux) sits before the FIFO, so a writer can be that far
ahead of the wire, as with a USB-serial adapter; ``tcdrain`` on the slave returns when
the pump has read the bytes, not when they reached the far end. Measure rates at the
receiver.

Timing: the pump is a thread of the test's process, so it shares the GIL and the
machine's scheduling. When it is late, bytes are late (and beyond 10 ms of lateness the
line loses that time: it is never faster than its rate). ``stats().max_stall_s`` says how
late it ever was with bytes in flight; on a loaded 2-vCPU VM that reached 100-300 ms.

The shim keeps every slave open itself, so a program can close and reopen its port (a
daemon restart) without the pty hanging up; bytes that arrive while nobody has the port
open wait in the pty for the next opener (a receiver must resynchronise anyway). A
receiver that does not read loses bytes beyond the pty's and the shim's buffers
(``overrun``), as a real UART does.

Faults (at runtime, from the test): :meth:`~_Wire.set_error_rate` (a random bit flipped
per byte with that probability), :meth:`~_Wire.set_drop_rate`, :meth:`~_Wire.inject_garbage`
(a burst of random bytes on the wire), :meth:`~_Wire.cut` / :meth:`~_Wire.restore` (nothing
delivered, writes still drain at the line rate into nothing). All seeded: the same seed
and byte stream give the same faults.
"""

from __future__ import annotations

import contextlib
import errno
import os
import random
import select
import threading
import time
import tty
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType

from terminald.sim.line_medium import BITS_PER_BYTE, Counters, Medium, Port

DEFAULT_BAUD = 115_200
FIFO_BYTES = 4096
_READ_CHUNK = 4096
# Pump step while bytes are in flight; the byte budget, not this, sets the rate.
_STEP_S = 0.001
_NICE = -10


@dataclass(frozen=True)
class LineStats:
    """Counters of a whole line, in bytes. ``carried``: byte slots on the wire (garbage and
    collisions included); ``corrupted``/``dropped``: bytes a listener got with a flipped
    bit / lost (summed over listeners); ``garbage``: injected noise slots; ``collided``:
    slots where two talkers overlapped; ``cut_lost``: bytes sent into a cut;
    ``overrun``: bytes lost because a receiver did not read. ``max_stall_s``: the longest
    gap between pump steps while bytes were in flight, in seconds (the shim's own
    hiccup: bytes were late by that much; beyond 10 ms the line also lost time)."""

    carried: int
    corrupted: int
    dropped: int
    garbage: int
    collided: int
    cut_lost: int
    overrun: int
    max_stall_s: float


@dataclass(frozen=True)
class PortStats:
    """Bytes the shim took from a port's program (``sent``) and wrote to it (``received``)."""

    sent: int
    received: int


class _PtyPort(Port):
    """A :class:`Port` with its pty pair (both ends raw, master non-blocking)."""

    def __init__(self, name: str, fifo_bytes: int) -> None:
        super().__init__(name=name, fifo_bytes=fifo_bytes, rx_bytes=fifo_bytes)
        self.master, self.slave = os.openpty()
        tty.setraw(self.master)
        tty.setraw(self.slave)
        os.set_blocking(self.master, False)
        self.path = os.ttyname(self.slave)

    def close(self) -> None:
        for fd in (self.master, self.slave):
            os.close(fd)


class _Wire:
    """What :class:`Line` and :class:`Bus` share: the ports, the media, the pump thread.
    A context manager; :meth:`close` stops the thread and closes every fd."""

    def __init__(
        self, names: Sequence[str], baud: int, seed: int, fifo_bytes: int, bus: bool
    ) -> None:
        if len(set(names)) != len(names) or len(names) < 2:
            raise ValueError(f"a line needs two or more distinct port names, got {names!r}")
        if baud <= 0 or fifo_bytes <= 0:
            raise ValueError(f"baud and fifo_bytes must be positive: {baud!r}, {fifo_bytes!r}")
        self.baud = baud
        self.rate = baud / BITS_PER_BYTE
        rng = random.Random(seed)  # noqa: S311 - reproducible faults, not secrets
        self._ports: dict[str, _PtyPort] = {}
        self._lock = threading.Lock()
        self._wake_r = self._wake_w = -1
        try:
            for name in names:
                self._ports[name] = _PtyPort(name, fifo_bytes)
            self._wake_r, self._wake_w = os.pipe()
        except BaseException:
            self._close_fds()
            raise
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        ports: list[Port] = list(self._ports.values())
        if bus:
            self._media = [Medium(ports, ports, self.rate, rng)]
        else:
            a, b = ports
            self._media = [Medium([a], [b], self.rate, rng), Medium([b], [a], self.rate, rng)]
        self._restore_at: dict[str, float] = {}
        self._closing = False
        self._busy_step: float | None = None
        self._max_stall_s = 0.0
        self._thread = threading.Thread(target=self._pump, name="test-line", daemon=True)
        self._thread.start()

    # -- the public surface ----------------------------------------------------------

    @property
    def names(self) -> list[str]:
        return list(self._ports)

    def path(self, name: str) -> str:
        """The slave device (e.g. ``/dev/pts/7``) for the program at port ``name``.
        Raises KeyError naming the known ports."""
        return self._port(name).path

    def set_error_rate(self, p: float) -> None:
        """Flip one random bit of a received byte with probability ``p`` per byte."""
        with self._lock:
            for medium in self._media:
                medium.set_rates(p, medium.drop_rate)
        self._wake()

    def set_drop_rate(self, p: float) -> None:
        """Lose a received byte with probability ``p`` per byte."""
        with self._lock:
            for medium in self._media:
                medium.set_rates(medium.error_rate, p)
        self._wake()

    def inject_garbage(self, count: int, to: str | None = None) -> None:
        """Put ``count`` random bytes on the wire now, at the line rate, colliding with any
        talker; ``to`` picks the direction of a point-to-point line (the port that hears
        it), None means every direction."""
        if count < 0:
            raise ValueError(f"garbage count must be >= 0, got {count!r}")
        with self._lock:
            target = None if to is None else self._port(to)
            for medium in self._media:
                if target is None or target in medium.listeners:
                    medium.garbage_pending += count
        self._wake()

    def cut(self, duration: float | None = None, port: str | None = None) -> None:
        """Cut the line (or one port's drop): nothing is delivered to or from it, and what
        its program writes drains at the line rate into nothing. Restored by
        :meth:`restore`, or by itself after ``duration`` seconds."""
        with self._lock:
            ports = self._ports.values() if port is None else [self._port(port)]
            for p in ports:
                p.cut = True
                if duration is None:
                    self._restore_at.pop(p.name, None)
                else:
                    self._restore_at[p.name] = time.monotonic() + duration
        self._wake()

    def restore(self, port: str | None = None) -> None:
        """Undo :meth:`cut` for the whole line (or one port)."""
        with self._lock:
            ports = self._ports.values() if port is None else [self._port(port)]
            for p in ports:
                p.cut = False
                self._restore_at.pop(p.name, None)
        self._wake()

    def is_cut(self, port: str) -> bool:
        with self._lock:
            return self._port(port).cut

    def stats(self) -> LineStats:
        with self._lock:
            total = Counters()
            for medium in self._media:
                total.add(medium.counters)
            stall = self._max_stall_s
        return LineStats(**vars(total), max_stall_s=stall)

    def port_stats(self, name: str) -> PortStats:
        with self._lock:
            port = self._port(name)
            return PortStats(sent=port.sent, received=port.received)

    def close(self) -> None:
        """Stop the pump and close every fd. Idempotent."""
        with self._lock:
            self._closing = True
        self._wake()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join()
        self._close_fds()

    def __enter__(self) -> _Wire:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- the pump ----------------------------------------------------------------------

    def _port(self, name: str) -> _PtyPort:
        try:
            return self._ports[name]
        except KeyError:
            raise KeyError(f"no port {name!r} on this line (ports: {list(self._ports)})") from None

    def _wake(self) -> None:
        # A full pipe means the pump is already due to wake; a closed one, that it stopped.
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"\0")

    def _close_fds(self) -> None:
        for port in self._ports.values():
            if port.master >= 0:
                port.close()
                port.master = port.slave = -1
        for fd in (self._wake_r, self._wake_w):
            if fd >= 0:
                os.close(fd)
        self._wake_r = self._wake_w = -1

    def _pump(self) -> None:
        # A wire does not wait for the CPU: ahead of the programs under test when allowed
        # (as root; otherwise the pump runs at their priority and max_stall_s shows it).
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), _NICE)
        poller = select.poll()
        poller.register(self._wake_r, select.POLLIN)
        by_fd = {p.master: p for p in self._ports.values()}
        while True:
            with self._lock:
                if self._closing:
                    return
                timeout_ms = self._step(time.monotonic(), poller)
            for fd, event in poller.poll(timeout_ms):
                if fd == self._wake_r:
                    with contextlib.suppress(BlockingIOError):
                        os.read(self._wake_r, 4096)
                elif event & (select.POLLIN | select.POLLOUT):
                    with self._lock:
                        self._service(by_fd[fd], event)

    def _step(self, now: float, poller: select.poll) -> int | None:
        """Advance the wire, flush receive buffers, set what to poll; the poll timeout."""
        if self._busy_step is not None:
            self._max_stall_s = max(self._max_stall_s, now - self._busy_step)
        for name, at in list(self._restore_at.items()):
            if now >= at:
                self._ports[name].cut = False
                del self._restore_at[name]
        for medium in self._media:
            medium.advance(now)
        for port in self._ports.values():
            if port.rx:
                self._flush_rx(port)
            mask = (select.POLLIN if port.tx_room() > 0 else 0) | (select.POLLOUT if port.rx else 0)
            poller.register(port.master, mask)
        self._busy_step = now if any(m.busy() for m in self._media) else None
        if self._busy_step is not None:
            return max(1, round(_STEP_S * 1000))
        if self._restore_at:
            return max(1, round((min(self._restore_at.values()) - now) * 1000))
        return None

    def _service(self, port: _PtyPort, event: int) -> None:
        if event & select.POLLIN and port.tx_room() > 0:
            now = time.monotonic()
            for medium in self._media:
                medium.advance(now)  # an idle wire's line time starts from these bytes
            try:
                data = os.read(port.master, min(port.tx_room(), _READ_CHUNK))
            except BlockingIOError:
                data = b""
            except OSError as error:
                if error.errno != errno.EIO:
                    raise
                data = b""
            port.tx += data
            port.sent += len(data)
        if event & select.POLLOUT and port.rx:
            self._flush_rx(port)

    @staticmethod
    def _flush_rx(port: _PtyPort) -> None:
        try:
            written = os.write(port.master, port.rx)
        except BlockingIOError:
            return
        del port.rx[:written]
        port.received += written


class Line(_Wire):
    """A point-to-point, full-duplex line between ports ``a`` and ``b``.

    ``with Line() as line: line.path("terminal")``; ``baud`` (8N1), ``seed`` for the
    faults, ``fifo_bytes`` per transmit FIFO and receive buffer."""

    def __init__(
        self,
        a: str = "host",
        b: str = "terminal",
        *,
        baud: int = DEFAULT_BAUD,
        seed: int = 0,
        fifo_bytes: int = FIFO_BYTES,
    ) -> None:
        super().__init__([a, b], baud, seed, fifo_bytes, bus=False)

    def __enter__(self) -> Line:
        return self


class Bus(_Wire):
    """A multi-drop, half-duplex RS-485 line: port ``host`` and ``terminals`` (a count,
    giving ports ``t1``..``tN``, or names). What one port writes reaches all the others;
    overlapping talkers collide."""

    def __init__(
        self,
        terminals: int | Sequence[str] = 2,
        *,
        host: str = "host",
        baud: int = DEFAULT_BAUD,
        seed: int = 0,
        fifo_bytes: int = FIFO_BYTES,
    ) -> None:
        names = (
            [f"t{i}" for i in range(1, terminals + 1)]
            if isinstance(terminals, int)
            else list(terminals)
        )
        super().__init__([host, *names], baud, seed, fifo_bytes, bus=True)

    def __enter__(self) -> Bus:
        return self
