"""The audit log's schema (version 3) and the migration of older files in place.

A version 1 or 2 file (no chain) is migrated when the writer first opens it, in ONE
transaction: the sequence column renamed ``id`` → ``seq``, the new columns added with
their defaults (location '', clock_trusted 1, subject NULL, attrs '{}', pin_verified 0),
and every old row chained in seq order from GENESIS, the anchor set to just before the
oldest row. A cut anywhere leaves the old file as it was (SQLite's transaction), and the
next open starts again. The old rows are chained as found: the chain proves they were
not changed after the migration, not before it.
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

from terminald.store.audit_aside import move_aside
from terminald.store.audit_chain import (
    ANCHOR_SCHEMA,
    GENESIS,
    HASHED,
    record_hash,
    set_anchor,
)
from terminald.store.audit_rows import (
    BUSY_TIMEOUT_S,
    SCHEMA_VERSION,
    _says_corrupt,
    _uri,
    _Wait,
)

logger = logging.getLogger("terminald.store.audit")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq      INTEGER PRIMARY KEY,  -- monotonic, never reused (see audit_chain.head)
    at       TEXT NOT NULL,        -- UTC, ISO 8601 with microseconds
    terminal TEXT NOT NULL,
    kind     TEXT NOT NULL,
    reason   TEXT,
    serial   TEXT,                 -- decimal: serials can exceed SQLite's 64-bit integers
    label    TEXT,
    detail   TEXT NOT NULL DEFAULT '',
    -- a grant's evidence: the challenge message the card signed, its signature, and the
    -- SHA-256 of its certificate (the DER is kept once, in certificates)
    challenge BLOB,
    signature BLOB,
    cert_sha256 BLOB,
    issuer   TEXT,                 -- the issuing root's key id, hex
    location TEXT NOT NULL DEFAULT '',
    clock_trusted INTEGER NOT NULL DEFAULT 1,
    subject  TEXT,
    attrs    TEXT NOT NULL DEFAULT '{}',  -- canonical JSON, str -> str
    pin_verified INTEGER NOT NULL DEFAULT 0,
    prev     BLOB,                 -- the previous record's hash
    hash     BLOB                  -- SHA-256(prev || encoding), store/audit_chain.py
);
CREATE TABLE IF NOT EXISTS certificates (
    sha256 BLOB PRIMARY KEY,
    der    BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS events_kind ON events (kind, seq);
"""

# Columns added since version 1, with their declarations.
_ADDED = (
    ("issuer", "TEXT"),
    ("location", "TEXT NOT NULL DEFAULT ''"),
    ("clock_trusted", "INTEGER NOT NULL DEFAULT 1"),
    ("subject", "TEXT"),
    ("attrs", "TEXT NOT NULL DEFAULT '{}'"),
    ("pin_verified", "INTEGER NOT NULL DEFAULT 0"),
    ("prev", "BLOB"),
    ("hash", "BLOB"),
)


def open_for_writing(path: Path) -> sqlite3.Connection:
    """The writer's connection (creating the file if absent), WAL, synchronous=FULL, at
    SCHEMA_VERSION (migrating an older file). A file of a newer schema is moved aside
    (store/audit_aside.py). Raises _Wait when it cannot be opened now."""
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
        # FULL: a commit is on the disk before flush() returns or the link acknowledges.
        db.execute("PRAGMA synchronous=FULL")
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            db.close()
            move_aside(path, f"schema-{version}", f"schema version {version}")
            raise _Wait(f"moved aside a trail of schema version {version}")
        if version != SCHEMA_VERSION:  # only a version change writes here
            prepare(db, version)
        db.execute("SELECT count(*) FROM events").fetchone()
    except sqlite3.Error as exc:
        db.close()
        raise _Wait(f"cannot open: {exc}", corrupt=_says_corrupt(exc)) from exc
    return db


def columns(db: sqlite3.Connection) -> set[str]:
    return {str(row[1]) for row in db.execute("PRAGMA table_info(events)")}


def prepare(db: sqlite3.Connection, version: int) -> None:
    """Bring a file of schema ``version`` (0: new) to SCHEMA_VERSION in one transaction.

    ``db`` is in autocommit mode (isolation_level None)."""
    db.execute("BEGIN IMMEDIATE")
    try:
        had_events = "seq" in columns(db) or "id" in columns(db)
        if had_events and version < SCHEMA_VERSION:
            _migrate(db)
        # One statement at a time: executescript would COMMIT the open transaction.
        for statement in _SCHEMA.split(";"):
            if statement.strip():
                db.execute(statement)
        db.execute(ANCHOR_SCHEMA)
        db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise


def _migrate(db: sqlite3.Connection) -> None:
    present = columns(db)
    if "seq" not in present:
        db.execute("ALTER TABLE events RENAME COLUMN id TO seq")
    for name, declaration in _ADDED:
        if name not in present:
            db.execute(f"ALTER TABLE events ADD COLUMN {name} {declaration}")
    db.execute(ANCHOR_SCHEMA)
    first = db.execute("SELECT min(seq) FROM events").fetchone()[0]
    names = ", ".join(HASHED)  # our own names; values are bound
    select = f"SELECT {names} FROM events WHERE seq > ? ORDER BY seq LIMIT 1024"  # noqa: S608
    prev, after, count = GENESIS, -1, 0
    while True:  # in pages: memory stays bounded however many rows the file holds
        rows = db.execute(select, (after,)).fetchall()
        if not rows:
            break
        for values in rows:
            digest = record_hash(prev, values)
            db.execute(
                "UPDATE events SET prev = ?, hash = ? WHERE seq = ?", (prev, digest, values[0])
            )
            prev = digest
        after = int(rows[-1][0])
        count += len(rows)
    set_anchor(db, max(int(first or 1) - 1, 0), GENESIS)
    logger.info("audit log: chained %d rows of an older schema (now version 3)", count)
