"""Moving a corrupt audit trail aside, with its WAL, so a new one can start (store/audit.py)."""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import time
from pathlib import Path

from terminald.store.audit_rows import (
    BUSY_TIMEOUT_S,
    _companions,
    _fsync_dir,
    _says_corrupt,
    _uri,
    _Wait,
)

logger = logging.getLogger("terminald.store.audit")


def check_or_move_aside(path: Path) -> None:
    """quick_check through a read-only connection (which never checkpoints, so the
    WAL stays as it is); move the file aside only if SQLite says it is corrupt."""
    try:
        probe = sqlite3.connect(_uri(path, mode="ro"), uri=True, timeout=BUSY_TIMEOUT_S)
    except sqlite3.Error as exc:
        raise _Wait(f"cannot open: {exc}") from exc
    try:
        rows = probe.execute("PRAGMA quick_check").fetchall()
        verdict = "; ".join(str(r[0]) for r in rows)
    except sqlite3.Error as exc:
        if not _says_corrupt(exc):
            raise _Wait(f"cannot check: {exc}") from exc
        verdict = str(exc)
    finally:
        probe.close()
    if verdict != "ok":
        move_aside(path, "corrupt", verdict)


def move_aside(path: Path, label: str, why: str) -> None:
    """The file with its -wal and -shm into one new directory; the WAL first, so a cut
    can never leave a new trail beside the old trail's WAL."""
    stamp = time.strftime("%Y%m%dT%H%M%S")
    aside = path.with_name(f"{path.name}.{label}-{stamp}")
    n = 1
    while aside.exists():
        n += 1
        aside = path.with_name(f"{path.name}.{label}-{stamp}-{n}")
    moved: list[Path] = []
    try:
        aside.mkdir()
        for part in (*_companions(path), path):
            if part.exists():
                part.rename(aside / part.name)
                moved.append(part)
        _fsync_dir(aside)
        _fsync_dir(path.parent)
    except OSError as exc:
        # Put back what moved: the file must never stay here without its WAL.
        for part in reversed(moved):
            with contextlib.suppress(OSError):
                (aside / part.name).rename(part)
        with contextlib.suppress(OSError):
            aside.rmdir()
        raise _Wait(f"{why}; cannot move it aside: {exc}") from exc
    logger.error("event=audit_moved_aside file=%s to=%s problem=%r", path, aside, why)
