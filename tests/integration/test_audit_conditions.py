"""The audit trail under real failing conditions: 0 committed rows lost.

Issue 9 §1 saw each of these destroy the trail (the file renamed aside and its WAL
deleted). Here they are made for real inside scripts/sandbox (root, a private mount
namespace): a full disk is a small tmpfs filled up, a read-only file is a read-only bind
mount, another process holds the write lock, and a non-root user reads a read-only copy.
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from terminald.core.hardware import DoorInput
from terminald.sim.pcscd import Pcscd
from terminald.sim.testpki import TestPkiManifest
from terminald.store.audit import AUDIT_NAME, AuditLog, AuditReader
from tests.integration.daemon_rig import gate_config, open_rig
from tests.unit.test_audit_waits import (
    ROWS,
    LockHolder,
    corrupt_beside_its_wal,
    count,
    killed_writer,
    row,
    wait_for,
)

NOBODY = 65534


@pytest.fixture
def sandboxed() -> None:
    if os.environ.get("TERMINALD_SANDBOX") != "1" or os.geteuid() != 0:
        pytest.fail(
            "these tests mount file systems and drop privileges: run them inside "
            "scripts/sandbox (root, a private mount namespace)",
            pytrace=False,
        )


@pytest.fixture
def small_disk(tmp_path: Path, sandboxed: None) -> Iterator[Path]:
    """A 2 MiB tmpfs: a disk that can really be filled."""
    where = tmp_path / "disk"
    where.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(where)], check=True)
    yield where
    subprocess.run(["umount", "-l", str(where)], check=True)


def fill(directory: Path) -> Path:
    """Write until the file system says ENOSPC; the filler's path, to free it again."""
    filler = directory / "filler"
    with filler.open("wb", buffering=0) as handle:
        try:
            while True:
                handle.write(b"\0" * 4096)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    return filler


def aside(directory: Path) -> list[Path]:
    return list(directory.glob(f"{AUDIT_NAME}.*-*"))


def test_kill_9_then_a_full_disk_at_restart_loses_no_row(small_disk: Path) -> None:
    path = small_disk / AUDIT_NAME
    killed_writer(path)
    filler = fill(small_disk)
    log = AuditLog(path)  # the restarted daemon
    for i in range(ROWS, ROWS + 10):
        log.append(row(i))
    wait_for(lambda: log.problem is not None, "the writer to report the full disk")
    assert "full" in (log.problem or "")
    assert log.pending == 10
    assert count(path) == ROWS  # the committed rows are all still there
    assert aside(small_disk) == []
    filler.unlink()
    assert log.flush(30)
    log.close()
    assert [e.detail for e in AuditReader(path).recent(100)] == [
        f"row {i}" for i in range(ROWS + 10)
    ]


def test_kill_9_then_the_file_made_read_only_loses_no_row(tmp_path: Path, sandboxed: None) -> None:
    path = tmp_path / AUDIT_NAME
    killed_writer(path)
    # As root, chmod would not stop the writer; a read-only bind mount does (EROFS).
    subprocess.run(["mount", "--bind", str(path), str(path)], check=True)
    subprocess.run(["mount", "-o", "remount,bind,ro", str(path)], check=True)
    try:
        log = AuditLog(path)
        for i in range(ROWS, ROWS + 10):
            log.append(row(i))
        wait_for(lambda: log.problem is not None, "the writer to report the read-only file")
        assert "readonly" in (log.problem or "")
        assert log.pending == 10
        assert count(path) == ROWS
    finally:
        subprocess.run(["umount", str(path)], check=True)
    assert log.flush(30)
    log.close()
    assert count(path) == ROWS + 10
    assert aside(tmp_path) == []


def test_a_corrupt_file_that_cannot_be_moved_aside_keeps_its_wal(
    tmp_path: Path, sandboxed: None
) -> None:
    path = tmp_path / AUDIT_NAME
    wal = corrupt_beside_its_wal(path)
    # A mount point cannot be renamed (EBUSY): the move fails after the WAL has moved.
    subprocess.run(["mount", "--bind", str(path), str(path)], check=True)
    try:
        log = AuditLog(path)
        log.append(row(99))
        wait_for(lambda: log.problem is not None, "the writer to report the failed move")
        assert "cannot move it aside" in (log.problem or "")
        assert Path(f"{path}-wal").read_bytes() == wal  # put back beside its file
        assert aside(tmp_path) == []
        assert log.pending == 1
    finally:
        subprocess.run(["umount", str(path)], check=True)
    assert log.flush(30)
    log.close()
    (moved,) = aside(tmp_path)
    assert (moved / f"{AUDIT_NAME}-wal").read_bytes() == wal
    assert [e.detail for e in AuditReader(path).recent()] == ["row 99"]


def run_as_nobody(args: list[str]) -> tuple[int, str]:
    """``terminald ARGS`` (the CLI's own main) in a child process running as nobody.

    Forked, not executed: this interpreter's files (under /root) are not nobody's to
    read, so everything the command imports is imported here first."""
    import json  # noqa: F401  (the command's own lazy imports, done before the fork)

    import terminald.config
    import terminald.pki.challenge
    import terminald.store.audit  # noqa: F401
    from terminald.cli import build_parser, main

    build_parser()  # imports every command module

    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: drop root for good, then run the command
        code = 99
        try:
            os.close(read)
            # pytest's capture replaced sys.stdout: the command writes to the pipe instead
            sys.stdout = sys.stderr = os.fdopen(write, "w")
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            code = main(args)
        except BaseException as exc:
            print(f"child: {exc!r}")
        finally:
            sys.stdout.flush()
            os._exit(code)
    os.close(write)
    with os.fdopen(read) as pipe:
        output = pipe.read()
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), output


@pytest.fixture
def shared_dir(sandboxed: None) -> Iterator[Path]:
    """A directory other users may enter (pytest's tmp_path is root's alone)."""
    with tempfile.TemporaryDirectory() as name:
        Path(name).chmod(0o755)
        yield Path(name)


def test_a_non_root_user_reads_a_read_only_copy(shared_dir: Path) -> None:
    live = shared_dir / "live" / AUDIT_NAME
    live.parent.mkdir()
    killed_writer(live)  # the rows are in the WAL, as in a copy of a running terminal's
    copy = shared_dir / "copy"
    copy.mkdir()
    for name in (AUDIT_NAME, f"{AUDIT_NAME}-wal"):
        (copy / name).write_bytes((live.parent / name).read_bytes())
        (copy / name).chmod(0o444)
    copy.chmod(0o555)
    before = sorted((p.name, p.stat().st_mtime_ns) for p in copy.iterdir())
    code, output = run_as_nobody(["audit", "--db", str(copy / AUDIT_NAME), "--limit", "100"])
    assert code == 0, output
    assert output.splitlines()[-1].endswith(f"row {ROWS - 1}")
    assert len(output.splitlines()) == ROWS
    assert sorted((p.name, p.stat().st_mtime_ns) for p in copy.iterdir()) == before
    # A trail this user may not read, or whose directory it may not enter: one line
    # naming the file, exit 2, no traceback.
    (copy / AUDIT_NAME).chmod(0o400)
    code, output = run_as_nobody(["audit", "--db", str(copy / AUDIT_NAME)])
    assert code == 2, output
    assert output.count("\n") == 1 and "Permission denied" in output
    copy.chmod(0o700)
    code, output = run_as_nobody(["audit", "--db", str(copy / AUDIT_NAME)])
    assert code == 2, output
    assert output == f"terminald: cannot read {copy / AUDIT_NAME}: Permission denied\n"


def test_the_daemon_serves_rex_while_another_process_holds_the_audit_lock(
    tmp_path: Path, test_pki: TestPkiManifest, pcscd: Pcscd
) -> None:
    rig = open_rig(gate_config(tmp_path, test_pki, enrolled=[]), test_pki)
    try:
        audit = rig.daemon.audit
        assert audit is not None and audit.flush(30)
        holder = LockHolder(audit.path, 8.0)
        for _ in range(3):  # each exit is served by the loop while the trail is locked
            rig.set_input(DoorInput.REX, True)
            rig.next_record("rex")
            rig.wait_until(lambda: rig.mock.relay_energised(), 5)
            rig.set_input(DoorInput.REX, False)
            rig.wait_until(lambda: not rig.mock.relay_energised(), 5)
        wait_for(lambda: audit.problem is not None, "the writer to report the lock")
        holder.wait()
        assert audit.flush(30)
    finally:
        rig.stop()
    rows = AuditReader(audit.path).recent(100)
    assert [r.kind for r in rows].count("rex") == 3
