"""The back office's cursor into the audit trail: pull rows by sequence number, acknowledge
them, and keep every unacknowledged row until the hard limit.

A row's ``id`` is its sequence number. The link's ``audit.pull`` asks for rows after a
cursor (the last sequence number the back office holds) and ``audit.ack`` moves the
acknowledged mark, kept in the trail's own file (table ``link_ack``) so it survives a
restart and is committed with the same durability as the rows.

Trimming with a link configured: rows beyond ``keep`` go only once acknowledged. If the
back office stays away so long that the unacknowledged rows pass ``hold``, the oldest are
evicted after all (an unattended terminal must not fill its SD card) and a ``gap`` row says
how many and which sequence numbers; a pull whose cursor points into evicted rows is told
the range it can no longer have.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime

from terminald.store.audit_rows import AuditEntry, _entry, _insert

_ACK_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS link_ack "
    "(one INTEGER PRIMARY KEY CHECK (one = 1), cursor INTEGER NOT NULL)"
)
_PAGE = (
    "SELECT id, at, terminal, kind, reason, serial, label, detail, challenge, signature, "
    "der, issuer FROM events LEFT JOIN certificates ON sha256 = cert_sha256 "
    "WHERE id > ? ORDER BY id LIMIT ?"
)
SQLITE_MAX = 2**63 - 1
MAX_PAGE = 500  # rows per pull: a page of grants with evidence stays under ~1 MB


@dataclass(frozen=True)
class AuditPage:
    """Rows after a cursor, oldest first, as (sequence number, entry).

    ``missing``: the range of sequence numbers after the cursor that were evicted before
    the back office had them (first, last), or None. ``last``: the newest sequence number
    in the file (0 when empty); ``acknowledged``: the mark the back office last set.
    """

    rows: list[tuple[int, AuditEntry]]
    missing: tuple[int, int] | None
    last: int
    acknowledged: int


def ensure_ack_table(db: sqlite3.Connection) -> None:
    db.execute(_ACK_SCHEMA)


def acknowledged(db: sqlite3.Connection) -> int:
    row = db.execute("SELECT cursor FROM link_ack WHERE one = 1").fetchone()
    return 0 if row is None else int(row[0])


def page_after(db: sqlite3.Connection, cursor: int, limit: int) -> AuditPage:
    """Up to ``limit`` (≤ MAX_PAGE) rows with a sequence number above ``cursor``."""
    limit = max(1, min(limit, MAX_PAGE))
    first, last = db.execute("SELECT min(id), max(id) FROM events").fetchone()
    # The link's cursor is a u64; SQLite's integers stop at 2^63 - 1 (no row is above it).
    found = db.execute(_PAGE, (min(cursor, SQLITE_MAX), limit)).fetchall()
    rows = [(int(r[0]), _entry(tuple(r[1:]))) for r in found]
    missing = None
    if first is not None and cursor + 1 < first:
        missing = (cursor + 1, int(first) - 1)
    return AuditPage(rows, missing, int(last or 0), acknowledged(db))


def set_acknowledged(db: sqlite3.Connection, cursor: int) -> int:
    """Move the mark forward to ``cursor`` (never back, never past the newest row).

    Returns the mark now in force.
    """
    db.execute("BEGIN IMMEDIATE")
    try:
        newest = int(db.execute("SELECT coalesce(max(id), 0) FROM events").fetchone()[0])
        mark = max(acknowledged(db), min(cursor, newest))
        db.execute(
            "INSERT INTO link_ack (one, cursor) VALUES (1, ?) "
            "ON CONFLICT(one) DO UPDATE SET cursor = excluded.cursor",
            (mark,),
        )
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
    return mark


def trim_held(db: sqlite3.Connection, keep: int, hold: int, terminal: str) -> int:
    """Trim to ``keep`` rows but only through the acknowledged mark; past ``hold`` rows,
    evict the oldest unacknowledged ones too and record a gap. Returns how many
    unacknowledged rows were evicted."""
    db.execute("BEGIN IMMEDIATE")
    try:
        mark = acknowledged(db)
        newest = int(db.execute("SELECT coalesce(max(id), 0) FROM events").fetchone()[0])
        db.execute("DELETE FROM events WHERE id <= ? AND id <= ?", (newest - keep, mark))
        evicted = 0
        count = int(db.execute("SELECT count(*) FROM events").fetchone()[0])
        if count > hold:
            cut = newest - keep  # back down to keep rows, not to the brink of hold
            first = int(db.execute("SELECT min(id) FROM events").fetchone()[0])
            evicted = int(
                db.execute("SELECT count(*) FROM events WHERE id <= ?", (cut,)).fetchone()[0]
            )
            db.execute("DELETE FROM events WHERE id <= ?", (cut,))
            _insert(
                db,
                AuditEntry(
                    datetime.now(UTC),
                    terminal,
                    "gap",
                    None,
                    None,
                    None,
                    f"{evicted} unacknowledged rows evicted (sequence {first} to {cut}): "
                    f"the back office had not pulled them and the trail passed {hold} rows",
                ),
            )
        db.execute(
            "DELETE FROM certificates WHERE sha256 NOT IN "
            "(SELECT cert_sha256 FROM events WHERE cert_sha256 IS NOT NULL)"
        )
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
    return evicted
