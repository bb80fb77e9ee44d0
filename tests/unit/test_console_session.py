"""A console session against a fake operator: login, delays, lockout, commands, output."""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from hypothesis import given
from hypothesis import strategies as st

from terminald.console.commands import ParseError, parse
from terminald.console.lockout import LockoutPolicy, PortRecord
from terminald.console.session import (
    PASSWORD_PROMPT,
    PROMPT,
    Session,
    SessionClock,
    SessionSettings,
)
from terminald.core.terminal import Mode
from terminald.daemon.operator import (
    ConfigView,
    EnrolmentView,
    OperatorError,
    Output,
    ReadersView,
    RevocationView,
    StatusView,
    TimeView,
)
from terminald.store.audit import AuditEntry
from tests.fuzzing import FUZZ

PASSWORD = "correct horse 42"
NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


class FakeOperator:
    def __init__(self) -> None:
        self.records: list[tuple[str, str]] = []
        self.mode = Mode.NORMAL
        self.tests: list[str] = []
        self.restarts: list[str] = []
        self.fail_with: str | None = None

    def _check(self) -> None:
        if self.fail_with:
            raise OperatorError(self.fail_with)

    def status(self) -> StatusView:
        self._check()
        return StatusView("gate-1", "idle", self.mode.value, False, False, (), None, None, None, "")

    def readers(self) -> ReadersView:
        return ReadersView(
            None, ("Virtual PCD 00 00",), None, None, False, 3, 120, 40, "granted ok", NOW
        )

    def revocation(self) -> RevocationView:
        return RevocationView(True, True, "", 7, NOW, NOW, "fresh", 12)

    def enrolment(self) -> EnrolmentView:
        return EnrolmentView("enrolled", Path("/etc/terminald/enrolled.toml"), 6)

    def config(self) -> ConfigView:
        return ConfigView(Path("/etc/terminald/terminald.toml"), "ab" * 32, NOW, False)

    def time(self) -> TimeView:
        return TimeView(NOW, NOW, "revocation data version 7's issue time", None)

    def events(self, limit: int) -> list[AuditEntry]:
        return [AuditEntry(NOW, "gate-1", "granted", "ok", 5, "x" * 200, "")] * limit

    def set_mode(self, mode: Mode) -> str:
        self._check()
        before, self.mode = self.mode, mode
        return f"mode {before.value} -> {mode.value}"

    def test_output(self, output: Output) -> str:
        self.tests.append(output)
        return f"{output} tested"

    def restart(self, why: str) -> None:
        self.restarts.append(why)

    def record(self, kind: str, detail: str) -> None:
        self.records.append((kind, detail))


class MemoryLockouts:
    def __init__(self) -> None:
        self.ports: dict[str, PortRecord] = {}

    def load(self, port: str) -> PortRecord:
        return self.ports.get(port, PortRecord())

    def save(self, port: str, record: PortRecord) -> None:
        self.ports[port] = record


class Clock:
    def __init__(self) -> None:
        self.wall = 1_800_000_000.0
        self.mono = 100.0
        self.slept: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.wall += seconds
        self.mono += seconds


class Rig:
    def __init__(self, tmp_path: Path, lockouts: MemoryLockouts | None = None) -> None:
        path = tmp_path / "console.passwd"
        # Cheap parameters: verify reads them from the hash, so tests stay fast.
        path.write_text(PasswordHasher(time_cost=1, memory_cost=64, parallelism=1).hash(PASSWORD))
        path.chmod(0o600)
        self.out = bytearray()
        self.op = FakeOperator()
        self.lockouts = lockouts or MemoryLockouts()
        self.clock = Clock()
        self.dropped = 0
        policy = LockoutPolicy(max_failures=3, window_s=900, lockout_s=600)
        self.session = Session(
            SessionSettings("/dev/ttyS9", path, idle_logout_s=60, policy=policy),
            self.op,
            self.lockouts,
            self.out.extend,
            clock=SessionClock(lambda: self.clock.wall, lambda: self.clock.mono, self.clock.sleep),
            drop_input=self._drop,
        )

    def _drop(self) -> None:
        self.dropped += 1

    def type(self, data: bytes) -> str:
        self.out.clear()
        self.session.receive(data)
        return self.out.decode()

    def login(self) -> None:
        assert "Logged in" in self.type(PASSWORD.encode() + b"\r")


@pytest.fixture
def rig(tmp_path: Path) -> Rig:
    return Rig(tmp_path)


def test_the_session_opens_on_a_password_prompt(rig: Rig) -> None:
    assert rig.out.decode().endswith(PASSWORD_PROMPT)


def test_the_right_password_logs_in_without_echo(rig: Rig) -> None:
    shown = rig.type(PASSWORD.encode() + b"\r")
    assert PASSWORD not in shown and "horse" not in shown
    assert "Logged in" in shown and shown.endswith(PROMPT)
    assert rig.op.records == [("console_login", "port /dev/ttyS9")]
    assert rig.clock.slept == []


def test_wrong_passwords_are_delayed_more_each_time_then_lock(rig: Rig) -> None:
    for _ in range(3):
        assert "Login incorrect" in rig.type(b"wrong password\r")
    assert rig.clock.slept == [1, 2, 1]  # the third locked the port (then a short pause)
    kinds = [k for k, _ in rig.op.records]
    assert kinds == ["console_login_failed"] * 3 + ["console_lockout"]
    assert rig.dropped == 3  # what was typed during each delay was thrown away
    shown = rig.type(PASSWORD.encode() + b"\r")  # even the right one, while locked
    assert "locked" in shown and "Logged in" not in shown
    rig.clock.wall += 600
    rig.login()


def test_a_lock_kept_from_before_a_restart_holds(tmp_path: Path) -> None:
    lockouts = MemoryLockouts()
    lockouts.ports["/dev/ttyS9"] = PortRecord((), 1_800_000_000.0 + 300)
    rig = Rig(tmp_path, lockouts)
    assert "try again in 5 min" in rig.type(PASSWORD.encode() + b"\r")


def test_a_missing_password_file_refuses_login_plainly(rig: Rig) -> None:
    rig.session.settings.passwd.unlink()
    shown = rig.type(PASSWORD.encode() + b"\r")
    assert "not set up" in shown and "Logged in" not in shown
    assert rig.op.records[0][0] == "console_login_failed"


def test_a_password_file_open_to_others_is_refused(rig: Rig) -> None:
    rig.session.settings.passwd.chmod(0o644)
    assert "not set up" in rig.type(PASSWORD.encode() + b"\r")


def test_commands_run_and_lines_fit_80_columns(rig: Rig) -> None:
    rig.login()
    for line in (b"status", b"ev 5", b"readers", b"rev", b"enrol", b"config", b"time", b"help"):
        shown = rig.type(line + b"\r")
        assert shown.endswith(PROMPT)
        body = shown[len(line) + 2 :].split("\r\n")
        assert len(body) > 2, line
        assert all(len(row) < 80 for row in body), line
    assert "gate-1" in rig.type(b"st\r")
    assert rig.type(b"ev 3\r").count("granted") == 3


def test_question_mark_lists_and_keeps_the_line(rig: Rig) -> None:
    rig.login()
    shown = rig.type(b"test ?")
    assert "relay" in shown and "buzzer" in shown
    assert shown.endswith(PROMPT + "test ")
    assert "relay tested" in rig.type(b"rel\r")
    assert rig.op.tests == ["relay"]


def test_an_ambiguous_prefix_says_which_words(rig: Rig) -> None:
    rig.login()
    assert "ambiguous command 're': readers, revocation, restart" in rig.type(b"re\r")


def test_mode_change_is_audited(rig: Rig) -> None:
    rig.login()
    assert "normal -> lockdown" in rig.type(b"mode lock\r")
    assert ("console_command", "port /dev/ttyS9: mode lockdown") in rig.op.records
    assert "lockdown" in rig.type(b"mode\r")


def test_operator_errors_are_one_line(rig: Rig) -> None:
    rig.login()
    rig.op.fail_with = "the daemon did not answer within 2 s"
    assert "% the daemon did not answer within 2 s" in rig.type(b"status\r")


def test_restart_asks_first(rig: Rig) -> None:
    rig.login()
    assert rig.type(b"restart\r").endswith("[y/N] ")
    assert "Not restarted" in rig.type(b"n\r")
    assert rig.op.restarts == []
    rig.type(b"restart\r")
    rig.type(b"y\r")
    assert rig.op.restarts == ["console"]


def test_ctrl_d_and_logout_end_the_session(rig: Rig) -> None:
    rig.login()
    assert rig.type(b"\x04").endswith(PASSWORD_PROMPT)
    rig.login()
    assert rig.type(b"exit\r").endswith(PASSWORD_PROMPT)
    assert [k for k, _ in rig.op.records].count("console_logout") == 2
    assert "Logged in" not in rig.type(b"status\r")  # a password attempt now, not a command


def test_an_idle_session_is_logged_out(rig: Rig) -> None:
    rig.login()
    rig.clock.mono += 59
    rig.out.clear()
    rig.session.tick()
    assert rig.out == b""
    rig.clock.mono += 1
    rig.session.tick()
    assert "logged out" in rig.out.decode()
    assert rig.op.records[-1] == ("console_logout", "port /dev/ttyS9: idle")


def test_enter_alone_at_the_password_prompt_is_no_attempt(rig: Rig) -> None:
    assert rig.type(b"\r\r").endswith(PASSWORD_PROMPT)
    assert rig.op.records == [] and rig.clock.slept == []


def test_half_a_password_left_at_the_prompt_is_forgotten(rig: Rig) -> None:
    rig.type(PASSWORD[:6].encode())
    rig.clock.mono += 60
    rig.session.tick()
    assert "Logged in" not in rig.type(PASSWORD[6:].encode() + b"\r")
    assert rig.op.records == [("console_login_failed", "port /dev/ttyS9: failure 1")]


_SHOWN = set(range(0x20, 0x7F)) | {0x07, 0x08, 0x0A, 0x0D}


@pytest.mark.fuzz
@given(st.binary(max_size=300))
@FUZZ
def test_any_bytes_at_the_prompt_never_log_in_nor_crash(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as directory:
        rig = Rig(Path(directory))
        shown = rig.type(data)
        assert not rig.session.logged_in
        assert "Logged in" not in shown
        assert set(shown.encode()) <= _SHOWN


@pytest.mark.fuzz
@given(
    st.lists(
        st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40),
        max_size=8,
    )
)
@FUZZ
def test_any_command_lines_never_crash_and_fit_the_screen(lines: list[str]) -> None:
    with tempfile.TemporaryDirectory() as directory:
        rig = Rig(Path(directory))
        rig.login()
        for line in lines:
            try:
                parsed = parse(line)
            except ParseError:
                parsed = None
            if parsed is not None and parsed.spec.name in ("logout", "exit", "restart"):
                continue  # logging out or restarting is not what this explores
            shown = rig.type(line.encode() + b"\r")
            assert shown.endswith(PROMPT), line
            for row in shown.split("\r\n")[1:]:
                assert len(row) < 80, row
