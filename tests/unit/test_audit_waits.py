"""The audit trail keeps every committed row through kills, locks and corruption.

Real SQLite files and real other processes (a writer killed with SIGKILL, a process
holding the write lock); the conditions that need root and a mount namespace (a full
disk, a read-only file, a non-root reader) are in tests/integration/test_audit_conditions.py.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from terminald.cli import main
from terminald.store.audit import KINDS, AuditEntry, AuditLog, AuditReader

AT = datetime(2026, 11, 24, 9, 0, 0, tzinfo=UTC)
ROWS = 50


def row(i: int, kind: str = "rex") -> AuditEntry:
    return AuditEntry(AT + timedelta(seconds=i), "gate-1", kind, None, None, None, f"row {i}")


def wait_for(condition: object, what: str, limit_s: float = 30.0) -> None:
    """Poll a condition; the limit only turns a hang into a failure, it measures nothing."""
    deadline = time.monotonic() + limit_s
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.02)


def killed_writer(path: Path, rows: int = ROWS, *, checkpoint_after: bool = False) -> None:
    """A daemon-like process writes ``rows`` rows (committed: flush returned) and is
    killed with SIGKILL, leaving its WAL and -shm as a crash does."""
    code = textwrap.dedent(
        f"""
        import sys
        from datetime import UTC, datetime, timedelta
        from pathlib import Path
        from terminald.store.audit import AuditEntry, AuditLog
        log = AuditLog(Path({str(path)!r}))
        at = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
        for i in range({rows}):
            log.append(AuditEntry(at + timedelta(seconds=i), "gate-1", "rex", None, None,
                                  None, f"row {{i}}"))
        assert log.flush(30)
        if {checkpoint_after}:  # the rows into the main file, then more into the WAL
            import sqlite3
            sqlite3.connect({str(path)!r}).execute("PRAGMA wal_checkpoint(TRUNCATE)")
            for i in range(5):
                log.append(AuditEntry(at, "gate-1", "rex", None, None, None, "after"))
            assert log.flush(30)
        print("committed", flush=True)
        sys.stdin.read()
        """
    )
    child = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "committed"
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert Path(f"{path}-wal").stat().st_size > 0, "the kill should leave a hot WAL"


def count(path: Path) -> int:
    reader = AuditReader(path)
    try:
        return len(reader)
    finally:
        reader.close()


def test_after_kill_9_the_committed_rows_are_kept_and_new_ones_follow(tmp_path: Path) -> None:
    path = tmp_path / "audit.sqlite"
    killed_writer(path)
    log = AuditLog(path)
    log.append(row(ROWS))
    assert log.flush(30)
    log.close()
    assert count(path) == ROWS + 1
    assert not list(tmp_path.glob("audit.sqlite.*-*"))  # nothing moved aside


class LockHolder:
    """Another process holding the trail's write lock (BEGIN IMMEDIATE) for ``hold_s``."""

    def __init__(self, path: Path, hold_s: float) -> None:
        code = textwrap.dedent(
            f"""
            import sqlite3, time
            db = sqlite3.connect({str(path)!r}, isolation_level=None)
            db.execute("BEGIN IMMEDIATE")
            print("locked", flush=True)
            time.sleep({hold_s})
            db.execute("COMMIT")
            """
        )
        self.child = subprocess.Popen(
            [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True
        )
        assert self.child.stdout is not None
        assert self.child.stdout.readline().strip() == "locked"

    def wait(self) -> None:
        assert self.child.wait(60) == 0


def test_another_process_holding_the_write_lock_for_8_s_loses_no_row(tmp_path: Path) -> None:
    path = tmp_path / "audit.sqlite"
    log = AuditLog(path)
    for i in range(20):
        log.append(row(i))
    assert log.flush(30)
    holder = LockHolder(path, 8.0)  # longer than SQLite's default 5 s busy timeout
    for i in range(20, 50):  # the loop's appends: queued, never waiting for the lock
        log.append(row(i))
    wait_for(lambda: log.problem is not None, "the writer to report the lock")
    assert "locked" in (log.problem or "")
    assert log.pending > 0
    holder.wait()
    assert log.flush(30)
    assert log.problem is None
    log.close()
    assert [e.detail for e in AuditReader(path).recent(100)] == [f"row {i}" for i in range(50)]
    assert not list(tmp_path.glob("audit.sqlite.*-*"))


def test_a_full_queue_drops_rows_and_a_gap_record_says_how_many(tmp_path: Path) -> None:
    path = tmp_path / "audit.sqlite"
    log = AuditLog(path, queue_rows=10)
    assert log.flush(30)
    holder = LockHolder(path, 3.0)
    for i in range(25):
        log.append(row(i))
    assert log.pending == 25  # 10 queued, 15 counted into the gap
    holder.wait()
    assert log.flush(30)
    log.append(row(25))
    assert log.flush(30)
    log.close()
    rows = AuditReader(path).recent(100)
    assert [e.detail for e in rows[:10]] == [f"row {i}" for i in range(10)]
    gap = rows[10]
    assert gap.kind == "gap"
    assert gap.at == row(10).at
    assert gap.detail.startswith(f"15 rows lost from {row(10).at.isoformat()} to ")
    assert row(24).at.isoformat() in gap.detail
    assert [e.detail for e in rows[11:]] == ["row 25"]


def corrupt_beside_its_wal(path: Path) -> bytes:
    """A killed writer's trail whose main file SQLite's quick_check finds corrupt, with
    committed rows in its WAL; returns the WAL's bytes."""
    killed_writer(path, checkpoint_after=True)
    probe = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    (page,) = probe.execute("SELECT rootpage FROM sqlite_master WHERE name = 'certificates'")
    probe.close()
    # A page only the main file holds (no row since touched it, so it is not in the WAL,
    # which would otherwise mask it).
    with path.open("r+b") as handle:
        handle.seek((page[0] - 1) * 4096)
        handle.write(b"\xff" * 4096)
    return Path(f"{path}-wal").read_bytes()


def test_a_corrupt_file_is_moved_aside_with_its_wal(tmp_path: Path) -> None:
    path = tmp_path / "audit.sqlite"
    wal = corrupt_beside_its_wal(path)
    log = AuditLog(path)
    log.append(row(99))
    assert log.flush(30)
    log.close()
    (aside,) = tmp_path.glob("audit.sqlite.corrupt-*")
    assert (aside / "audit.sqlite-wal").read_bytes() == wal  # kept, for whoever investigates
    assert [e.detail for e in AuditReader(path).recent()] == ["row 99"]


def test_a_file_sqlite_finds_sound_is_never_moved_aside(tmp_path: Path) -> None:
    """Errors that are not corruption (here: a missing directory) are waited out."""
    path = tmp_path / "state" / "audit.sqlite"
    log = AuditLog(path)
    log.append(row(0))
    wait_for(lambda: log.problem is not None, "the writer to report the missing directory")
    assert log.pending == 1
    path.parent.mkdir()
    assert log.flush(30)
    log.close()
    assert count(path) == 1


def test_readers_never_create_rename_or_write(tmp_path: Path) -> None:
    path = tmp_path / "audit.sqlite"
    log = AuditLog(path)
    for i in range(5):
        log.append(row(i))
    log.close()  # a clean close checkpoints and removes the WAL
    before = {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in tmp_path.iterdir()}
    assert list(before) == ["audit.sqlite"]
    assert main(["audit", "--db", str(path)]) == 0
    assert len(AuditReader(path).recent()) == 5
    after = {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in tmp_path.iterdir()}
    assert after == before


def test_a_reader_sees_rows_still_in_the_wal_of_a_killed_writer(tmp_path: Path) -> None:
    path = tmp_path / "audit.sqlite"
    killed_writer(path)
    os.unlink(f"{path}-shm")  # a copy taken without it; the reader must not create one
    assert count(path) == ROWS
    assert not Path(f"{path}-shm").exists()


def test_an_unknown_kind_lists_the_valid_kinds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "audit.sqlite"
    log = AuditLog(path)
    log.append(row(0, "granted"))
    log.append(row(1, "vend_done"))  # a kind of a newer daemon is valid where it is present
    log.close()
    assert main(["audit", "--db", str(path), "--kind", "grant"]) == 2
    err = capsys.readouterr().err
    assert "--kind grant: unknown kind; valid kinds: " + ", ".join(KINDS) in err
    assert err.rstrip().endswith("vend_done")
    assert main(["audit", "--db", str(path), "--kind", "vend_done"]) == 0
    assert "row 1" in capsys.readouterr().out


def test_a_damaged_trail_gives_the_reader_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "audit.sqlite"
    path.write_bytes(b"not a database" * 300)
    assert main(["audit", "--db", str(path)]) == 2
    err = capsys.readouterr().err
    assert "file is not a database" in err and "Traceback" not in err
    assert path.read_bytes() == b"not a database" * 300
    assert [p.name for p in tmp_path.iterdir()] == ["audit.sqlite"]


def test_rows_that_cannot_be_written_by_the_stop_are_counted_in_the_log(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    log = AuditLog(tmp_path / "missing" / "audit.sqlite")
    log.append(row(0))
    log.append(row(1))
    log.close()  # the directory never came: the writer gives up after its retries
    assert "event=audit_lost" in caplog.text and "rows=2" in caplog.text
    log.append(row(2))  # after the stop: logged as lost, never raises into the loop
    assert log.pending == 2
