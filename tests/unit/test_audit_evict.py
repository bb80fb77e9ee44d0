"""Eviction as a property: whatever the order of appends, acknowledgements and passes,
only whole chunks go, acknowledged ones unless the log passed ``hold``, a forced eviction
leaves a gap record naming exactly what went, and the chain verifies from the anchor."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from terminald.store.audit_chain import GENESIS, HASHED, anchor, append_chained, record_hash
from terminald.store.audit_cursor import ensure_ack_table, set_acknowledged
from terminald.store.audit_evict import CHUNK, acknowledged, chunk_end, evict
from terminald.store.audit_rows import AuditEntry, attrs_of
from terminald.store.audit_schema import prepare

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)

operations = st.lists(
    st.one_of(
        st.tuples(st.just("append"), st.integers(1, 900)),
        st.tuples(st.just("ack"), st.floats(0.0, 1.2)),
        st.tuples(st.just("evict"), st.just(0.0)),
    ),
    max_size=25,
)


def span(db: sqlite3.Connection) -> tuple[int | None, int | None]:
    first = db.execute("SELECT min(seq) FROM events").fetchone()[0]
    last = db.execute("SELECT max(seq) FROM events").fetchone()[0]
    return first, last


def chain_verifies(db: sqlite3.Connection) -> None:
    seq, prev = anchor(db)
    for row in db.execute(f"SELECT {', '.join(HASHED)}, prev, hash FROM events ORDER BY seq"):
        assert row[0] == seq + 1, "seqs contiguous from the anchor"
        assert row[-2] == prev and row[-1] == record_hash(prev, row[: len(HASHED)])
        seq, prev = row[0], row[-1]


@settings(max_examples=60, deadline=None)
@given(
    keep=st.sampled_from([1, 300, 1500]),
    factor=st.sampled_from([None, 1, 2, 4]),
    ops=operations,
)
def test_eviction_keeps_its_promises(
    keep: int, factor: int | None, ops: list[tuple[str, float]]
) -> None:
    hold = None if factor is None else keep * factor
    db = sqlite3.connect(":memory:", isolation_level=None)
    prepare(db, 0)
    ensure_ack_table(db)
    written = 0
    for op, value in ops:
        first, newest = span(db)
        if op == "append":
            db.execute("BEGIN")
            rows = append_chained(
                db, [AuditEntry(NOW, "gate-1", "rex", detail=str(i)) for i in range(int(value))]
            )
            db.execute("COMMIT")
            assert rows[0][0] == max(newest or 0, anchor(db)[0]) + 1  # never reused
            written += len(rows)
            continue
        if op == "ack":
            if newest is not None:
                set_acknowledged(db, int(value * newest))
            continue
        mark = acknowledged(db) if hold is not None else (newest or 0)
        before_anchor = anchor(db)[0]
        # The newest gap record's seq, not a count: a forced eviction may take an older
        # gap record with the chunk it sat in.
        gaps_before = db.execute("SELECT max(seq) FROM events WHERE kind = 'gap'").fetchone()[0]
        forced = evict(db, keep=keep, hold=hold, max_age_days=0, now=NOW, terminal="gate-1")
        after_anchor = anchor(db)[0]
        assert after_anchor % CHUNK == 0 or after_anchor == before_anchor, "whole chunks only"
        gaps = db.execute(
            "SELECT attrs, seq FROM events WHERE kind = 'gap' ORDER BY seq DESC"
        ).fetchall()
        if forced:
            assert gaps and gaps[0][1] > (gaps_before or 0), "a new gap record"
            named = dict(attrs_of(gaps[0][0]))
            assert first is not None
            low = max(mark + 1, first)
            assert named == {
                "count": str(after_anchor - low + 1),
                "first": str(low),
                "last": str(after_anchor),
            }
            assert forced == after_anchor - low + 1
            assert newest is not None and newest - first + 1 > (hold or 0)
        else:
            # No new gap record (an old one may have gone with an acknowledged chunk).
            assert (gaps[0][1] if gaps else None) in (gaps_before, None)
            assert after_anchor <= max(mark, before_anchor), "nothing unacknowledged went"
        first, newest = span(db)
        if first is not None and newest is not None:
            # Nothing evictable is left: the oldest chunk is not wholly acknowledged and
            # beyond keep, and (with a link) the log is within hold or cannot shed a chunk.
            mark = acknowledged(db) if hold is not None else newest
            end = chunk_end(first)
            assert not (end <= mark and end <= newest - keep)
            if hold is not None and newest - first + 1 > hold:
                # The gap record just written may itself tip one more chunk past keep:
                # it goes at the next pass (every ~100 appends), not in this one.
                assert end > newest - keep - (1 if forced else 0)
        chain_verifies(db)
    assert anchor(db)[1] != GENESIS or anchor(db)[0] == 0
