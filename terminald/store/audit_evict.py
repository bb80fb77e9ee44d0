"""Eviction: the audit log bounded by count and age, in whole chunks of seqs.

A chunk is the seqs ``c·1024 + 1 … (c+1)·1024``. The oldest chunk goes when all of it is
acknowledged and all of it is beyond the bounds: its last seq is more than ``keep`` below
the newest (count), or its newest record is older than ``max_age_days`` (age; 0 = no age
bound). So the log holds up to ``keep`` + one chunk (+ the rows written between two
passes) acknowledged records.

With a back-office link (``hold`` set) only records up to the link's acknowledged mark
count as acknowledged. When the log still passes ``hold`` records, the oldest chunks go
although unacknowledged, back down to ``keep`` (+ at most one chunk), and a ``gap`` record
(chained like any other) says how many unacknowledged records went and which seqs.
Without a link (``hold`` None) nothing waits for an acknowledgement: every record counts
as acknowledged for eviction.

Each pass is one transaction: the rows, the anchor (the last evicted record's seq and
hash, where ``verify`` starts) and the gap record change together or not at all.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta

from terminald.store.audit_chain import anchor, append_chained, set_anchor
from terminald.store.audit_rows import AuditEntry, stored_time

CHUNK = 1024


def chunk_end(seq: int) -> int:
    """The last seq of the chunk holding ``seq`` (seqs start at 1)."""
    return ((seq - 1) // CHUNK + 1) * CHUNK


def acknowledged(db: sqlite3.Connection) -> int:
    """The link's mark (0 when never set or no link table)."""
    try:
        row = db.execute("SELECT cursor FROM link_ack WHERE one = 1").fetchone()
    except sqlite3.OperationalError:  # no link_ack table yet
        return 0
    return 0 if row is None else int(row[0])


def evict(
    db: sqlite3.Connection,
    *,
    keep: int,
    hold: int | None,
    max_age_days: int,
    now: datetime,
    terminal: str,
    location: str = "",
) -> int:
    """One eviction pass in one transaction. Returns how many unacknowledged records went."""
    db.execute("BEGIN IMMEDIATE")
    try:
        forced = _evict(db, keep, hold, max_age_days, now, terminal, location)
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
    return forced


def _evict(
    db: sqlite3.Connection,
    keep: int,
    hold: int | None,
    max_age_days: int,
    now: datetime,
    terminal: str,
    location: str,
) -> int:
    # Two queries: SQLite answers a lone min() or max() from the index, both together by a
    # full scan (https://www.sqlite.org/optoverview.html#minmax).
    first = db.execute("SELECT min(seq) FROM events").fetchone()[0]
    newest = db.execute("SELECT max(seq) FROM events").fetchone()[0]
    if first is None or newest is None:
        return 0
    # The seqs are contiguous (the chain), so no count(*): a full scan every pass.
    first, newest = int(first), int(newest)
    count = newest - first + 1
    mark = newest if hold is None else acknowledged(db)
    cutoff = stored_time(now - timedelta(days=max_age_days)) if max_age_days > 0 else None
    end = 0  # evict every seq <= end
    chunk = chunk_end(first)
    while chunk <= mark and chunk <= newest:
        beyond_count = chunk <= newest - keep
        beyond_age = False
        if cutoff is not None and not beyond_count:
            youngest = db.execute("SELECT max(at) FROM events WHERE seq <= ?", (chunk,))
            beyond_age = str(youngest.fetchone()[0]) < cutoff
        if not (beyond_count or beyond_age):
            break
        end, chunk = chunk, chunk + CHUNK
    forced = 0
    gap: tuple[int, int, int] | None = None
    if hold is not None:
        left = count - max(end - first + 1, 0)
        if left > hold:  # the back office stayed away too long: unacknowledged go too
            chunk = chunk_end(max(end + 1, first))
            forced_end = end
            while chunk <= newest - keep:
                forced_end, chunk = chunk, chunk + CHUNK
            if forced_end > end:
                low = max(mark + 1, first)
                forced = forced_end - low + 1
                gap = (forced, low, forced_end)
                end = forced_end
    if end == 0:
        return 0
    last = db.execute(
        "SELECT seq, hash FROM events WHERE seq <= ? ORDER BY seq DESC LIMIT 1", (end,)
    ).fetchone()
    if last is not None and int(last[0]) > anchor(db)[0]:
        set_anchor(db, int(last[0]), bytes(last[1]))
    db.execute("DELETE FROM events WHERE seq <= ?", (end,))
    if gap is not None:
        how_many, low, high = gap
        append_chained(
            db,
            [
                AuditEntry(
                    now,
                    terminal,
                    "gap",
                    None,
                    None,
                    None,
                    f"{how_many} unacknowledged records evicted (seq {low} to {high}): the "
                    f"back office had not pulled them and the log passed {hold} records",
                    location=location,
                    attrs=(("count", str(how_many)), ("first", str(low)), ("last", str(high))),
                )
            ],
        )
    db.execute(
        "DELETE FROM certificates WHERE sha256 NOT IN "
        "(SELECT cert_sha256 FROM events WHERE cert_sha256 IS NOT NULL)"
    )
    return forced
