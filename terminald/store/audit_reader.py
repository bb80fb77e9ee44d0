"""Reading the audit trail without ever creating, renaming or writing it (``terminald audit``)."""

from __future__ import annotations

import logging
import shutil
import sqlite3
import tempfile
from pathlib import Path

from terminald.store.audit_rows import (
    _SELECT,
    BUSY_TIMEOUT_S,
    SCHEMA_VERSION,
    AuditEntry,
    AuditError,
    _companions,
    _entry,
    _uri,
)

logger = logging.getLogger("terminald.store.audit")


class AuditReader:
    """The trail, read-only: never creates, renames or writes the trail or its WAL.

    With both ``-wal`` and ``-shm`` present (the daemon runs, or was killed) it opens with
    ``mode=ro`` and reads through the shared index like any reader. With no ``-wal`` the
    main file holds every row and is opened ``immutable=1`` (a WAL-mode ``mode=ro`` open
    would create ``-wal`` and ``-shm``). A ``-wal`` it cannot read in place (no ``-shm``,
    or a read-only copy in a read-only directory: SQLite needs to write an index,
    https://www.sqlite.org/wal.html#readonly) is read from a private temporary copy of the
    file and its WAL, so committed rows in the WAL are shown, not lost.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        wal, shm = _companions(path)
        try:
            if not path.is_file():
                raise AuditError(f"no audit trail at {path}")
            path.open("rb").close()  # a file this user may not read: say so, plainly
            if not wal.exists():
                self._db = self._open(_uri(path, mode="ro", immutable="1"))
            else:
                try:
                    if not shm.exists():
                        raise sqlite3.OperationalError("no -shm beside the WAL")
                    self._db = self._open(_uri(path, mode="ro"))
                except sqlite3.Error:
                    self._db = self._open_copy()
        except sqlite3.Error as exc:
            self._cleanup()
            raise AuditError(f"audit log {path}: {exc}") from exc
        except OSError as exc:
            self._cleanup()
            raise AuditError(f"audit log {path}: {exc.strerror or exc}") from exc

    @staticmethod
    def _open(uri: str) -> sqlite3.Connection:
        db = sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_S)
        try:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise sqlite3.DatabaseError(f"schema version {version}, newer than this tool")
            db.execute("SELECT count(*) FROM events").fetchone()
        except BaseException:
            db.close()
            raise
        return db

    def _select(self) -> str:
        # A version 1 trail the daemon has not migrated yet: no issuer column to read.
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(events)")}
        return _SELECT if "issuer" in columns else _SELECT.replace("issuer FROM", "NULL FROM")

    def _open_copy(self) -> sqlite3.Connection:
        self._tmp = tempfile.TemporaryDirectory(prefix="terminald-audit-")
        copy = Path(self._tmp.name) / self.path.name
        wal, _ = _companions(self.path)
        shutil.copyfile(self.path, copy)
        shutil.copyfile(wal, Path(f"{copy}-wal"))
        return self._open(_uri(copy, mode="ro"))

    def _cleanup(self) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def recent(self, limit: int = 50, kind: str | None = None) -> list[AuditEntry]:
        """The newest ``limit`` rows (of ``kind``), oldest first."""
        try:
            rows = self._db.execute(self._select(), (kind, limit)).fetchall()
        except sqlite3.Error as exc:
            raise AuditError(f"audit log {self.path}: {exc}") from exc
        return [_entry(row) for row in reversed(rows)]

    def kinds(self) -> set[str]:
        """The kinds present in the file."""
        try:
            return {str(r[0]) for r in self._db.execute("SELECT DISTINCT kind FROM events")}
        except sqlite3.Error as exc:
            raise AuditError(f"audit log {self.path}: {exc}") from exc

    def __len__(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM events").fetchone()[0])

    def close(self) -> None:
        self._db.close()
        self._cleanup()
