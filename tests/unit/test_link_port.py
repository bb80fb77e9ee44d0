"""The link's serial pump over a real pty pair: bytes both ways, reopen after the port goes."""

from __future__ import annotations

import os
import select
import threading
import time
import tty
from collections import deque
from pathlib import Path

from terminald.backends.link_port import LinkPort, serial_opener


class EchoNode:
    """Hands back every byte it is fed, one 'frame' per chunk, and counts what it was asked."""

    def __init__(self) -> None:
        self.received = bytearray()
        self.out: deque[bytes] = deque()
        self.asked = 0

    def on_bytes(self, data: bytes, now: float) -> None:
        self.received += data
        self.out.append(data.upper())

    def take_frames(self, now: float, limit: int) -> list[bytes]:
        self.asked += 1
        assert limit == 1  # the pump takes one frame at a time
        return [self.out.popleft()] if self.out else []

    def next_deadline(self) -> float | None:
        return None


def read_for(fd: int, want: int, timeout: float = 5.0) -> bytes:
    got = b""
    deadline = time.monotonic() + timeout
    while len(got) < want and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.05)
        if ready:
            got += os.read(fd, 4096)
    return got


def pty_pair() -> tuple[int, Path]:
    master, slave = os.openpty()
    tty.setraw(master)
    path = Path(os.ttyname(slave))
    os.close(slave)
    return master, path


def test_bytes_go_both_ways_through_a_real_tty() -> None:
    master, path = pty_pair()
    node = EchoNode()
    port = LinkPort(serial_opener(path, 115200), node, name="test")
    port.start()
    try:
        # Bytes written before pyserial has put the tty in raw mode would be echoed by
        # the line discipline, as on a real port opened late.
        assert port.wait_open(5)
        os.write(master, b"hello\x00")
        assert read_for(master, 6) == b"HELLO\x00"
        assert bytes(node.received) == b"hello\x00"
        deadline = time.monotonic() + 2  # the counter follows the write() that returned
        while port.bytes_out < 6 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert port.bytes_in == 6 and port.bytes_out == 6
        assert port.problem is None
    finally:
        port.stop()
        os.close(master)


def test_a_port_that_is_not_there_is_retried_and_named(tmp_path: Path) -> None:
    node = EchoNode()
    port = LinkPort(serial_opener(tmp_path / "ttyUSB9", 115200), node, name="test")
    port.start()
    try:
        deadline = time.monotonic() + 5
        while port.problem is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert port.problem is not None and "cannot open" in port.problem
        assert "ttyUSB9" in port.problem
    finally:
        port.stop()


def test_wake_lets_the_writer_send_what_another_thread_queued() -> None:
    master, path = pty_pair()
    node = EchoNode()
    port = LinkPort(serial_opener(path, 115200), node, name="test")
    port.start()
    try:
        assert port.wait_open(5)

        def later() -> None:
            with port.lock:
                node.out.append(b"event\x00")
            port.wake()

        threading.Timer(0.1, later).start()
        assert read_for(master, 6) == b"event\x00"
    finally:
        port.stop()
        os.close(master)
