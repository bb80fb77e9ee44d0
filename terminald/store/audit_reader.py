"""Reading the audit log without ever creating, renaming or writing it (``terminald audit``,
``audit export``, ``attendance export``, ``audit_verify``)."""

from __future__ import annotations

import contextlib
import logging
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from terminald.store.audit_rows import (
    BUSY_TIMEOUT_S,
    SCHEMA_VERSION,
    AuditEntry,
    AuditError,
    _companions,
    _entry,
    _uri,
    select_list,
    stored_time,
)

_FROM = " FROM events LEFT JOIN certificates ON sha256 = cert_sha256"
_PAGE_ROWS = 512  # rows fetched per query while streaming: memory stays bounded


@dataclass(frozen=True)
class StoredRecord:
    """One record as read back: its seq, the entry, its chain hash (None before version 3)."""

    seq: int
    entry: AuditEntry
    hash: bytes | None


def _columns(db: sqlite3.Connection) -> set[str]:
    return {str(row[1]) for row in db.execute("PRAGMA table_info(events)")}


def newest_rows(db: sqlite3.Connection, limit: int, kind: str | None) -> list[AuditEntry]:
    """The newest ``limit`` rows (of ``kind``), oldest first, from any schema version."""
    present = _columns(db)
    seq = "seq" if "seq" in present else "id"
    found = db.execute(
        f"SELECT {select_list(present)}{_FROM} WHERE ?1 IS NULL OR kind = ?1 "
        f"ORDER BY {seq} DESC LIMIT ?2",
        (kind, limit),
    ).fetchall()
    return [_entry(tuple(r[1:]), r[0]) for r in reversed(found)]


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

    @property
    def connection(self) -> sqlite3.Connection:
        """The read-only connection (``audit_verify`` reads the stored values through it)."""
        return self._db

    @property
    def version(self) -> int:
        return int(self._db.execute("PRAGMA user_version").fetchone()[0])

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
            return newest_rows(self._db, limit, kind)
        except (sqlite3.Error, AuditError) as exc:
            raise AuditError(f"audit log {self.path}: {exc}") from exc

    def records(
        self,
        *,
        since_seq: int | None = None,
        since: datetime | None = None,
        kind: str | None = None,
    ) -> Iterator[StoredRecord]:
        """Every record (seq ≥ ``since_seq``, at ≥ ``since``, of ``kind``), oldest first,
        fetched in pages so memory stays bounded. Raises AuditError for the file."""
        present = _columns(self._db)
        seq = "seq" if "seq" in present else "id"
        after = (since_seq - 1) if since_seq is not None else -1
        at = stored_time(since) if since is not None else None
        query = (
            f"SELECT {select_list(present)}{_FROM} WHERE {seq} > ?1 "
            "AND (?2 IS NULL OR kind = ?2) AND (?3 IS NULL OR at >= ?3) "
            f"ORDER BY {seq} LIMIT {_PAGE_ROWS}"
        )
        try:
            self._db.execute("BEGIN")  # one snapshot while the daemon appends and evicts
        except sqlite3.Error as exc:
            raise AuditError(f"audit log {self.path}: {exc}") from exc
        try:
            yield from self._pages(query, after, kind, at)
        finally:
            # A consumer that failed may have closed the reader before this generator
            # is collected: nothing is left to end then.
            with contextlib.suppress(sqlite3.ProgrammingError):
                if self._db.in_transaction:
                    self._db.execute("COMMIT")

    def _pages(
        self, query: str, after: int, kind: str | None, at: str | None
    ) -> Iterator[StoredRecord]:
        while True:
            try:
                rows = self._db.execute(query, (after, kind, at)).fetchall()
            except sqlite3.Error as exc:
                raise AuditError(f"audit log {self.path}: {exc}") from exc
            if not rows:
                return
            for r in rows:
                try:
                    entry = _entry(tuple(r[1:]), r[0])
                except AuditError as exc:
                    raise AuditError(f"audit log {self.path}: {exc}") from None
                yield StoredRecord(int(r[0]), entry, None if r[-1] is None else bytes(r[-1]))
            after = int(rows[-1][0])

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
