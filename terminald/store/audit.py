"""The audit trail: every decision, exit, alarm and mode change, in SQLite.

``state/audit.sqlite``, one row per event: when (UTC), which terminal, what kind
(``granted``, ``refused``, ``rex``, ``alarm``, ``mode``, ``door_opened``...), the reason
code, the certificate's identity (issuer key id and serial: serials are unique per
issuer only) and the enrolled label. Never a PIN, never the My Number.

Schema version 2 added ``issuer``; a version 1 file is migrated in place when opened
(one ``ALTER TABLE``; its old rows keep ``issuer`` NULL, shown as unknown).

SQLite in WAL mode with ``synchronous=NORMAL``: each batch of rows is one transaction, so
a power cut loses at most the last rows, never the file's consistency, and ``terminald
audit`` can read while the daemon writes. The table is trimmed to ``keep`` rows so an
unattended terminal never fills its SD card.

Writing (``AuditLog``): ``append`` only puts the row in a bounded memory queue and
returns; one writer thread owns the file. So the daemon's event loop never waits on the
disk, on SQLite's busy timeout or on a retry. When the file cannot be written (locked by
another process, read-only, disk full, directory missing) the rows stay queued and the
writer tries again with a growing pause (0.1 s doubling to 2 s); nothing is renamed or
deleted. The queue holds ``QUEUE_ROWS`` rows: if it is full, further rows are counted, not
kept, and a ``gap`` row records how many were lost and between which times.

Only a file that SQLite itself reports corrupt (``PRAGMA quick_check``, or the error codes
SQLITE_CORRUPT / SQLITE_NOTADB) is moved aside, together with its ``-wal`` and ``-shm``,
into the directory ``audit.sqlite.corrupt-<time>/``; a trail of a newer schema goes to
``audit.sqlite.schema-<n>-<time>/`` the same way. Then a new trail is started.

Reading (``AuditReader``, ``terminald audit``): read-only, never creates, renames or writes
the trail (see its docstring for the read-only-copy case).
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import logging
import os
import shutil
import sqlite3
import tempfile
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

logger = logging.getLogger(__name__)

AUDIT_NAME = "audit.sqlite"
SCHEMA_VERSION = 2
_TRIM_EVERY = 100  # rows between trims: one DELETE per hundred inserts

# The memory queue's bound, in rows. A row is ~200 bytes, a grant with its evidence up to
# ~2 KB (a 1.6 KB certificate, 256-byte signature, challenge), so 4096 rows cost at most
# ~8 MB, which even a 512 MB Pi Zero 2 can spare; at a busy gate (a tap every 3 s) it rides
# out over three hours of an unwritable file, time for someone to free the disk.
QUEUE_ROWS = 4096
BUSY_TIMEOUT_S = 1.0  # the writer's SQLite busy timeout: it runs off the loop, so it may wait
RETRY_FIRST_S = 0.1
RETRY_MAX_S = 2.0
_BATCH = 256  # rows per transaction when catching up
CLOSE_WAIT_S = 3.0  # at shutdown, the queue's last chance to reach the file

# The kinds the daemon writes (core/terminal.py, core/door.py, daemon/service.py) and the
# writer's own ``gap``. ``terminald audit --kind`` checks against these and the file's own.
KINDS = (
    "granted",
    "refused",
    "rex",
    "door_opened",
    "door_closed",
    "alarm",
    "mode",
    "revocation",
    "gap",
)

# https://www.sqlite.org/rescode.html: the primary code is the low byte.
_CORRUPT_CODES = frozenset({sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB})

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id       INTEGER PRIMARY KEY,
    at       TEXT NOT NULL,     -- UTC, ISO 8601 with microseconds
    terminal TEXT NOT NULL,
    kind     TEXT NOT NULL,
    reason   TEXT,
    serial   TEXT,              -- decimal: serials can exceed SQLite's 64-bit integers
    label    TEXT,
    detail   TEXT NOT NULL DEFAULT '',
    -- a grant's evidence: the challenge message the card signed, its signature, and the
    -- SHA-256 of its certificate (the DER is kept once, in certificates)
    challenge BLOB,
    signature BLOB,
    cert_sha256 BLOB,
    issuer   TEXT               -- the issuing root's key id, hex (version 2)
);
CREATE TABLE IF NOT EXISTS certificates (
    sha256 BLOB PRIMARY KEY,
    der    BLOB NOT NULL
);
"""

_SELECT = (
    "SELECT at, terminal, kind, reason, serial, label, detail, challenge, signature, "
    "der, issuer FROM events LEFT JOIN certificates ON sha256 = cert_sha256 "
    "WHERE ?1 IS NULL OR kind = ?1 ORDER BY id DESC LIMIT ?2"
)


class AuditError(Exception):
    pass


@dataclass(frozen=True)
class AuditEntry:
    at: datetime
    terminal: str
    kind: str
    reason: str | None = None
    serial: int | None = None
    label: str | None = None
    detail: str = ""
    # A grant's evidence: (challenge message, signature, certificate DER).
    evidence: tuple[bytes, bytes, bytes] | None = field(default=None, repr=False)
    # With ``serial``, the certificate's identity; None when no trusted root vouched for it.
    issuer_key_id: bytes | None = None

    def as_dict(self) -> dict[str, object]:
        return {
            "at": self.at.isoformat(),
            "terminal": self.terminal,
            "kind": self.kind,
            "reason": self.reason,
            "issuer": self.issuer_key_id.hex() if self.issuer_key_id is not None else None,
            "serial": self.serial,
            "label": self.label,
            "detail": self.detail,
            "evidence": self.evidence is not None,
        }


@dataclass
class _Gap:
    """Rows dropped while the queue was full: how many, from when to when."""

    terminal: str
    first: datetime
    last: datetime
    count: int = 1

    def entry(self, bound: int) -> AuditEntry:
        return AuditEntry(
            self.first,
            self.terminal,
            "gap",
            None,
            None,
            None,
            f"{self.count} rows lost from {self.first.astimezone(UTC).isoformat()} to "
            f"{self.last.astimezone(UTC).isoformat()}: the file could not be written and "
            f"the memory queue ({bound} rows) was full",
        )


class _Wait(Exception):
    """The file cannot be written now; the rows stay queued."""


def _code(exc: sqlite3.Error) -> int | None:
    code = getattr(exc, "sqlite_errorcode", None)
    return None if code is None else int(code) & 0xFF


def _says_corrupt(exc: sqlite3.Error) -> bool:
    return _code(exc) in _CORRUPT_CODES


def _uri(path: Path, **params: str) -> str:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return f"file:{quote(str(path.absolute()))}?{query}"


def _companions(path: Path) -> tuple[Path, Path]:
    return Path(f"{path}-wal"), Path(f"{path}-shm")


class AuditLog:
    """The daemon's writer. ``append`` never blocks on I/O and never raises for the file.

    ``pending`` is how many rows are waiting for the file; ``problem`` why (None while
    the file is writable); ``flush`` waits (off the loop) until the queue is written.
    """

    def __init__(self, path: Path, keep: int = 100_000, *, queue_rows: int = QUEUE_ROWS) -> None:
        if keep < 1:
            raise ValueError("keep must be >= 1")
        if queue_rows < 2:
            raise ValueError("queue_rows must be >= 2")
        self.path = path
        self.keep = keep
        self.queue_rows = queue_rows
        self._since_trim = 0
        # _cond guards the queue only (append takes it for microseconds); _io serialises
        # every use of the connection, which only the writer thread and readers of this
        # object (tests, tools: never the loop) take.
        self._cond = threading.Condition()
        self._io = threading.Lock()
        self._pending: deque[AuditEntry] = deque()
        self._gap: _Gap | None = None
        self._closing = False
        self._close_by = 0.0  # monotonic time until which close() lets the writer retry
        self._checked = False  # quick_check passed once in this process
        self._db: sqlite3.Connection | None = None
        self._settled = False  # the writer's last pass ended with the queue in the file
        self.problem: str | None = None
        self._thread = threading.Thread(target=self._run, name="audit-writer", daemon=True)
        self._thread.start()

    # -- the loop's side: never waits ------------------------------------------------------

    def append(self, entry: AuditEntry) -> None:
        """Queue one row for the writer. A full queue counts the row into a gap record."""
        with self._cond:
            if self._closing:
                logger.error("event=audit_lost rows=1 problem=%s", "appended after close")
                return
            room = self.queue_rows - len(self._pending)
            if self._gap is not None:
                if room >= 2:  # the gap record first, so the trail says where rows are missing
                    self._pending.append(self._gap.entry(self.queue_rows))
                    self._pending.append(entry)
                    self._gap = None
                else:
                    self._gap.count += 1
                    self._gap.last = entry.at
            elif room >= 1:
                self._pending.append(entry)
            else:
                self._gap = _Gap(entry.terminal, entry.at, entry.at)
                logger.error(
                    "event=audit_dropping file=%s queue=%d problem=%r",
                    self.path,
                    self.queue_rows,
                    self.problem,
                )
            self._cond.notify_all()

    @property
    def pending(self) -> int:
        with self._cond:
            return len(self._pending) + (self._gap.count if self._gap else 0)

    # -- the writer thread -------------------------------------------------------------------

    def _run(self) -> None:
        delay = RETRY_FIRST_S
        while True:
            with self._cond:
                while self._db is not None and not self._pending and not self._closing:
                    self._cond.wait()
                closing = self._closing
            try:
                with self._io:
                    self._connect()
                    self._write_pending()
            except _Wait as exc:
                if self.problem is None:
                    logger.error(
                        "event=audit_waiting file=%s problem=%r pending=%d",
                        self.path,
                        str(exc),
                        self.pending,
                    )
                self.problem = str(exc)
                with self._cond:
                    self._settled = False
                    if closing and time.monotonic() < self._close_by:
                        self._cond.wait(min(delay, self._close_by - time.monotonic()))
                        delay = min(delay * 2, RETRY_MAX_S)
                        continue
                    if closing:
                        lost = len(self._pending) + (self._gap.count if self._gap else 0)
                        if lost:
                            logger.error(
                                "event=audit_lost file=%s rows=%d problem=%r",
                                self.path,
                                lost,
                                str(exc),
                            )
                        self._cond.notify_all()
                        return
                    self._cond.wait(delay)  # an append or close wakes it sooner
                delay = min(delay * 2, RETRY_MAX_S)
                continue
            except Exception:  # a bug must not silently stop the trail: log, retry
                logger.exception("event=audit_writer_failed file=%s", self.path)
                with self._cond:
                    if closing:
                        return
                    self._cond.wait(RETRY_MAX_S)
                continue
            if self.problem is not None:
                logger.info("event=audit_recovered file=%s", self.path)
            self.problem = None
            delay = RETRY_FIRST_S
            with self._cond:
                self._settled = not self._pending and self._gap is None
                self._cond.notify_all()  # flush() waiters
                if closing and not self._pending:
                    return

    def _connect(self) -> None:
        """Open the trail for writing (creating it if absent); _Wait if it cannot be now."""
        if self._db is not None:
            return
        path = self.path
        if not self._checked and path.exists():
            self._check_or_move_aside()
        try:
            db = sqlite3.connect(
                _uri(path, mode="rwc"),
                uri=True,
                isolation_level=None,
                check_same_thread=False,
                timeout=BUSY_TIMEOUT_S,
            )
        except sqlite3.Error as exc:
            raise _Wait(f"cannot open: {exc}") from exc
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                db.close()
                self._move_aside(f"schema-{version}", f"schema version {version}")
                raise _Wait(f"moved aside a trail of schema version {version}")
            if version != SCHEMA_VERSION:  # only a version change writes here
                db.executescript(_SCHEMA)
                _migrate(db)
                db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            db.execute("SELECT count(*) FROM events").fetchone()
        except sqlite3.Error as exc:
            db.close()
            if _says_corrupt(exc):
                self._checked = False  # let quick_check confirm before anything moves
            raise _Wait(f"cannot open: {exc}") from exc
        self._checked = True
        self._db = db

    def _check_or_move_aside(self) -> None:
        """quick_check through a read-only connection (which never checkpoints, so the
        WAL stays as it is); move the file aside only if SQLite says it is corrupt."""
        try:
            probe = sqlite3.connect(_uri(self.path, mode="ro"), uri=True, timeout=BUSY_TIMEOUT_S)
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
            self._move_aside("corrupt", verdict)
        self._checked = True

    def _move_aside(self, label: str, why: str) -> None:
        """The file with its -wal and -shm into one new directory; the WAL first, so a cut
        can never leave a new trail beside the old trail's WAL."""
        path = self.path
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

    def _write_pending(self) -> None:
        db = self._db
        assert db is not None
        while True:
            with self._cond:
                batch = list(itertools.islice(self._pending, _BATCH))
            if not batch:
                return
            try:
                db.execute("BEGIN IMMEDIATE")
                for entry in batch:
                    _insert(db, entry)
                db.execute("COMMIT")
            except sqlite3.Error as exc:
                with contextlib.suppress(sqlite3.Error):
                    if db.in_transaction:
                        db.execute("ROLLBACK")
                # Reopen next time: a read-only or vanished file needs a new connection.
                db.close()
                self._db = None
                if _says_corrupt(exc):
                    self._checked = False
                raise _Wait(str(exc)) from exc
            with self._cond:
                for _ in batch:
                    self._pending.popleft()
                if self._gap is not None:  # room again: say where rows went missing
                    self._pending.append(self._gap.entry(self.queue_rows))
                    self._gap = None
            self._since_trim += len(batch)
            if self._since_trim >= _TRIM_EVERY:
                self._since_trim = 0
                try:
                    _trim(db, self.keep)
                except sqlite3.Error as exc:  # the rows are in; trimming can wait
                    logger.warning("event=audit_trim_failed file=%s problem=%r", self.path, exc)

    # -- callers off the loop --------------------------------------------------------------

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every queued row is in the file; False if ``timeout`` came first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._pending or self._gap is not None or not self._settled:
                if not self._thread.is_alive():
                    return False
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def _try_connect(self) -> None:
        """For callers off the loop: connect now rather than wait for the writer's turn."""
        with contextlib.suppress(_Wait):
            self._connect()

    def trim(self) -> None:
        self.flush(CLOSE_WAIT_S)
        with self._io:
            self._try_connect()
            if self._db is None:
                raise AuditError(f"audit log {self.path}: {self.problem or 'not open'}")
            _trim(self._db, self.keep)

    def recent(self, limit: int = 50, kind: str | None = None) -> list[AuditEntry]:
        """The newest ``limit`` rows (of ``kind``), oldest first, queued rows included."""
        with self._io:
            self._try_connect()
            rows: list[AuditEntry] = []
            if self._db is not None:
                found = self._db.execute(_SELECT, (kind, limit)).fetchall()
                rows = [_entry(r) for r in reversed(found)]
            with self._cond:
                queued = [e for e in self._pending if kind is None or e.kind == kind]
        return (rows + queued)[-limit:]

    def __len__(self) -> int:
        with self._io:
            self._try_connect()
            written = 0
            if self._db is not None:
                written = int(self._db.execute("SELECT count(*) FROM events").fetchone()[0])
            return written + self.pending

    def close(self) -> None:
        """Write what is queued (for at most about CLOSE_WAIT_S), then stop the writer."""
        with self._cond:
            self._closing = True
            self._close_by = time.monotonic() + CLOSE_WAIT_S
            self._cond.notify_all()
        self._thread.join(CLOSE_WAIT_S + 2 * BUSY_TIMEOUT_S)
        if self._io.acquire(timeout=BUSY_TIMEOUT_S):
            try:
                if self._db is not None:
                    self._db.close()
                    self._db = None
            finally:
                self._io.release()


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


def _insert(db: sqlite3.Connection, entry: AuditEntry) -> None:
    challenge = signature = digest = None
    if entry.evidence is not None:
        challenge, signature, der = entry.evidence
        digest = hashlib.sha256(der).digest()
        db.execute(
            "INSERT OR IGNORE INTO certificates (sha256, der) VALUES (?, ?)",
            (digest, der),
        )
    db.execute(
        "INSERT INTO events (at, terminal, kind, reason, issuer, serial, label, detail, "
        "challenge, signature, cert_sha256) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            entry.at.astimezone(UTC).isoformat(),
            entry.terminal,
            entry.kind,
            entry.reason,
            None if entry.issuer_key_id is None else entry.issuer_key_id.hex(),
            None if entry.serial is None else str(entry.serial),
            entry.label,
            entry.detail,
            challenge,
            signature,
            digest,
        ),
    )


def _trim(db: sqlite3.Connection, keep: int) -> None:
    db.execute("BEGIN IMMEDIATE")
    try:
        db.execute("DELETE FROM events WHERE id <= (SELECT max(id) FROM events) - ?", (keep,))
        db.execute(
            "DELETE FROM certificates WHERE sha256 NOT IN "
            "(SELECT cert_sha256 FROM events WHERE cert_sha256 IS NOT NULL)"
        )
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _migrate(db: sqlite3.Connection) -> None:
    """Version 1 → 2: add ``issuer``. Idempotent: a cut between the ALTER and the
    version update leaves a file this completes on the next open."""
    columns = {row[1] for row in db.execute("PRAGMA table_info(events)")}
    if "issuer" not in columns:
        logger.info("audit log: adding the issuer column (schema version %d)", SCHEMA_VERSION)
        db.execute("ALTER TABLE events ADD COLUMN issuer TEXT")


def _entry(row: tuple[Any, ...]) -> AuditEntry:
    at, terminal, kind, reason, serial, label, detail, challenge, signature, der, issuer = row
    evidence = (challenge, signature, der) if challenge and signature and der else None
    return AuditEntry(
        datetime.fromisoformat(at),
        terminal,
        kind,
        reason,
        None if serial is None else int(serial),
        label,
        detail,
        evidence,
        None if issuer is None else bytes.fromhex(issuer),
    )
