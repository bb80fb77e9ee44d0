"""libosdp's file transfer over the test line: the yardstick for the link benchmark.

A libosdp ControlPanel sends a file to a PeripheralDevice with osdp_FILETRANSFER
(IEC 60839-11-5; PyPI ``libosdp``, ``import osdp``) over a :class:`terminald.sim.line.Line`
at 115200 baud, both in this process, each on its own pty opened with pyserial.

How the binding is driven (read from its source, libosdp 3.2.x ``osdp/control_panel.py``,
``peripheral_device.py``, ``channel.py``): each side takes a :class:`osdp.Channel` with
``read(max_bytes) -> bytes`` (must not block), ``write(buf) -> int`` and ``flush()``; the
C state machine advances only inside ``ctx.refresh()``, which ``start()`` calls from a
thread that sleeps 20 ms between calls. File data comes from ``register_file_ops`` with
``open/read/write/close`` callables. libosdp sends one fragment per command and waits for
the reader's osdp_FTSTAT before the next (``src/osdp_file.c``; its packet buffer is
256 bytes), so the refresh period adds to every fragment's round trip. Two drives:

- ``refresh_s=None``: the binding as shipped (``start()``, 20 ms sleeps);
- ``refresh_s=0.001``: our own thread calling the same ``refresh()`` every millisecond,
  the best a Python host can get from the library (what a tight C loop would approach).

And two channels: the byte stream of libosdp's example (:class:`SerialChannel`), and
:class:`PacketChannel`, which works around a receive bug of the PyPI build (see there).

Raises :class:`OsdpBenchError` when the peers do not come online or the transfer stalls.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import osdp
import serial

from terminald.sim.line import DEFAULT_BAUD, Line
from terminald.sim.line_medium import BITS_PER_BYTE

ADDRESS = 101
FILE_ID = 1
FAST_REFRESH_S = 0.001
_ONLINE_TIMEOUT_S = 15


class OsdpBenchError(RuntimeError):
    """libosdp did not come online, went offline or stalled (the message says where);
    ``offset`` is how many bytes the sender had had acknowledged, ``seconds`` since the
    command (both 0 before the transfer started)."""

    def __init__(self, message: str, offset: int = 0, seconds: float = 0.0) -> None:
        super().__init__(message)
        self.offset, self.seconds = offset, seconds


@dataclass(frozen=True)
class OsdpResult:
    """One transfer: ``payload`` bytes in ``seconds`` (command submitted → the reader has
    the last byte); ``efficiency`` = payload / (line bytes/s × seconds); ``wire_bytes`` both
    directions on the wire during the transfer; ``fragments`` osdp_FILETRANSFER commands
    whose data the reader wrote; ``verified`` that the reader's bytes equal the file;
    ``max_stall_s`` the test line's longest hiccup (LineStats), to tell its faults from
    libosdp's."""

    payload: int
    seconds: float
    secure: bool
    refresh_s: float | None
    packets: bool
    error_rate: float
    efficiency: float
    wire_bytes: int
    fragments: int
    verified: bool
    max_stall_s: float


class SerialChannel(osdp.Channel):  # type: ignore[misc]  # the binding is untyped
    """An osdp Channel over a tty as in libosdp's own example (``examples/python/cp_app.py``):
    pyserial with ``timeout=0``, so ``read`` never blocks; ``flush`` discards input."""

    def __init__(self, path: str, baud: int) -> None:
        super().__init__()
        self.port = serial.Serial(path, baud, timeout=0)

    def read(self, max_bytes: int) -> bytes:
        data: bytes = self.port.read(max_bytes)
        return data

    def write(self, buf: bytes) -> int:
        written: int | None = self.port.write(buf)
        return len(buf) if written is None else written

    def flush(self) -> None:
        # libosdp calls this before each send "to remove any invalid data" from RX
        # (src/osdp_phy.c, osdp_channel_send) and before a retry, so a late reply cannot
        # meet the retried command; its own test channel drains input too. (Its Python
        # example calls pyserial's flush(), which waits for output instead.)
        self.port.reset_input_buffer()

    def close(self) -> None:
        self.port.close()


class PacketChannel(SerialChannel):
    """A SerialChannel that also offers the binding's packet API (``read_packet``, used
    instead of ``read`` when present): it hands libosdp only whole OSDP packets.

    Why: libosdp 3.2.9 as built for PyPI (``OPT_OSDP_RX_ZERO_COPY``) calls
    ``osdp_phy_release_packet()`` after every receive attempt in ``osdp_pd_update()`` and
    the CP's reply wait, and that function zeroes ``packet_len``/``packet_buf_len`` even
    for a byte-stream channel. So a packet whose bytes span two ``refresh()`` calls is
    thrown away (its tail is later skipped as noise). A 243-byte osdp_FILETRANSFER takes
    21 ms at 115200, so a fast refresh never sees it whole. Framing here: an optional
    0xFF mark, SOM 0x53, address, 16-bit little-endian length counted from SOM (OSDP
    packet header); CRC and everything else are left to libosdp."""

    _SOM, _MARK, _HEADER, _MAX_PACKET, _MAX_BUFFER = 0x53, 0xFF, 5, 1440, 4096

    def __init__(self, path: str, baud: int) -> None:
        super().__init__(path, baud)
        self._buffer = bytearray()

    def read_packet(self) -> bytes | None:
        self._buffer += self.port.read(self._MAX_BUFFER)
        del self._buffer[: max(0, len(self._buffer) - self._MAX_BUFFER)]
        while True:
            start = self._buffer.find(self._SOM)
            if start < 0:
                self._buffer.clear()
                return None
            del self._buffer[: max(0, start - 1)]  # keep one byte: a possible mark
            mark = 1 if self._buffer[0] == self._MARK and self._buffer[1:2] == b"\x53" else 0
            if mark == 0 and self._buffer[0] != self._SOM:
                del self._buffer[0]
                continue
            if len(self._buffer) < mark + self._HEADER:
                return None
            length = int.from_bytes(self._buffer[mark + 2 : mark + 4], "little")
            if not self._HEADER < length <= self._MAX_PACKET:
                del self._buffer[: mark + 1]  # not a packet start: rescan past this SOM
                continue
            if len(self._buffer) < mark + length:
                return None
            packet = bytes(self._buffer[: mark + length])
            del self._buffer[: mark + length]
            return packet

    def flush(self) -> None:
        super().flush()
        self._buffer.clear()

    def release_packet(self, packet: object) -> None:
        """The binding's release hook; the bytes object is simply dropped."""


class _Driver:
    """Calls ``refresh()`` of a ControlPanel/PeripheralDevice every ``period`` seconds
    under the wrapper's own lock (so its methods stay usable), or uses ``start()``."""

    def __init__(self, device: Any, period: float | None) -> None:
        self.device, self.period = device, period
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self.period is None:
            self.device.start()
            return
        self.device.lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="osdp-refresh", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        assert self.period is not None
        while not self._stop.is_set():
            with self.device.lock:
                self.device.ctx.refresh()
            time.sleep(self.period)

    def stop(self) -> None:
        if self.period is None:
            self.device.stop()
        elif self._thread is not None:
            self._stop.set()
            self._thread.join()


class _Receiver:
    """The reader's file ops: writes into a buffer, counts fragments, signals close."""

    def __init__(self, size: int) -> None:
        self.data = bytearray(size)
        self.fragments = 0
        self.done = threading.Event()
        self.done_at = 0.0

    def ops(self) -> dict[str, Callable[..., Any]]:
        return {"open": self.open, "read": self.read, "write": self.write, "close": self.close}

    def open(self, file_id: int, size: int) -> int:
        return 0 if size == len(self.data) else -1

    def read(self, size: int, offset: int) -> bytes:
        return b""

    def write(self, data: bytes, offset: int) -> int:
        if offset + len(data) > len(self.data):
            return -1
        self.data[offset : offset + len(data)] = data
        self.fragments += 1
        return len(data)

    def close(self, file_id: int) -> None:
        self.done_at = time.monotonic()
        self.done.set()


def _sender_ops(payload: bytes) -> dict[str, Callable[..., Any]]:
    return {
        "open": lambda file_id, size: len(payload),
        "read": lambda size, offset: payload[offset : offset + size],
        "write": lambda data, offset: -1,
        "close": lambda file_id: None,
    }


def measure_file_transfer(
    size: int,
    *,
    secure: bool,
    refresh_s: float | None = FAST_REFRESH_S,
    packets: bool = True,
    baud: int = DEFAULT_BAUD,
    error_rate: float = 0.0,
    seed: int = 0,
    timeout: float = 3600.0,
    log_level: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> OsdpResult:
    """Send ``size`` random bytes (seeded) from a libosdp CP to a PD over a fresh
    :class:`Line`; with Secure Channel (AES-128, a random SCBK, EnforceSecure on both)
    if ``secure``. ``refresh_s`` None drives the binding with its own 20 ms thread.
    ``packets`` gives libosdp whole packets (:class:`PacketChannel`); False is the plain
    byte stream of libosdp's example, which meets the split-packet drop. ``log_level``
    (an ``osdp.LogLevel``; Error by default) sets what libosdp prints to stderr.
    ``progress(offset, size)`` is called about once a second. Raises OsdpBenchError."""
    payload = random.Random(seed).randbytes(size)  # noqa: S311 - only the size matters
    key = osdp.KeyStore.gen_key() if secure else None
    flags = [osdp.LibFlag.EnforceSecure] if secure else []
    receiver = _Receiver(size)
    level = osdp.LogLevel.Error if log_level is None else log_level
    with Line("cp", "pd", baud=baud, seed=seed) as line:
        channel = PacketChannel if packets else SerialChannel
        cp_channel = channel(line.path("cp"), baud)
        pd_channel = channel(line.path("pd"), baud)
        pd = osdp.PeripheralDevice(
            osdp.PDInfo(ADDRESS, pd_channel, scbk=key, flags=flags),
            osdp.PDCapabilities([]),
            log_level=level,
        )
        cp = osdp.ControlPanel(
            [osdp.PDInfo(ADDRESS, cp_channel, scbk=key, flags=flags)], log_level=level
        )
        drivers = [_Driver(pd, refresh_s), _Driver(cp, refresh_s)]
        for driver in drivers:
            driver.start()
        try:
            wait = cp.sc_wait if secure else cp.online_wait
            if not wait(ADDRESS, _ONLINE_TIMEOUT_S):
                raise OsdpBenchError(
                    f"libosdp PD did not come online{' with Secure Channel' if secure else ''}"
                    f" within {_ONLINE_TIMEOUT_S} s"
                )
            line.set_error_rate(error_rate)
            if not cp.register_file_ops(ADDRESS, _sender_ops(payload)) or not (
                pd.register_file_ops(receiver.ops())
            ):
                raise OsdpBenchError("libosdp refused the file ops")
            carried_before = line.stats().carried
            started = time.monotonic()
            command = {"command": osdp.Command.FileTransfer, "id": FILE_ID, "flags": 0}
            if not cp.submit_command(ADDRESS, command):
                raise OsdpBenchError("libosdp refused the FileTransfer command")
            offset = 0
            while not receiver.done.wait(0.5):
                status = cp.get_file_tx_status(ADDRESS)
                offset = int(status["offset"]) if status else offset
                elapsed = time.monotonic() - started
                if progress is not None:
                    progress(offset, size)
                if not cp.is_online(ADDRESS):
                    # libosdp then waits 300 s before it tries the PD again (osdp_cp.c).
                    raise OsdpBenchError(
                        f"libosdp CP took the PD offline at {offset:,} of {size:,} bytes"
                        f" after {elapsed:.1f} s (test line's longest hiccup"
                        f" {line.stats().max_stall_s * 1000:.0f} ms)",
                        offset,
                        elapsed,
                    )
                if elapsed > timeout:
                    raise OsdpBenchError(
                        f"libosdp file transfer stalled at {offset:,} of {size:,} bytes"
                        f" after {timeout:.0f} s",
                        offset,
                        elapsed,
                    )
            seconds = receiver.done_at - started
            stats = line.stats()
            wire = stats.carried - carried_before
        finally:
            for driver in reversed(drivers):
                driver.stop()
            cp_channel.close()
            pd_channel.close()
    return OsdpResult(
        payload=size,
        seconds=seconds,
        secure=secure,
        refresh_s=refresh_s,
        packets=packets,
        error_rate=error_rate,
        efficiency=size / (baud / BITS_PER_BYTE * seconds),
        wire_bytes=wire,
        fragments=receiver.fragments,
        verified=bytes(receiver.data) == payload,
        max_stall_s=stats.max_stall_s,
    )
