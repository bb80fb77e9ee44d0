"""The audit log: every decision, exit, alarm and mode change, in SQLite, hash-chained.

``state/audit.sqlite``, one record per event (docs/audit.md): ``seq`` (monotonic, never
reused, the link's pull cursor), when (UTC) and whether the clock was trusted, which
terminal and location, what kind (``granted``, ``refused``, ``attendance``, ``gap``...),
the reason code, the certificate's identity (issuer key id and serial), the subject and
label, attributes, whether the PIN was verified, a grant's evidence, and the hash that
commits to the previous record (store/audit_chain.py). Never a PIN, a My Number or a
birth date.

Schema version 3; a version 1 or 2 file is migrated and chained in place when opened
(store/audit_schema.py).

SQLite in WAL mode with ``synchronous=FULL``: each batch of records is one transaction,
synced before ``flush`` returns, so a record the link has acknowledged survives a power
cut. The log is bounded by count (``keep``) and age (``max_age_days``), evicted in whole
chunks of acknowledged records (store/audit_evict.py).

Writing (``AuditLog``): ``append`` only puts the record in a bounded memory queue and
returns; one writer thread owns the file. So the daemon's event loop never waits on the
disk, on SQLite's busy timeout or on a retry. When the file cannot be written (locked by
another process, read-only, disk full, directory missing) the records stay queued and the
writer tries again with a growing pause (0.1 s doubling to 2 s); nothing is renamed or
deleted. The queue holds ``QUEUE_ROWS`` records: if it is full, further ones are counted,
not kept, and a ``gap`` record says how many were lost and between which times.

Only a file that SQLite itself reports corrupt (``PRAGMA quick_check``, or the error codes
SQLITE_CORRUPT / SQLITE_NOTADB) is moved aside, together with its ``-wal`` and ``-shm``,
into the directory ``audit.sqlite.corrupt-<time>/``; a log of a newer schema goes to
``audit.sqlite.schema-<n>-<time>/`` the same way. Then a new log is started.

Reading (``AuditReader``, ``terminald audit``, ``verify``): read-only, never creates,
renames or writes the log (see its docstring for the read-only-copy case).
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

from terminald.store.audit_aside import check_or_move_aside
from terminald.store.audit_chain import append_chained
from terminald.store.audit_cursor import (
    AuditPage,
    ensure_ack_table,
    page_after,
    set_acknowledged,
)
from terminald.store.audit_evict import evict
from terminald.store.audit_reader import AuditReader, newest_rows
from terminald.store.audit_rows import (
    _BATCH,
    _TRIM_EVERY,
    AUDIT_NAME,
    BUSY_TIMEOUT_S,
    CLOSE_WAIT_S,
    KINDS,
    QUEUE_ROWS,
    RETRY_FIRST_S,
    RETRY_MAX_S,
    AuditEntry,
    AuditError,
    _Gap,
    _says_corrupt,
    _Wait,
)
from terminald.store.audit_schema import open_for_writing

__all__ = ["AUDIT_NAME", "KINDS", "AuditEntry", "AuditError", "AuditLog", "AuditReader"]

logger = logging.getLogger(__name__)
T = TypeVar("T")


class AuditLog:
    """The daemon's writer. ``append`` never blocks on I/O and never raises for the file.

    ``pending`` is how many rows are waiting for the file; ``problem`` why (None while
    the file is writable); ``flush`` waits (off the loop) until the queue is written.
    """

    def __init__(
        self,
        path: Path,
        keep: int = 100_000,
        *,
        queue_rows: int = QUEUE_ROWS,
        hold: int | None = None,
        terminal: str = "",
        max_age_days: int = 0,
        location: str = "",
    ) -> None:
        """``keep``: records kept by count; ``max_age_days``: older acknowledged records go
        (0: no age bound). ``hold``: with a back-office link, records stay until
        acknowledged, up to ``hold`` in all; None: every record counts as acknowledged
        (store/audit_evict.py). ``terminal``/``location`` go into the log's own gap records."""
        if keep < 1:
            raise ValueError("keep must be >= 1")
        if hold is not None and hold < keep:
            raise ValueError("hold must be >= keep")
        if queue_rows < 2:
            raise ValueError("queue_rows must be >= 2")
        if max_age_days < 0:
            raise ValueError("max_age_days must be >= 0")
        self.max_age_days = max_age_days
        self.location = location
        self.path = path
        self.keep = keep
        self.hold = hold
        self.terminal = terminal
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
        # Called on the writer thread with each committed batch as (sequence number, row).
        self.on_written: Callable[[list[tuple[int, AuditEntry]]], None] | None = None
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
                self._gap = _Gap(
                    entry.terminal,
                    entry.at,
                    entry.at,
                    location=entry.location,
                    clock_trusted=entry.clock_trusted,
                )
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
        if not self._checked and self.path.exists():
            check_or_move_aside(self.path)
            self._checked = True
        try:
            self._db = open_for_writing(self.path)
        except _Wait as exc:
            if exc.corrupt:
                self._checked = False  # let quick_check confirm before anything moves
            raise
        self._checked = True

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
                written = append_chained(db, batch)
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
            self._tell_written(written)
            self._since_trim += len(batch)
            if self._since_trim >= _TRIM_EVERY:
                self._since_trim = 0
                try:
                    self._trim_now(db)
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
            self._trim_now(self._db)

    def _tell_written(self, written: list[tuple[int, AuditEntry]]) -> None:
        """Rows now in the file, with their sequence numbers, to ``on_written`` (the link
        offers them to the back office as events). Runs on the writer thread."""
        if self.on_written is None:
            return
        try:
            self.on_written(written)
        except Exception:  # a listener's bug must not stop the trail
            logger.exception("event=audit_listener_failed")

    def _trim_now(self, db: sqlite3.Connection) -> None:
        if self.hold is not None:
            ensure_ack_table(db)
        evicted = evict(
            db,
            keep=self.keep,
            hold=self.hold,
            max_age_days=self.max_age_days,
            now=datetime.now(UTC),
            terminal=self.terminal,
            location=self.location,
        )
        if evicted:
            logger.error("event=audit_unacknowledged_evicted rows=%d", evicted)

    # -- the back office's cursor (the link's thread; never the loop) ----------------------

    def page(self, cursor: int, limit: int) -> AuditPage:
        """Rows written after sequence number ``cursor`` (queued rows come next time)."""
        return self._with_ack_table(lambda db: page_after(db, cursor, limit))

    def acknowledge(self, cursor: int) -> int:
        """The back office holds every row up to ``cursor``: they may now be trimmed."""
        return self._with_ack_table(lambda db: set_acknowledged(db, cursor))

    def _with_ack_table(self, work: Callable[[sqlite3.Connection], T]) -> T:
        with self._io:
            self._try_connect()
            if self._db is None:
                raise AuditError(f"audit log {self.path}: {self.problem or 'not open'}")
            try:
                ensure_ack_table(self._db)
                return work(self._db)
            except sqlite3.Error as exc:
                raise AuditError(f"audit log {self.path}: {exc}") from exc

    def recent(self, limit: int = 50, kind: str | None = None) -> list[AuditEntry]:
        """The newest ``limit`` rows (of ``kind``), oldest first, queued rows included."""
        with self._io:
            self._try_connect()
            rows: list[AuditEntry] = []
            if self._db is not None:
                rows = newest_rows(self._db, limit, kind)
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
