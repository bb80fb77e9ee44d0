"""The back office's cursor into the audit log: pull records by seq, acknowledge them.

A record's ``seq`` is the link's cursor. The link's ``audit.pull`` asks for records after a
cursor (the last seq the back office holds) and ``audit.ack`` moves the acknowledged
mark, kept in the log's own file (table ``link_ack``) so it survives a restart and is
committed with the same durability as the records. The mark never moves back, and an
acknowledgement past the newest seq is clamped to it.

What the mark allows to go, and what goes without it past ``hold``, is
store/audit_evict.py; a pull whose cursor points into evicted records is told the range
it can no longer have.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from terminald.store.audit_chain import newest
from terminald.store.audit_evict import acknowledged
from terminald.store.audit_rows import COLUMNS, AuditEntry, _entry, select_list

_ACK_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS link_ack "
    "(one INTEGER PRIMARY KEY CHECK (one = 1), cursor INTEGER NOT NULL)"
)
_PAGE = (  # our own column names; the values are bound
    f"SELECT {select_list({name for name, _ in COLUMNS})} "  # noqa: S608
    "FROM events LEFT JOIN certificates ON sha256 = cert_sha256 "
    "WHERE seq > ? ORDER BY seq LIMIT ?"
)
SQLITE_MAX = 2**63 - 1
MAX_PAGE = 500  # records per pull: a page of grants with evidence stays under ~1 MB

__all__ = ["MAX_PAGE", "AuditPage", "acknowledged", "ensure_ack_table", "page_after"]


@dataclass(frozen=True)
class AuditPage:
    """Records after a cursor, oldest first, as (seq, entry).

    ``missing``: the range of seqs after the cursor that were evicted before the back
    office had them (first, last), or None. ``last``: the newest seq written (0 when none
    ever was); ``acknowledged``: the mark the back office last set. ``hashes``: each row's
    chain hash, in the order of ``rows`` (the back office keeps the last one it pulled, so
    a later whole-file replacement shows).
    """

    rows: list[tuple[int, AuditEntry]]
    missing: tuple[int, int] | None
    last: int
    acknowledged: int
    hashes: tuple[bytes, ...] = ()


def ensure_ack_table(db: sqlite3.Connection) -> None:
    db.execute(_ACK_SCHEMA)


def page_after(db: sqlite3.Connection, cursor: int, limit: int) -> AuditPage:
    """Up to ``limit`` (≤ MAX_PAGE) records with a seq above ``cursor``."""
    limit = max(1, min(limit, MAX_PAGE))
    first = db.execute("SELECT min(seq) FROM events").fetchone()[0]
    last = newest(db)
    # The link's cursor is a u64; SQLite's integers stop at 2^63 - 1 (no row is above it).
    found = db.execute(_PAGE, (min(cursor, SQLITE_MAX), limit)).fetchall()
    rows = [(int(r[0]), _entry(tuple(r[1:]), r[0])) for r in found]
    hashes = tuple(bytes(r[-1] or b"") for r in found)
    oldest = last + 1 if first is None else int(first)  # every record evicted: none left
    missing = (cursor + 1, oldest - 1) if cursor + 1 < oldest else None
    return AuditPage(rows, missing, last, acknowledged(db), hashes)


def set_acknowledged(db: sqlite3.Connection, cursor: int) -> int:
    """Move the mark forward to ``cursor`` (never back, never past the newest seq).

    Returns the mark now in force."""
    db.execute("BEGIN IMMEDIATE")
    try:
        mark = max(acknowledged(db), min(cursor, newest(db)))
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
