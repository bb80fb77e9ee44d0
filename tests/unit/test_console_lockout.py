"""Login delays and lockout per console port, with a fake clock, kept across restarts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from terminald.console.lockout import (
    LockoutPolicy,
    PortRecord,
    delay_for,
    failed,
    locked_for,
    succeeded,
)
from terminald.store.console_lockout import LockoutFile

POLICY = LockoutPolicy(max_failures=5, window_s=900, lockout_s=600, max_delay_s=8)
T0 = 1_800_000_000.0


def test_delays_double_from_one_second_and_are_capped() -> None:
    assert [delay_for(POLICY, n) for n in range(7)] == [0, 1, 2, 4, 8, 8, 8]


def test_five_failures_in_the_window_lock_the_port() -> None:
    record, delays = PortRecord(), []
    for i in range(4):
        outcome = failed(POLICY, record, T0 + i * 10)
        assert not outcome.locked
        record = outcome.record
        delays.append(outcome.delay_s)
    assert delays == [1, 2, 4, 8]
    outcome = failed(POLICY, record, T0 + 40)
    assert outcome.locked
    assert locked_for(POLICY, outcome.record, T0 + 41) == pytest.approx(599)
    assert locked_for(POLICY, outcome.record, T0 + 40 + 600) == 0


def test_failures_older_than_the_window_do_not_count() -> None:
    record = PortRecord()
    for i in range(4):
        record = failed(POLICY, record, T0 + i).record
    outcome = failed(POLICY, record, T0 + 3 + 900)  # the first four are out of the window
    assert not outcome.locked
    assert outcome.record.failures == (T0 + 3 + 900,)
    assert outcome.delay_s == 1


def test_a_success_clears_the_record() -> None:
    assert succeeded() == PortRecord()


def test_a_clock_set_back_cannot_stretch_a_lock() -> None:
    record = PortRecord((), locked_until=T0 + 10 * 86400)  # written with a clock far ahead
    assert locked_for(POLICY, record, T0) == POLICY.lockout_s


def test_failures_in_the_future_count_as_now() -> None:
    record = PortRecord(tuple(T0 + 5000 + i for i in range(4)))
    assert failed(POLICY, record, T0).locked


def test_the_policy_refuses_nonsense() -> None:
    with pytest.raises(ValueError):
        LockoutPolicy(max_failures=0)


def test_counts_survive_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "console-lockout.json"
    first = LockoutFile(path)
    record = PortRecord()
    for i in range(4):
        record = failed(POLICY, record, T0 + i).record
        first.save("/dev/serial0", record)
    first.save("/dev/ttyUSB0", PortRecord((T0,)))
    again = LockoutFile(path)  # a new daemon process
    assert again.load("/dev/serial0") == record
    assert failed(POLICY, again.load("/dev/serial0"), T0 + 5).locked
    assert again.load("/dev/ttyUSB0") == PortRecord((T0,))
    assert again.load("/dev/other") == PortRecord()
    assert oct(path.stat().st_mode & 0o777) == "0o600"  # mkstemp's mode, kept by the rename


def test_a_lock_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "console-lockout.json"
    LockoutFile(path).save("p", PortRecord((), T0 + 600))
    assert locked_for(POLICY, LockoutFile(path).load("p"), T0 + 1) == pytest.approx(599)


@pytest.mark.parametrize(
    "content",
    [
        b"not json",
        b"[]",
        b'{"version": 2, "ports": {}}',
        b'{"version": 1, "ports": []}',
        b'{"version": 1, "ports": {"p": {"failures": ["x", NaN, 1e999], "locked_until": "y"}}}',
        b"x" * 70_000,
    ],
)
def test_a_bad_file_is_logged_and_read_as_empty(
    tmp_path: Path, content: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "console-lockout.json"
    path.write_bytes(content)
    assert LockoutFile(path).load("p") == PortRecord()
    LockoutFile(path).save("p", PortRecord((T0,)))  # and the next save replaces it
    assert LockoutFile(path).load("p") == PortRecord((T0,))
    assert json.loads(path.read_text())["version"] == 1


def test_the_file_keeps_a_bounded_number_of_ports(tmp_path: Path) -> None:
    store = LockoutFile(tmp_path / "l.json")
    for i in range(40):
        store.save(f"/dev/tty{i}", PortRecord((T0,)))
    ports = json.loads((tmp_path / "l.json").read_text())["ports"]
    assert len(ports) <= 16 and "/dev/tty39" in ports


def test_a_file_that_cannot_be_written_still_counts_in_this_run(tmp_path: Path) -> None:
    store = LockoutFile(tmp_path / "missing-dir" / "console-lockout.json")
    assert store.load("p") == PortRecord()
    with pytest.raises(OSError):
        store.save("p", PortRecord((), T0 + 600))
    assert locked_for(POLICY, store.load("p"), T0) == 600
