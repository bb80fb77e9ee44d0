"""The daemon's small parts that need no hardware: log lines, sd_notify pacing, settings."""

from __future__ import annotations

import io
import logging
import os
import socket
import threading
from pathlib import Path

import pytest

from terminald.backends.systemd_notify import Notifier
from terminald.config import config_from_dict
from terminald.core.terminal import CardArrived, Mode, Terminal, TerminalSettings
from terminald.daemon.logfmt import LogfmtFormatter, fields, log_event, quote
from terminald.daemon.runtime import terminal_settings


def test_logfmt_quotes_only_what_needs_it() -> None:
    assert quote("pin_wrong") == "pin_wrong"
    assert quote("wrong PIN") == '"wrong PIN"'
    assert quote('say "hi"\n') == '"say \\"hi\\"\\n"'
    assert quote(True) == "true"
    assert quote("") == '""'
    assert fields(event="x", serial=5, label=None) == "event=x serial=5"


def test_log_lines_are_one_line_each() -> None:
    stream = io.StringIO()
    logger = logging.getLogger("test.logfmt")
    handler = logging.StreamHandler(stream)
    handler.setFormatter(LogfmtFormatter())
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.INFO)
    log_event(logger, logging.WARNING, "refused", reason="pin_wrong", detail="wrong PIN")
    logger.info("free text\nwith a newline")
    try:
        raise ValueError("boom")
    except ValueError:
        logger.exception("event=internal_error")
    lines = stream.getvalue().splitlines()
    assert lines[0] == (
        'level=warning logger=test.logfmt event=refused reason=pin_wrong detail="wrong PIN"'
    )
    assert lines[1] == 'level=info logger=test.logfmt msg="free text\\nwith a newline"'
    assert lines[2].startswith("level=error logger=test.logfmt event=internal_error exc=")
    assert len(lines) == 3


def test_notifier_paces_the_watchdog_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(2)
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))
    monkeypatch.setenv("WATCHDOG_USEC", "10000000")
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    notifier = Notifier()
    assert notifier.watchdog_interval_s == 5.0
    notifier.ready("idle")
    assert sock.recv(100) == b"READY=1\nSTATUS=idle"
    notifier.status("idle")  # unchanged: not sent again
    notifier.watchdog()
    assert sock.recv(100) == b"WATCHDOG=1"
    monkeypatch.setenv("WATCHDOG_PID", "1")  # meant for another process
    assert Notifier().watchdog_interval_s is None
    monkeypatch.delenv("NOTIFY_SOCKET")
    monkeypatch.delenv("WATCHDOG_PID")
    quiet = Notifier()
    assert not quiet.enabled
    quiet.ready("x")  # a no-op outside systemd
    sock.close()


def test_terminal_settings_come_from_the_config() -> None:
    config = config_from_dict(
        {
            "terminal": {"id": "t"},
            "card": {"pin_timeout_s": 7},
            "revocation": {"required": False},
            "gpio": {"board": "rpi4"},
            "relay": {"open_ms": 1500},
            "door": {"held_open_s": 9, "contact": True, "tamper": True},
        }
    )
    settings = terminal_settings(config)
    assert settings.pin_timeout_s == 7
    door = settings.door
    assert (door.open_ms, door.held_open_s) == (1500, 9)
    assert (door.contact_wired, door.rex_wired, door.tamper_wired) == (True, False, True)


def test_reconfigure_applies_to_the_next_pin_entry() -> None:
    terminal = Terminal(TerminalSettings(pin_timeout_s=20), Mode.NORMAL)
    terminal.start(0.0)
    terminal.handle(CardArrived(), 0.0)
    terminal.reconfigure(TerminalSettings(pin_timeout_s=5))
    assert terminal.settings.pin_timeout_s == 5
    assert terminal.door.settings is terminal.settings.door


def test_a_receiver_that_stops_reading_never_blocks_the_daemon(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))  # and never read: its queue fills after ~10 datagrams
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))
    notifier = Notifier()
    done = threading.Event()

    def ping() -> None:
        for _ in range(200):
            notifier.watchdog()
        done.set()

    thread = threading.Thread(target=ping, daemon=True)
    thread.start()
    assert done.wait(10), "sd_notify blocked on a full socket"
    sock.close()
