"""The test line (terminald.sim.line): the wire's byte budget, faults and collisions in
simulated time, then real ptys: byte-exact delivery, backpressure, cut/restore, garbage,
the multi-drop bus, a subprocess on a port, and clean-up."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import threading
import time
from collections.abc import Callable

import pytest
import serial

from terminald.sim.line import FIFO_BYTES, Bus, Line
from terminald.sim.line_medium import BURST_S, Medium, Noise, Port

RATE = 11_520.0  # 115200 baud, 8N1
FAST = 2_000_000  # baud for tests where the rate is not the subject (200 KB/s)


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Poll ``condition``; the deadline only keeps a broken shim from hanging the test."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


def read_exact(fd: int, n: int, timeout: float = 10.0) -> bytes:
    got = bytearray()
    deadline = time.monotonic() + timeout
    while len(got) < n and time.monotonic() < deadline:
        try:
            got += os.read(fd, n - len(got))
        except BlockingIOError:
            time.sleep(0.002)
    return bytes(got)


def open_port(path: str) -> int:
    fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    return fd


def transfer(src: int, dst: int, data: bytes, expect: int | None = None) -> bytes:
    """Write ``data`` at ``src`` in a thread while reading ``expect`` bytes at ``dst`` (a
    receiver must read as the bytes come, or it overruns, as on a real UART)."""
    writer = threading.Thread(target=write_all, args=(src, data))
    writer.start()
    got = read_exact(dst, len(data) if expect is None else expect, timeout=30)
    writer.join()
    return got


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view) :]
        except BlockingIOError:
            time.sleep(0.001)


# -- the wire in simulated time ---------------------------------------------------------


def port(name: str, fifo: int = 1 << 20) -> Port:
    return Port(name=name, fifo_bytes=fifo, rx_bytes=1 << 20)


def test_byte_budget_delivers_the_line_rate_whatever_the_step() -> None:
    for step in (0.0005, 0.001, 0.007):
        a, b = port("a"), port("b")
        a.tx += bytes(100_000)
        medium = Medium([a], [b], RATE, random.Random(1))
        t = 0.0
        while t < 3.0:
            medium.advance(t)
            t += step
        medium.advance(3.0)
        # 3 s of line: 34,560 bytes, give or take the one byte a fractional credit holds.
        assert abs(len(b.rx) - 3 * RATE) <= 1, (step, len(b.rx))
        assert b.rx == bytes(len(b.rx))


def test_an_idle_line_banks_no_line_time() -> None:
    a, b = port("a"), port("b")
    medium = Medium([a], [b], RATE, random.Random(1))
    medium.advance(0.0)
    medium.advance(60.0)  # a minute idle
    a.tx += bytes(10_000)
    medium.advance(60.0)
    assert len(b.rx) == 0
    medium.advance(60.001)
    assert len(b.rx) == int(RATE * 0.001)


def test_a_late_step_loses_line_time_rather_than_bursting() -> None:
    a, b = port("a"), port("b")
    a.tx += bytes(10_000)
    medium = Medium([a], [b], RATE, random.Random(1))
    medium.advance(0.0)
    medium.advance(0.5)  # the pump was descheduled for half a second
    assert len(b.rx) == int(RATE * BURST_S)


def test_fifo_room_is_bounded() -> None:
    p = Port(name="p", fifo_bytes=FIFO_BYTES, rx_bytes=FIFO_BYTES)
    p.tx += bytes(FIFO_BYTES - 10)
    assert p.tx_room() == 10


@pytest.mark.parametrize("p", [1e-2, 1e-3])
def test_error_rate_is_near_the_configured_and_seeded(p: float) -> None:
    data = bytes(range(256)) * 4000  # 1,024,000 bytes
    noise = Noise(random.Random(7))
    noise.set_rates(p, 0.0)
    out, corrupted, dropped = noise.apply(data)
    differing = sum(1 for x, y in zip(data, out, strict=True) if x != y)
    assert dropped == 0 and differing == corrupted
    expected = p * len(data)
    # Five standard deviations of a binomial count: fails only if the rate is wrong.
    assert abs(corrupted - expected) <= 5 * (expected * (1 - p)) ** 0.5, corrupted
    # Each corrupted byte has exactly one bit flipped.
    assert all(bin(x ^ y).count("1") == 1 for x, y in zip(data, out, strict=True) if x != y)


def test_faults_fall_on_the_same_bytes_however_the_stream_is_chunked() -> None:
    data = os.urandom(200_000)
    whole = Noise(random.Random(3))
    whole.set_rates(1e-3, 5e-4)
    expected, c1, d1 = whole.apply(data)
    chunked = Noise(random.Random(3))
    chunked.set_rates(1e-3, 5e-4)
    rng = random.Random(9)
    parts, c2, d2, i = [], 0, 0, 0
    while i < len(data):
        n = rng.randrange(1, 300)
        out, c, d = chunked.apply(data[i : i + n])
        parts.append(out)
        c2, d2, i = c2 + c, d2 + d, i + n
    assert b"".join(parts) == expected and (c1, d1) == (c2, d2)
    assert len(expected) == len(data) - d1 and d1 > 0


def test_drop_rate_loses_bytes_and_zero_rates_are_clean() -> None:
    noise = Noise(random.Random(5))
    noise.set_rates(0.0, 0.01)
    out, corrupted, dropped = noise.apply(bytes(100_000))
    assert corrupted == 0 and len(out) == 100_000 - dropped
    assert 500 < dropped < 1500
    noise.set_rates(0.0, 0.0)
    assert noise.apply(b"clean") == (b"clean", 0, 0)


def test_a_rate_outside_zero_to_one_is_refused_and_changes_nothing() -> None:
    noise = Noise(random.Random(5))
    with pytest.raises(ValueError, match="error_rate must be a probability"):
        noise.set_rates(1.5, 0.0)
    assert noise.error_rate == 0.0


def test_overlapping_talkers_collide_for_everyone_else() -> None:
    a, b, c = port("a"), port("b"), port("c")
    medium = Medium([a, b, c], [a, b, c], RATE, random.Random(2))
    medium.advance(0.0)
    a.tx += b"\x55" * 20
    b.tx += b"\x55" * 50
    medium.advance(1.0)
    assert medium.counters.collided == 20
    # c heard 20 garbled slots then b alone; a heard b's tail after its own 20 bytes.
    assert len(c.rx) == 50 and c.rx[20:] == b"\x55" * 30 and c.rx[:20] != b"\x55" * 20
    assert a.rx == b"\x55" * 30 and b.rx == b""


# -- real ptys ------------------------------------------------------------------------


def test_point_to_point_is_byte_exact_full_duplex_and_throttled() -> None:
    data_up, data_down = os.urandom(65_536), os.urandom(65_536)
    with Line() as line:
        host = serial.Serial(line.path("host"), 115_200, timeout=0)
        term = serial.Serial(line.path("terminal"), 115_200, timeout=0)
        up: list[bytes] = []
        started = time.monotonic()
        reverse = threading.Thread(
            target=lambda: up.append(transfer(term.fileno(), host.fileno(), data_up))
        )
        reverse.start()
        got_down = transfer(host.fileno(), term.fileno(), data_down)
        reverse.join()
        got_up = up[0]
        elapsed = time.monotonic() - started
        stats = line.stats()
        host.close()
        term.close()
    print(
        f"\n64 KB each way at 115200: {len(data_down) / elapsed:,.0f} B/s (nominal 11,520);"
        f" pump's longest stall {stats.max_stall_s * 1000:.0f} ms"
    )
    assert got_down == data_down and got_up == data_up
    assert stats.carried == 2 * 65_536 and stats.corrupted == stats.dropped == 0
    assert stats.max_stall_s > 0  # the pump's lateness is measured (printed below)
    # Only the lower bound: the line can never be faster than its rate (a slow machine
    # could make it slower, which is no fault of the throttle). 64 KB = 5.69 s nominal.
    assert elapsed >= 0.97 * 65_536 / RATE


def test_backpressure_reaches_a_writer_through_the_pty() -> None:
    with Line(baud=9_600) as line:
        fd = open_port(line.path("host"))
        accepted = 0
        try:
            for _ in range(10_000):  # up to 10 MB; a line without backpressure takes it all
                accepted += os.write(fd, bytes(1024))
        except BlockingIOError:
            pass
        sent = line.port_stats("host").sent
        os.close(fd)
    assert accepted < 1_000_000, "the writer was never blocked"
    assert sent <= FIFO_BYTES + 2_000  # the FIFO plus what 9600 baud carried meanwhile


def test_errors_on_the_pty_match_the_counters() -> None:
    data = os.urandom(50_000)
    with Line(baud=FAST, seed=11) as line:
        line.set_error_rate(0.01)
        a, b = open_port(line.path("host")), open_port(line.path("terminal"))
        got = transfer(a, b, data)
        stats = line.stats()
        os.close(a)
        os.close(b)
    differing = sum(1 for x, y in zip(data, got, strict=True) if x != y)
    assert len(got) == len(data) and differing == stats.corrupted
    assert 300 < stats.corrupted < 700


def test_the_same_seed_gives_the_same_faults_through_the_ptys() -> None:
    data = os.urandom(30_000)
    runs = []
    for _ in range(2):
        with Line(baud=FAST, seed=5) as line:
            line.set_error_rate(0.005)
            a, b = open_port(line.path("host")), open_port(line.path("terminal"))
            runs.append((transfer(a, b, data), line.stats().corrupted))
            os.close(a)
            os.close(b)
    assert runs[0] == runs[1] and runs[0][1] > 0


def test_drops_shorten_the_stream_by_the_counted_bytes() -> None:
    with Line(baud=FAST, seed=4) as line:
        line.set_drop_rate(0.02)
        a, b = open_port(line.path("host")), open_port(line.path("terminal"))
        writer = threading.Thread(target=write_all, args=(a, bytes(20_000)))
        writer.start()
        got = bytearray()
        deadline = time.monotonic() + 30  # only against a hang
        while time.monotonic() < deadline and (
            line.stats().carried < 20_000 or len(got) < line.port_stats("terminal").received
        ):
            got += read_exact(b, 1, timeout=0.01)
        writer.join()
        dropped = line.stats().dropped
        os.close(a)
        os.close(b)
    assert len(got) == 20_000 - dropped and 200 < dropped < 600


def test_cut_discards_writes_and_restore_delivers_again() -> None:
    with Line(baud=FAST) as line:
        a, b = open_port(line.path("host")), open_port(line.path("terminal"))
        line.cut()
        write_all(a, b"lost in the cut")
        assert wait_for(lambda: line.stats().cut_lost == 15)
        line.restore()
        write_all(a, b"after")
        assert read_exact(b, 5) == b"after"
        line.cut(duration=0.1)
        assert line.is_cut("terminal")
        assert wait_for(lambda: not line.is_cut("terminal"))
        write_all(b, b"back")
        assert read_exact(a, 4) == b"back"
        os.close(a)
        os.close(b)


def test_garbage_bursts_reach_the_chosen_side() -> None:
    with Line(baud=FAST) as line:
        a, b = open_port(line.path("host")), open_port(line.path("terminal"))
        line.inject_garbage(64, to="terminal")
        assert len(read_exact(b, 64)) == 64
        assert line.stats().garbage == 64 and line.port_stats("host").received == 0
        with pytest.raises(ValueError, match="garbage count"):
            line.inject_garbage(-1)
        os.close(a)
        os.close(b)


def test_a_receiver_that_never_reads_overruns() -> None:
    with Line(baud=FAST) as line:
        a = open_port(line.path("host"))
        write_all(a, bytes(400_000))
        assert wait_for(lambda: line.stats().overrun > 0, timeout=20)
        os.close(a)


def test_bus_delivers_to_every_other_port() -> None:
    with Bus(3, baud=FAST) as bus:
        assert bus.names == ["host", "t1", "t2", "t3"]
        fds = {name: open_port(bus.path(name)) for name in bus.names}
        write_all(fds["host"], b"to everyone")
        for name in ("t1", "t2", "t3"):
            assert read_exact(fds[name], 11) == b"to everyone"
        write_all(fds["t2"], b"from t2")
        for name in ("host", "t1", "t3"):
            assert read_exact(fds[name], 7) == b"from t2"
        assert read_exact(fds["t2"], 1, timeout=0.2) == b""  # no echo of its own bytes
        bus.cut(port="t3")
        write_all(fds["host"], b"x")
        assert read_exact(fds["t1"], 1) == b"x"
        assert bus.port_stats("t3").received == 18
        for fd in fds.values():
            os.close(fd)


def test_a_subprocess_can_use_a_port() -> None:
    with Line(baud=FAST) as line:
        host = open_port(line.path("host"))
        script = "import sys; f = open(sys.argv[1], 'wb', buffering=0); f.write(b'hello')"
        subprocess.run([sys.executable, "-c", script, line.path("terminal")], check=True)
        assert read_exact(host, 5) == b"hello"
        os.close(host)


def test_bad_arguments_are_named() -> None:
    with pytest.raises(ValueError, match="distinct port names"):
        Line("same", "same")
    with Line(baud=FAST) as line:
        with pytest.raises(KeyError, match="no port 'nope'"):
            line.path("nope")
        with pytest.raises(ValueError, match="probability"):
            line.set_error_rate(2.0)


def test_close_leaves_no_fds_threads_or_devices() -> None:
    fds_before = set(os.listdir("/proc/self/fd"))
    threads_before = threading.active_count()
    with Bus(4, baud=FAST) as bus:
        paths = [bus.path(name) for name in bus.names]
        assert all(os.path.exists(p) for p in paths)
        assert threading.active_count() == threads_before + 1
    assert set(os.listdir("/proc/self/fd")) == fds_before
    assert threading.active_count() == threads_before
    assert not any(os.path.exists(p) for p in paths)
    bus.close()  # idempotent
