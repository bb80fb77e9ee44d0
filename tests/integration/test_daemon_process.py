"""``terminald run`` as a process, the way systemd runs it.

A datagram socket bound by the test stands in for systemd's NOTIFY_SOCKET, with
WATCHDOG_USEC set as systemd sets it for ``WatchdogSec=``. The process runs on mock
GPIO against the real pcscd; signals are real signals.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from terminald.sim.pcscd import Pcscd
from terminald.sim.testpki import TestPkiManifest
from tests.integration.daemon_rig import gate_config

pytestmark = pytest.mark.pcscd

WATCHDOG_USEC = 400_000  # pings every 0.2 s


@dataclass
class Notifications:
    sock: socket.socket

    def collect(self, seconds: float) -> list[str]:
        """Every datagram received within ``seconds``, one entry per line."""
        deadline = time.monotonic() + seconds
        lines: list[str] = []
        while (remaining := deadline - time.monotonic()) > 0:
            self.sock.settimeout(remaining)
            try:
                lines += self.sock.recv(4096).decode().splitlines()
            except TimeoutError:
                break
        return lines

    def wait_for(self, wanted: str, seconds: float = 10.0, *, exact: bool = False) -> list[str]:
        """Lines received up to and including the first that starts with (or, ``exact``,
        equals) ``wanted``."""
        deadline = time.monotonic() + seconds
        seen: list[str] = []
        while (remaining := deadline - time.monotonic()) > 0:
            self.sock.settimeout(remaining)
            try:
                seen += self.sock.recv(4096).decode().splitlines()
            except TimeoutError:
                break
            if any(line == wanted if exact else line.startswith(wanted) for line in seen):
                return seen
        raise AssertionError(f"no {wanted!r} within {seconds} s; got {seen}")


@dataclass
class DaemonProcess:
    process: subprocess.Popen[str]
    notify: Notifications
    config: Path

    def stderr_after_exit(self, timeout: float = 10.0) -> str:
        _, err = self.process.communicate(timeout=timeout)
        return err


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[tuple[Path, Notifications]]:
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    yield path, Notifications(sock)
    sock.close()


def start(
    config: Path,
    notify: tuple[Path, Notifications],
    *,
    watchdog: bool = True,
    options: tuple[str, ...] = (),
) -> DaemonProcess:
    env = dict(os.environ, NOTIFY_SOCKET=str(notify[0]), WATCHDOG_USEC=str(WATCHDOG_USEC))
    env.pop("WATCHDOG_PID", None)
    if not watchdog:
        del env["WATCHDOG_USEC"]
    process = subprocess.Popen(
        [sys.executable, "-m", "terminald", *options, "run", "--config", str(config)],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    return DaemonProcess(process, notify[1], config)


@pytest.fixture
def running(
    tmp_path: Path,
    test_pki: TestPkiManifest,
    pcscd: Pcscd,
    notify_socket: tuple[Path, Notifications],
) -> Iterator[DaemonProcess]:
    daemon = start(gate_config(tmp_path, test_pki, enrolled=["card-001"]), notify_socket)
    yield daemon
    if daemon.process.poll() is None:
        daemon.process.kill()
        daemon.process.communicate()


def test_ready_watchdog_reload_and_stop(running: DaemonProcess) -> None:
    notify = running.notify
    first = notify.wait_for("READY=1", 20)
    assert not any(line == "WATCHDOG=1" for line in first), "pinged before READY"
    pings = [line for line in notify.collect(1.5) if line == "WATCHDOG=1"]
    assert len(pings) >= 4, f"expected a ping every 0.2 s, got {len(pings)} in 1.5 s"

    # A good new file: RELOADING, then READY again.
    text = running.config.read_text()
    running.config.write_text(text.replace('mode = "normal"', 'mode = "lockdown"'))
    running.process.send_signal(signal.SIGHUP)
    seen = notify.wait_for("READY=1")
    assert "RELOADING=1" in seen
    assert any(line.startswith("STATUS=") and "mode lockdown" in line for line in seen)

    # A bad one: the daemon keeps running (and pinging) on the last good one.
    running.config.write_text("[terminal]\nid = 'x y'\n")
    running.process.send_signal(signal.SIGHUP)
    notify.wait_for("READY=1")
    assert running.process.poll() is None
    assert "WATCHDOG=1" in notify.collect(0.6)

    running.process.send_signal(signal.SIGTERM)
    assert "STOPPING=1" in notify.wait_for("STOPPING=1")
    err = running.stderr_after_exit()
    assert running.process.returncode == 0
    assert "event=reloaded" in err
    assert "event=reload_refused" in err and "terminal.id" in err
    assert "event=stopped" in err


def test_watchdog_withheld_while_the_reader_loop_is_wedged(
    running: DaemonProcess, pcscd: Pcscd
) -> None:
    notify = running.notify
    notify.wait_for("READY=1", 20)
    assert "WATCHDOG=1" in notify.collect(1.0)
    assert pcscd.pid is not None
    # A hung pcscd: the reader monitor's status wait never returns.
    os.kill(pcscd.pid, signal.SIGSTOP)
    try:
        notify.wait_for("WATCHDOG=1", 2)  # still healthy for a while...
        notify.wait_for("STATUS=idle; mode normal; UNHEALTHY: reader monitor silent", 10)
        # ...then not one ping, for longer than systemd's WatchdogSec would wait.
        later = notify.collect(2.0)
        assert "WATCHDOG=1" not in later, later
        assert not any(line.startswith("STATUS=") for line in later), "STATUS repeated"
    finally:
        os.kill(pcscd.pid, signal.SIGCONT)
    assert "WATCHDOG=1" in notify.wait_for("WATCHDOG=1", 10), "pings did not resume"
    running.process.send_signal(signal.SIGTERM)
    err = running.stderr_after_exit()
    assert "event=watchdog_withheld" in err and "event=healthy" in err


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (("[relay]", "[relay]\nactive_high = false"), "relay.active_high"),
        (("open_ms = 300", "open_ms = 5"), "relay.open_ms: must be between 100 and 60000"),
        (('board = "rpi4"', 'board = "rpi9"'), "gpio.board"),
    ],
)
def test_refuses_to_start_on_a_bad_configuration(
    tmp_path: Path,
    test_pki: TestPkiManifest,
    pcscd: Pcscd,
    notify_socket: tuple[Path, Notifications],
    edit: tuple[str, str],
    message: str,
) -> None:
    config = gate_config(tmp_path, test_pki, enrolled=["card-001"])
    config.write_text(config.read_text().replace(*edit))
    daemon = start(config, notify_socket)
    err = daemon.stderr_after_exit(20)
    assert daemon.process.returncode == 2
    assert message in err
    assert "READY=1" not in daemon.notify.collect(0.2)


def test_signals_wake_the_loop_at_once(
    tmp_path: Path,
    test_pki: TestPkiManifest,
    pcscd: Pcscd,
    notify_socket: tuple[Path, Notifications],
) -> None:
    """Without a watchdog the idle loop sleeps up to 5 s; a signal must not wait for that."""
    notify = notify_socket[1]
    config = gate_config(tmp_path, test_pki, enrolled=["card-001"])
    # -vv: more verbose than the file's [log] level = info
    process = start(config, notify_socket, watchdog=False, options=("-vv",)).process
    try:
        notify.wait_for("READY=1", 20)
        for _ in range(3):
            time.sleep(0.7)  # somewhere inside the loop's long sleep
            process.send_signal(signal.SIGHUP)
            notify.wait_for("RELOADING=1", 1.5)
            notify.wait_for("READY=1", 1.5)
        process.send_signal(signal.SIGTERM)
        notify.wait_for("STOPPING=1", 1.5)
        _, err = process.communicate(timeout=10)
        assert process.returncode == 0
        assert "level=debug" in err  # -vv beats the file's [log] level = info
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


def test_pcscd_gone_is_said_once_and_in_status_and_the_daemon_recovers(
    running: DaemonProcess, pcscd: Pcscd
) -> None:
    notify = running.notify
    notify.wait_for("READY=1", 20)
    pcscd.stop()
    try:
        notify.wait_for("STATUS=idle; mode normal; reader: PC/SC unavailable", 10)
        time.sleep(2)  # the monitor retries several times a second meanwhile
    finally:
        pcscd.start()
    notify.wait_for("STATUS=idle; mode normal", 10, exact=True)
    assert "WATCHDOG=1" in notify.collect(1.0)  # pcscd gone is not a wedged daemon
    running.process.send_signal(signal.SIGTERM)
    err = running.stderr_after_exit()
    assert err.count("PC/SC unavailable") == 1, err  # said once, not per retry
    assert "available again" in err
