"""The libosdp yardstick (terminald.sim.osdp_bench): the packet channel's framing, the
libosdp receive bug it works around, and a small transfer over the test line."""

from __future__ import annotations

import os
import threading
import time
import tty
from collections.abc import Iterator

import osdp
import pytest

from terminald.sim.osdp_bench import (
    ADDRESS,
    PacketChannel,
    _Driver,
    _Receiver,
    _sender_ops,
    measure_file_transfer,
)


@pytest.fixture
def pty_channel() -> Iterator[tuple[int, PacketChannel]]:
    master, slave = os.openpty()
    tty.setraw(master)
    tty.setraw(slave)
    channel = PacketChannel(os.ttyname(slave), 115_200)
    yield master, channel
    channel.close()
    os.close(master)
    os.close(slave)


def packet(length: int, fill: int = 0x11) -> bytes:
    """An OSDP-shaped packet: SOM, address, 16-bit LE length from SOM, then filler."""
    return bytes([0x53, 0x65]) + length.to_bytes(2, "little") + bytes([fill] * (length - 4))


def read_packet(channel: PacketChannel) -> bytes | None:
    time.sleep(0.02)  # let the pty pass the bytes on
    return channel.read_packet()


def test_packet_channel_returns_whole_packets_only(pty_channel: tuple[int, PacketChannel]) -> None:
    master, channel = pty_channel
    first = b"\xff" + packet(40)
    os.write(master, b"noise" + first[:20])
    assert read_packet(channel) is None
    os.write(master, first[20:] + packet(9, 0x22))
    assert read_packet(channel) == first
    assert read_packet(channel) == packet(9, 0x22)
    assert read_packet(channel) is None


def test_packet_channel_skips_a_som_with_an_impossible_length(
    pty_channel: tuple[int, PacketChannel],
) -> None:
    master, channel = pty_channel
    bogus = bytes([0x53, 0x65, 0xFF, 0xFF, 0x00])  # length 65535 > 1440
    os.write(master, bogus + packet(12))
    assert read_packet(channel) == packet(12)


class _ChunkedPipe(osdp.Channel):  # type: ignore[misc]
    """An in-memory channel whose read returns at most ``chunk`` bytes per call."""

    def __init__(self, inbox: bytearray, outbox: bytearray, chunk: int, lock: threading.Lock):
        super().__init__()
        self.inbox, self.outbox, self.chunk, self.lock = inbox, outbox, chunk, lock

    def read(self, max_bytes: int) -> bytes:
        with self.lock:
            out = bytes(self.inbox[: min(max_bytes, self.chunk)])
            del self.inbox[: len(out)]
        return out

    def write(self, buf: bytes) -> int:
        with self.lock:
            self.outbox += buf
        return len(buf)

    def flush(self) -> None:
        pass


def _transfer_in_memory(chunk: int, wait: float) -> bool:
    lock = threading.Lock()
    to_pd, to_cp = bytearray(), bytearray()
    receiver = _Receiver(2000)
    pd = osdp.PeripheralDevice(
        osdp.PDInfo(ADDRESS, _ChunkedPipe(to_pd, to_cp, chunk, lock)),
        osdp.PDCapabilities([]),
        log_level=osdp.LogLevel.Emergency,
    )
    cp = osdp.ControlPanel(
        [osdp.PDInfo(ADDRESS, _ChunkedPipe(to_cp, to_pd, 4096, lock))],
        log_level=osdp.LogLevel.Emergency,
    )
    drivers = [_Driver(pd, 0.001), _Driver(cp, 0.001)]
    for driver in drivers:
        driver.start()
    try:
        assert cp.online_wait(ADDRESS, 10)
        assert cp.register_file_ops(ADDRESS, _sender_ops(os.urandom(2000)))
        assert pd.register_file_ops(receiver.ops())
        cp.submit_command(ADDRESS, {"command": osdp.Command.FileTransfer, "id": 1, "flags": 0})
        return receiver.done.wait(wait)
    finally:
        for driver in reversed(drivers):
            driver.stop()


def test_libosdp_drops_a_command_split_across_refreshes() -> None:
    """The bug PacketChannel works around (libosdp 3.2.9 from PyPI): with no timing at
    all, a PD whose reads return under 64 bytes (so a 243-byte osdp_FILETRANSFER spans
    several refresh() calls) never accepts it; 64-byte reads (one refresh) work. If this
    starts failing, libosdp fixed it and the byte-stream figures should be re-measured."""
    assert _transfer_in_memory(64, wait=10.0)
    assert not _transfer_in_memory(63, wait=1.5)


def test_a_small_file_crosses_the_line_intact_with_and_without_secure_channel() -> None:
    for secure in (False, True):
        result = measure_file_transfer(3000, secure=secure, baud=1_000_000, timeout=30)
        assert result.verified and result.payload == 3000 and result.secure is secure
        assert result.fragments >= 3000 // 256
        assert result.wire_bytes > 3000 and 0 < result.efficiency < 1


def test_a_bad_line_rate_is_named() -> None:
    with pytest.raises(ValueError, match="baud and fifo_bytes must be positive"):
        measure_file_transfer(1000, secure=False, baud=0)
