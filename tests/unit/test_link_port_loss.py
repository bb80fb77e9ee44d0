"""The serial port goes away under a running link (a USB adapter pulled out) and comes
back: the port is reopened and bytes flow again, with one problem named meanwhile."""

from __future__ import annotations

import os
import time

from terminald.backends.link_port import LinkPort, serial_opener
from tests.unit.test_link_port import EchoNode, pty_pair, read_for


def test_a_port_that_fails_under_the_link_is_reopened_and_works_again() -> None:
    pairs = [pty_pair(), pty_pair()]  # the adapter, then the adapter plugged back in
    opened: list[int] = []

    def opener():  # type: ignore[no-untyped-def]
        index = min(len(opened), 1)
        opened.append(index)
        return serial_opener(pairs[index][1], 115200)()

    node = EchoNode()
    port = LinkPort(opener, node, name="test")
    port.start()
    try:
        assert port.wait_open(5)
        os.write(pairs[0][0], b"one\x00")
        assert read_for(pairs[0][0], 4) == b"ONE\x00"
        os.close(pairs[0][0])  # pulled out: the tty hangs up, reads fail
        deadline = time.monotonic() + 10
        while len(opened) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(opened) >= 2 and port.wait_open(5)
        os.write(pairs[1][0], b"two\x00")
        assert read_for(pairs[1][0], 4) == b"TWO\x00"
        assert port.problem is None
    finally:
        port.stop()
        os.close(pairs[1][0])


class _Port:
    def close(self) -> None:
        pass


def test_the_late_report_of_an_old_port_does_not_mark_the_new_one_down() -> None:
    # Reader and writer both see the old port fail; the reader has already opened the
    # next one when the writer's report comes in.
    port = LinkPort(lambda: _Port(), EchoNode(), name="test")  # type: ignore[arg-type, return-value]
    old, new = _Port(), _Port()
    port._port = old  # type: ignore[assignment]
    port._lost(old, "read failed")  # type: ignore[arg-type]
    port._port, port.problem = new, None  # type: ignore[assignment]
    port._port_ready.set()
    port._lost(old, "write failed")  # type: ignore[arg-type]
    assert port._port is new and port._port_ready.is_set() and port.problem is None
