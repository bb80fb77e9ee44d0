"""The console's thread against fake ports: a port that is missing, that vanishes under a
session, and that comes back; and the operator's call onto a loop that does not answer."""

from __future__ import annotations

import logging
import queue
import threading
from pathlib import Path

import pytest

from terminald.console import driver as driver_module
from terminald.console.driver import ConsoleDriver
from terminald.console.session import PASSWORD_PROMPT, SessionSettings
from terminald.daemon.operator import OperatorCall, OperatorError
from tests.unit.test_console_session import FakeOperator, MemoryLockouts


class FakePort:
    def __init__(self, script: list[bytes | OSError]) -> None:
        self.script: queue.SimpleQueue[bytes | OSError] = queue.SimpleQueue()
        for item in script:
            self.script.put(item)
        self.written = bytearray()
        self.closed = threading.Event()

    def read(self, size: int) -> bytes:
        try:
            item = self.script.get(timeout=0.01)
        except queue.Empty:
            return b""
        if isinstance(item, OSError):
            raise item
        return item

    def write(self, data: bytes) -> int:
        self.written += data
        return len(data)

    def reset_input_buffer(self) -> None:
        pass

    def close(self) -> None:
        self.closed.set()


def test_a_missing_port_is_retried_with_backoff_and_logged_once(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(driver_module, "RETRY_FIRST_S", 0.001)
    monkeypatch.setattr(driver_module, "RETRY_MAX_S", 0.004)
    caplog.set_level(logging.INFO, "terminald.console")
    attempts: list[str] = []
    port = FakePort([])

    def open_port(path: str, baud: int) -> FakePort:
        attempts.append(path)
        if len(attempts) < 5:
            raise FileNotFoundError(2, "No such file or directory")
        return port

    settings = SessionSettings("/dev/ttyUSB0", Path("/nonexistent"))
    console = ConsoleDriver(settings, 115200, FakeOperator(), MemoryLockouts(), open_port)
    console.start()
    assert console.connected.wait(5)
    console.stop()
    assert not console.alive and port.closed.is_set()
    assert len(attempts) == 5
    lost = [r for r in caplog.records if "console_port_lost" in r.getMessage()]
    assert len(lost) == 1 and "No such file" in lost[0].getMessage()
    assert port.written.decode().endswith(PASSWORD_PROMPT)


def test_a_port_that_vanishes_under_a_session_logs_it_out_and_is_reopened(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from argon2 import PasswordHasher

    monkeypatch.setattr(driver_module, "RETRY_FIRST_S", 0.001)
    passwd = tmp_path / "pw"
    passwd.write_text(PasswordHasher(time_cost=1, memory_cost=64, parallelism=1).hash("x" * 12))
    passwd.chmod(0o600)
    first = FakePort([b"x" * 12 + b"\r", OSError(5, "Input/output error")])
    second = FakePort([])
    ports = [first, second]
    operator = FakeOperator()
    console = ConsoleDriver(
        SessionSettings("/dev/ttyUSB0", passwd),
        115200,
        operator,
        MemoryLockouts(),
        lambda path, baud: ports.pop(0),
    )
    console.start()
    for _ in range(500):
        if not ports and console.connected.is_set():
            break
        threading.Event().wait(0.01)
    console.stop()
    assert first.closed.is_set() and second.closed.is_set()
    kinds = [k for k, _ in operator.records]
    assert kinds == ["console_login", "console_logout"]
    assert operator.records[1][1] == "port /dev/ttyUSB0: port closed"


def test_a_bug_in_a_session_does_not_end_the_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(driver_module, "RETRY_FIRST_S", 0.001)
    calls = []

    class Exploding(FakePort):
        def read(self, size: int) -> bytes:
            raise ValueError("a bug")

    def open_port(path: str, baud: int) -> FakePort:
        calls.append(1)
        return Exploding([]) if len(calls) == 1 else FakePort([])

    console = ConsoleDriver(
        SessionSettings("p", Path("/x")), 9600, FakeOperator(), MemoryLockouts(), open_port
    )
    console.start()
    for _ in range(500):
        if len(calls) >= 2 and console.connected.is_set():
            break
        threading.Event().wait(0.01)
    assert console.alive and len(calls) >= 2
    console.stop()


def test_an_operator_call_the_loop_never_runs_times_out() -> None:
    call = OperatorCall(lambda daemon: 1)
    with pytest.raises(OperatorError, match=r"did not answer within 0\.01 s"):
        call.wait(0.01)


def test_an_operator_call_passes_refusals_and_hides_bugs() -> None:
    def refuse(daemon: object) -> None:
        raise OperatorError("not now: the terminal is in checking")

    def bug(daemon: object) -> None:
        raise KeyError("secret detail")

    refused, broken, fine = OperatorCall(refuse), OperatorCall(bug), OperatorCall(lambda d: 7)
    for call in (refused, broken, fine):
        call.run(None)  # type: ignore[arg-type]
    with pytest.raises(OperatorError, match="not now"):
        refused.wait(1)
    with pytest.raises(OperatorError, match="internal error: KeyError"):
        broken.wait(1)
    assert fine.wait(1) == 7
