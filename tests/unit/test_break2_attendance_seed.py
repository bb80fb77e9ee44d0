"""BREAK2: a restart must not forget who is clocked in (the toggle's memory).

Found: ``Policy.seed_attendance`` existed (the contract: "seeded by the lead from the
audit log at start") but nothing called it, so after a restart the toggle clocked a
person in again at their evening tap.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from terminald.config import config_from_dict
from terminald.core.policy import Policy
from terminald.daemon.attendance_seed import seed_attendance
from terminald.daemon.policy_wiring import PolicyShared, build_policy
from terminald.store.audit import AuditEntry, AuditLog

NOW = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)  # 17:00 in Tokyo


def entry(subject: str, event: str, at: datetime, kind: str = "attendance") -> AuditEntry:
    return AuditEntry(
        at, "clock-1", kind, "ok", 4660, None, "", None, bytes.fromhex("1ac1"),
        subject=subject, attrs=(("attendance", event),),
    )  # fmt: skip


def attendance_policy(tmp_path: Path) -> Policy:
    config = config_from_dict(
        {
            "terminal": {"id": "clock-1", "purpose": "attendance"},
            "revocation": {"backoffice_keys": ["/k.pub"]},
            "gpio": {"board": "rpi4"},
            "access": {"policy": "enrolment"},
            "state": {"dir": str(tmp_path)},
        }
    )
    parts, problems = build_policy(config, PolicyShared(), None, check_only=True)
    assert parts is not None, problems
    return parts.policy


def test_seed_reads_todays_attendance_back(tmp_path: Path) -> None:
    path = tmp_path / "audit.sqlite"
    log = AuditLog(path)
    log.append(entry("E1001", "clock_in", NOW - timedelta(hours=8)))  # 09:00 Tokyo
    log.append(entry("E1002", "clock_in", NOW - timedelta(hours=8)))
    log.append(entry("E1002", "clock_out", NOW - timedelta(hours=1)))
    log.append(entry("E1003", "clock_in", NOW - timedelta(days=5)))  # beyond the window
    log.append(entry("E1004", "clock_in", NOW, kind="refused"))  # not an attendance event
    assert log.flush(30)
    log.close()
    policy = attendance_policy(tmp_path)
    assert seed_attendance(policy, path, NOW) == 3
    assert policy.attendance.last("E1001") == ("clock_in", NOW - timedelta(hours=8))
    assert policy.attendance.last("E1002") == ("clock_out", NOW - timedelta(hours=1))
    assert policy.attendance.last("E1003") is None
    assert policy.attendance.last("E1004") is None


def test_seed_survives_no_log_and_a_damaged_one(tmp_path: Path) -> None:
    policy = attendance_policy(tmp_path)
    assert seed_attendance(policy, tmp_path / "none.sqlite", NOW) == 0
    bad = tmp_path / "audit.sqlite"
    bad.write_bytes(b"not a database" * 100)
    assert seed_attendance(policy, bad, NOW) == 0


def test_the_daemon_start_seeds() -> None:
    # main.py must call it after the first runtime is built (not on reload: the memory
    # is kept across reloads in PolicyShared).
    source = Path("terminald/daemon/main.py").read_text()
    assert "seed_attendance(" in source
