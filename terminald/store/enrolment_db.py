"""The terminal's enrolment: ``<state>/enrolment.sqlite`` (WAL, synchronous=FULL).

Implements :class:`terminald.enrolment.model.Enrolment` for the policies and installs
signed sets (``enrolment/bundle.py``).

Atomicity. An install is one SQLite transaction (``BEGIN IMMEDIATE`` … ``COMMIT``):
after a crash or power loss the database holds the old set or the new one, never a mix
(tests/integration/test_enrolment_kill.py). Lookups read the database itself, so an
install by another process (``terminald enrolment apply``) is seen by the next lookup of
a long-lived store; schedules and the calendar are cached per set and refreshed when
``PRAGMA data_version`` says another connection committed.

Rollback. Besides the version in the database, ``enrolment.sqlite.high`` (the
revocation store's mark, store/high_water.py) keeps the newest version ever installed,
so deleting the database does not let an older, still valid set back in.

Failing closed. An unreadable or damaged database answers ``info() is None`` and
``lookup() is None`` (the policy refuses ``enrolment_unavailable``); :meth:`problem`
says why, and it is logged once, never raised.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Final

from terminald.enrolment.acceptance import (
    resulting_content,
)
from terminald.enrolment.bundle import (
    DEFAULT_MAX_SIZE,
    EnrolmentBundle,
    SetKind,
    open_set,
    parse_header,
)
from terminald.enrolment.codec import (
    decode_calendar,
    decode_person_record,
    decode_schedules,
)
from terminald.enrolment.errors import (
    EnrolmentError,
    EnrolmentFormatError,
    EnrolmentRejected,
    RejectReason,
)
from terminald.enrolment.model import (
    AgeAttestation,
    Calendar,
    Enrolment,
    EnrolmentContent,
    Person,
    SetInfo,
    WeeklySchedule,
)
from terminald.revocation.acceptance import DEFAULT_MAX_CLOCK_SKEW
from terminald.revocation.keys import TrustedKeys
from terminald.store.enrolment_marks import after_install, check_install
from terminald.store.enrolment_rows import (
    SCHEMA_SQL,
    EnrolmentStoreError,
    credentials_of,
    info_of,
    installed_info,
    meta,
    prepare,
    read_content,
    serial_key,
    write_prepared,
)
from terminald.store.high_water import (
    high_water_path,
)

log = logging.getLogger(__name__)

FILE_NAME: Final = "enrolment.sqlite"
SCHEMA: Final = 1
BUSY_TIMEOUT_MS: Final = 10_000
AGE_YES_WAIT_MS: Final = 200


@dataclass(frozen=True)
class _Cached:
    info: SetInfo
    schedules: dict[str, WeeklySchedule]
    calendar: Calendar


class EnrolmentStore:
    """The installed enrolment set in SQLite; every method is safe from any thread (one
    connection per thread). Reads never raise: a damaged database reads as no set."""

    def __init__(self, path: Path, max_clock_skew: timedelta = DEFAULT_MAX_CLOCK_SKEW) -> None:
        self.path = path
        self.high_path = high_water_path(path)
        self._max_clock_skew = max_clock_skew
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()  # the cache and installs
        # The connection list has its own lock: a thread's first connection is made while
        # an install already holds ``_lock`` (a link's bulk thread), which deadlocked.
        self._connections_lock = threading.Lock()
        self._cache: _Cached | None = None
        self._generation = 0  # bumped by our own installs (data_version ignores them)
        self._problem = ""
        try:
            self._create()
        except (sqlite3.Error, OSError) as exc:
            self._report(f"{path}: {exc}")
            return
        # Performance only: read the installed set's header, schedules and calendar now,
        # not at the first tap. The calendar's first decode makes the holidays library
        # import its country modules, 120-190 ms on the benchmark VM and more on a Pi
        # (docs/benchmarks.md, "Policy": "first decision").
        with suppress(_Unreadable):
            self._current()

    # -- connections -------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            return self._connect_new()
        if self._file_id() == self._local.file_id:
            return conn
        # The file was replaced or removed under us (a damaged database moved aside and
        # the set applied again by `enrolment apply`): a connection keeps reading the old
        # inode, so this thread reconnects to what is at the path now, with WAL and the
        # schema (IF NOT EXISTS: a race with the installer is harmless). One stat a call,
        # about 1 µs beside a 30-45 µs lookup.
        with self._connections_lock:
            if conn in self._connections:
                self._connections.remove(conn)
        conn.close()
        self._local.conn = None
        conn = self._connect_new()
        self._create()
        self._local.file_id = self._file_id()
        return conn

    def _file_id(self) -> tuple[int, int] | None:
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return st.st_dev, st.st_ino

    def _connect_new(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
            check_same_thread=False,
        )  # fmt: skip
        self._local.conn = conn
        self._local.seen = (-1, -1)
        self._local.file_id = self._file_id()
        with self._connections_lock:
            self._connections.append(conn)
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        return conn

    def _create(self) -> None:
        """WAL and the schema, taking the write lock only when there is something to do
        (a daemon starting during a long install must not wait for it)."""
        conn = self._connect()
        mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
        if mode != "wal" and conn.execute("PRAGMA journal_mode=WAL").fetchone()[0] != "wal":
            raise sqlite3.OperationalError("the database cannot use write-ahead logging")
        tables = {n for (n,) in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if not {"meta", "person", "credential", "age_yes"} <= tables:
            conn.executescript(f"BEGIN IMMEDIATE; {SCHEMA_SQL} COMMIT;")
            conn.execute("INSERT OR IGNORE INTO meta VALUES ('schema', ?)", (SCHEMA,))
        row = conn.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
        if row is None or row[0] != SCHEMA:
            found = None if row is None else row[0]
            raise sqlite3.DatabaseError(f"schema {found!r}, this version reads {SCHEMA}")

    def close(self) -> None:
        """Close every thread's connection (tests, shutdown)."""
        with self._connections_lock:
            connections, self._connections = self._connections, []
        for conn in connections:
            conn.close()
        self._local = threading.local()

    def problem(self) -> str:
        """Why the store answers nothing ("" when it is readable)."""
        return self._problem

    def _report(self, problem: str) -> None:
        if problem != self._problem:
            log.error("event=enrolment_unavailable path=%s problem=%r", self.path, problem)
        self._problem = problem

    @contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        try:
            yield self._connect()
        except (
            sqlite3.Error,
            OSError,
            EnrolmentError,
            ValueError,
            TypeError,
            OverflowError,
        ) as exc:
            # The last three: a row damaged in a way the decoders do not name.
            self._report(f"{self.path}: {exc}")
            raise _Unreadable from None

    # -- the Enrolment protocol --------------------------------------------------------

    def _current(self) -> _Cached | None:
        """The installed set's header, schedules and calendar, re-read only when another
        connection (or our own install) changed the database."""
        with self._reading() as conn:
            version = conn.execute("PRAGMA data_version").fetchone()[0]
            seen = (version, self._generation)
            cache = self._cache
            if self._local.seen == seen and cache is not None:
                return cache
            rows = meta(conn)
            if "set" not in rows:
                self._problem = ""
                self._local.seen = seen
                return None
            info = info_of(rows["set"])
            if cache is None or cache.info != info:
                cache = _Cached(
                    info, decode_schedules(rows["schedules"]), decode_calendar(rows["calendar"])
                )
                self._cache = cache
            self._local.seen = seen
            self._problem = ""
            return cache

    def info(self) -> SetInfo | None:
        try:
            cached = self._current()
        except _Unreadable:
            return None
        return None if cached is None else cached.info

    def lookup(self, issuer_key_id: bytes, serial: int) -> Person | None:
        """The person, or None when the certificate is not in the set. Raises
        EnrolmentStoreError when the rows cannot be read (reported): None would make the
        policy refuse ``unknown_certificate`` — "relink this card" — for a damaged row;
        it refuses ``enrolment_unavailable`` for an exception (core/policy/engine.py)."""
        try:
            with self._reading() as conn:
                row = conn.execute(
                    "SELECT p.record FROM credential c JOIN person p ON p.subject = c.subject "
                    "WHERE c.issuer = ? AND c.serial = ?",
                    (issuer_key_id, serial_key(serial)),
                ).fetchone()
                return None if row is None else decode_person_record(row[0])
        except _Unreadable:
            raise EnrolmentStoreError(self._problem or f"{self.path}: unreadable") from None

    def schedule(self, name: str) -> WeeklySchedule | None:
        try:
            cached = self._current()
        except _Unreadable:
            return None
        return None if cached is None else cached.schedules.get(name)

    def calendar(self) -> Calendar:
        try:
            cached = self._current()
        except _Unreadable:
            return Calendar()
        return Calendar() if cached is None else cached.calendar

    def age_yes(self, issuer_key_id: bytes, serial: int) -> tuple[AgeAttestation, ...]:
        try:
            with self._reading() as conn:
                rows = conn.execute(
                    "SELECT age, since FROM age_yes WHERE issuer = ? AND serial = ? ORDER BY age",
                    (issuer_key_id, serial_key(serial)),
                ).fetchall()
                return tuple(AgeAttestation(age, date.fromordinal(since)) for age, since in rows)
        except _Unreadable:
            return ()

    def remember_age_yes(self, issuer_key_id: bytes, serial: int, yes: AgeAttestation) -> None:
        """Keep the earliest date for each (certificate, age): "at least N since D" only
        grows truer, so the earliest D is the strongest yes. Never raises (logged).

        Waits at most AGE_YES_WAIT_MS for an install's write lock: it runs on the card
        worker, and a yes not kept is only asked again next time."""
        try:
            conn = self._connect()
            conn.execute(f"PRAGMA busy_timeout={AGE_YES_WAIT_MS}")
            try:
                conn.execute(
                    "INSERT INTO age_yes VALUES (?, ?, ?, ?) ON CONFLICT (issuer, serial, age) "
                    "DO UPDATE SET since = min(since, excluded.since)",
                    (issuer_key_id, serial_key(serial), yes.age, yes.since.toordinal()),
                )
            finally:
                conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
                log.info("event=age_yes_not_kept problem=%r", str(exc))
            else:
                self._report(f"{self.path}: {exc}")
        except (sqlite3.Error, OSError) as exc:
            self._report(f"{self.path}: {exc}")

    def person(self, subject: str) -> tuple[Person, list[tuple[bytes, int]]] | None:
        """A person and their certificates (``enrolment show --subject``); None when the
        subject is not enrolled or the database cannot be read."""
        try:
            with self._reading() as conn:
                row = conn.execute(
                    "SELECT record FROM person WHERE subject = ?", (subject,)
                ).fetchone()
                if row is None:
                    return None
                return decode_person_record(row[0]), credentials_of(conn, subject)
        except _Unreadable:
            return None

    def is_installed(self, bundle: bytes) -> bool:
        """Whether ``bundle`` is the set installed now (same version and content): its
        repeated install is a no-op, not a rollback. Reads the header only."""
        info = self.info()
        try:
            header = parse_header(bundle)
        except EnrolmentError:
            return False
        return (
            info is not None
            and header.version == info.version
            and header.content_digest == info.digest
        )

    # -- whole content -----------------------------------------------------------------

    def content(self) -> EnrolmentContent:
        """The installed set's whole content (an empty one when none is installed).
        EnrolmentStoreError when the database cannot be read."""
        conn = self._connect_or_raise()
        try:
            conn.execute("BEGIN")
            try:
                return read_content(conn, self.path)
            finally:
                conn.execute("COMMIT")
        except sqlite3.Error as exc:
            raise EnrolmentStoreError(f"{self.path}: {exc}") from None

    def _connect_or_raise(self) -> sqlite3.Connection:
        try:
            return self._connect()
        except sqlite3.Error as exc:
            raise EnrolmentStoreError(f"{self.path}: {exc}") from None

    # -- installing --------------------------------------------------------------------

    def install(self, bundle: bytes, trusted: TrustedKeys, now: datetime) -> SetInfo:
        """Verify ``bundle`` against ``trusted``, check it may follow what is installed
        (and the rollback mark) at ``now``, and install it in one transaction.

        Raises EnrolmentRejected (nothing changed) or EnrolmentStoreError (the database
        cannot be written; nothing changed either: the transaction is rolled back)."""
        try:
            opened = open_set(bundle, trusted, DEFAULT_MAX_SIZE)
        except EnrolmentFormatError as exc:
            raise EnrolmentRejected(RejectReason.MALFORMED, str(exc)[:1000]) from None
        header = opened.header
        # Connected before the install lock: a thread that never read the store (the link's
        # bulk worker) makes its first connection here (see ``_connections_lock``).
        conn = self._connect_or_raise()
        with self._lock:
            try:
                info = self._install(conn, opened, now)
            except sqlite3.Error as exc:
                raise EnrolmentStoreError(f"{self.path}: {exc}") from None
            self._generation += 1
        after_install(self.path, self.high_path, header)
        log.info(
            "event=enrolment_installed kind=%s version=%d people=%d credentials=%d",
            header.kind.label, info.version, info.people, info.credentials,
        )  # fmt: skip
        return info

    def _install(self, conn: sqlite3.Connection, opened: EnrolmentBundle, now: datetime) -> SetInfo:
        """Check and compute under a read snapshot, then write under the write lock if
        nothing was installed meanwhile. The heavy part (a delta re-digests the whole
        content) so holds no write lock: ``remember_age_yes`` waits only for the writes."""
        header = opened.header
        for _ in range(3):
            conn.execute("BEGIN")
            try:
                current = installed_info(conn)
                check_install(current, header, now, self._max_clock_skew, self.high_path)
                base = read_content(conn, self.path) if header.kind == SetKind.DELTA else None
            finally:
                conn.execute("COMMIT")
            prepared = prepare(header, opened.content, resulting_content(opened, base))
            conn.execute("BEGIN IMMEDIATE")
            try:
                if installed_info(conn) != current:  # another process installed meanwhile
                    conn.execute("ROLLBACK")
                    continue
                info = write_prepared(conn, prepared)
                conn.execute("COMMIT")
                return info
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        raise EnrolmentStoreError(f"{self.path}: other installs kept coming; try again")


if TYPE_CHECKING:  # the store is what the policies read

    def _conforms(store: EnrolmentStore) -> Enrolment:
        return store


class _Unreadable(Exception):
    """Internal: a read failed (already reported)."""
