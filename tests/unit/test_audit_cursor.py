"""The back office's cursor: pull by sequence number, acknowledge, nothing evicted unacked."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from terminald.store.audit import AuditEntry, AuditError, AuditLog

AT = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


def fill(log: AuditLog, n: int, start: int = 0) -> None:
    for i in range(start, start + n):
        log.append(AuditEntry(AT, "gate-1", "refused", "pin_wrong", i, None, f"row {i}"))
    assert log.flush(10)


def test_pages_follow_the_cursor_and_say_where_the_file_ends(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.sqlite", keep=1000, hold=4000, terminal="gate-1")
    fill(log, 10)
    first = log.page(0, 4)
    assert [seq for seq, _ in first.rows] == [1, 2, 3, 4]
    assert [e.serial for _, e in first.rows] == [0, 1, 2, 3]
    assert first.last == 10 and first.missing is None and first.acknowledged == 0
    rest = log.page(4, 100)
    assert [seq for seq, _ in rest.rows] == list(range(5, 11))
    assert log.page(10, 100).rows == []
    log.close()


def test_unacknowledged_rows_outlive_keep_until_acknowledged(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.sqlite", keep=1000, hold=5000, terminal="gate-1")
    fill(log, 2500)
    log.trim()
    assert len(log) == 2500  # nothing acknowledged: nothing goes
    assert log.acknowledge(1500) == 1500
    log.trim()
    # 1-1024 is acknowledged and beyond keep; 1025-2048 is beyond keep but not all acked.
    assert log.page(0, 1).rows[0][0] == 1025
    assert log.acknowledge(100) == 1500  # the mark never moves back
    assert log.acknowledge(10**9) == 2500  # nor past the newest row
    log.trim()
    assert log.page(0, 1).rows[0][0] == 1025  # its end, 2048, is within the newest 1000
    fill(log, 600, start=2500)
    log.trim()
    assert log.page(0, 1).rows[0][0] == 2049  # now wholly beyond keep, and acknowledged
    assert len(log) == 3100 - 2048
    log.close()


def test_the_mark_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "audit.sqlite"
    log = AuditLog(path, keep=1000, hold=4000, terminal="gate-1")
    fill(log, 20)
    log.acknowledge(12)
    log.close()
    again = AuditLog(path, keep=1000, hold=4000, terminal="gate-1")
    assert again.page(12, 100).acknowledged == 12
    again.close()


def test_past_hold_the_oldest_go_with_a_gap_row_and_a_pull_is_told(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.sqlite", keep=1000, hold=2000, terminal="gate-1")
    fill(log, 2100)
    log.trim()
    page = log.page(0, 10)
    assert page.missing == (1, 1024)  # one whole chunk, back down to keep (+ a chunk)
    assert page.rows[0][0] == 1025
    (gap,) = log.recent(10, kind="gap")
    assert "1024 unacknowledged records evicted (seq 1 to 1024)" in gap.detail
    assert dict(gap.attrs) == {"count": "1024", "first": "1", "last": "1024"}
    assert gap.terminal == "gate-1"
    log.close()


def test_without_a_link_every_record_counts_as_acknowledged(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.sqlite", keep=1000)
    fill(log, 2100)
    log.trim()
    assert len(log) == 2100 - 1024
    assert log.recent(10, kind="gap") == []  # nothing unacknowledged went
    log.close()


def test_hold_below_keep_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="hold must be >= keep"):
        AuditLog(tmp_path / "audit.sqlite", keep=1000, hold=10)


def test_an_unwritable_trail_is_an_audit_error(tmp_path: Path) -> None:
    (tmp_path / "audit.sqlite").mkdir()  # a directory where the file should be
    log = AuditLog(tmp_path / "audit.sqlite", keep=1000, hold=1000)
    with pytest.raises(AuditError, match="audit log"):
        log.page(0, 10)
    log.close()


def test_rows_written_are_told_with_their_sequence_numbers(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.sqlite", keep=1000, hold=4000, terminal="gate-1")
    told: list[tuple[int, int | None]] = []
    log.on_written = lambda rows: told.extend((seq, e.serial) for seq, e in rows)
    fill(log, 5)
    assert told == [(1, 0), (2, 1), (3, 2), (4, 3), (5, 4)]

    def broken(rows: object) -> None:
        raise RuntimeError("a listener's bug")

    log.on_written = broken
    fill(log, 2, start=5)  # the trail goes on
    assert [seq for seq, _ in log.page(5, 10).rows] == [6, 7]
    log.close()
