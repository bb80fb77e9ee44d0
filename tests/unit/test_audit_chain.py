"""The audit log's hash chain: what ``verify`` finds when a file is edited behind its back,
eviction and the anchor, seqs never reused, a version 2 file chained in place."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from terminald.store.audit import AuditEntry, AuditLog
from terminald.store.audit_chain import GENESIS, HASHED
from terminald.store.audit_verify import verify
from tests.unit.audit_support import AT, card, grant, refusal, trust


def written(path: Path, entries: list[AuditEntry], **kw: object) -> None:
    log = AuditLog(path, **kw)  # type: ignore[arg-type]
    for e in entries:
        log.append(e)
    assert log.flush(30)
    log.close()


def problems(path: Path, **kw: object) -> list[str]:
    return [str(p) for p in verify(path, **kw).problems]  # type: ignore[arg-type]


def edit(path: Path, sql: str, *args: object) -> None:
    db = sqlite3.connect(path)
    db.execute(sql, args)
    db.commit()
    db.close()


@pytest.fixture
def log10(tmp_path: Path) -> Path:
    """Ten records: refusals, a grant with evidence at seq 4, an attendance row."""
    path = tmp_path / "audit.sqlite"
    entries = [refusal(i) for i in range(1, 4)]
    entries.append(grant(b"challenge-4"))
    entries += [refusal(i) for i in range(5, 10)]
    entries.append(
        AuditEntry(
            AT,
            "gate-1",
            "attendance",
            "ok",
            4660,
            subject="E1001",
            attrs=(("attendance", "clock_in"),),
            location="lobby",
        )
    )
    written(path, entries)
    return path


def test_a_log_as_written_verifies_clean_with_its_evidence_and_roots(log10: Path) -> None:
    report = verify(log10, trust())
    assert report.ok, report.problems
    assert (report.records, report.evidence_checked, report.chains_checked) == (10, 1, True)
    assert report.anchor == (0, GENESIS) and report.head[0] == 10


def test_the_new_fields_round_trip(log10: Path) -> None:
    log = AuditLog(log10)
    (row,) = log.recent(kind="attendance")
    assert (row.location, row.subject, row.attrs, row.clock_trusted) == (
        "lobby",
        "E1001",
        (("attendance", "clock_in"),),
        True,
    )
    (g,) = log.recent(kind="granted")
    assert g.pin_verified and g.subject == "E1001"
    log.close()


def test_an_edited_detail_is_named_by_its_seq(log10: Path) -> None:
    edit(log10, "UPDATE events SET detail = 'nothing happened' WHERE seq = 6")
    assert problems(log10) == ["seq 6: hash does not match its contents (altered)"]


def test_an_edit_with_its_hash_recomputed_breaks_the_next_link(log10: Path) -> None:
    from terminald.store.audit_chain import record_hash

    db = sqlite3.connect(log10)
    db.execute("UPDATE events SET detail = 'forged' WHERE seq = 6")
    values = db.execute(f"SELECT {', '.join(HASHED)} FROM events WHERE seq = 6").fetchone()
    prev = db.execute("SELECT prev FROM events WHERE seq = 6").fetchone()[0]
    db.execute("UPDATE events SET hash = ? WHERE seq = 6", (record_hash(prev, values),))
    db.commit()
    db.close()
    assert problems(log10) == ["seq 7: does not chain to the record before it (prev differs)"]


def test_a_deleted_middle_record_is_named(log10: Path) -> None:
    edit(log10, "DELETE FROM events WHERE seq = 5")
    assert problems(log10) == [
        "seq 6: seq 5 missing before it (deleted)",
        "seq 6: does not chain to the record before it (prev differs)",
    ]


def test_swapped_records_are_named(log10: Path) -> None:
    # Swap the contents of seq 2 and 3 (each keeps its seq, prev and hash).
    edit(
        log10,
        "UPDATE events SET detail = CASE seq WHEN 2 THEN 'row 3' ELSE 'row 2' END, "
        "serial = CASE seq WHEN 2 THEN '3' ELSE '2' END WHERE seq IN (2, 3)",
    )
    assert problems(log10) == [
        "seq 2: hash does not match its contents (altered)",
        "seq 3: hash does not match its contents (altered)",
    ]


def test_swapped_seqs_are_named(log10: Path) -> None:
    edit(log10, "UPDATE events SET seq = -seq WHERE seq IN (2, 3)")
    edit(log10, "UPDATE events SET seq = CASE seq WHEN -2 THEN 3 ELSE 2 END WHERE seq < 0")
    found = problems(log10)
    assert "seq 2: hash does not match its contents (altered)" in found
    assert "seq 3: hash does not match its contents (altered)" in found


def test_a_cut_tail_is_not_detectable_by_the_chain_alone(log10: Path) -> None:
    head = verify(log10).head
    edit(log10, "DELETE FROM events WHERE seq > 7")
    report = verify(log10)
    assert report.ok  # documented: only the back office's last pulled hash shows it
    assert report.head[0] == 7 and report.head != head


def test_tampered_evidence_is_named(log10: Path) -> None:
    edit(log10, "UPDATE events SET signature = zeroblob(256) WHERE seq = 4")
    found = problems(log10)
    assert "seq 4: hash does not match its contents (altered)" in found
    assert "seq 4: evidence: the signature does not verify with the certificate's key" in found


def test_a_swapped_certificate_is_named(log10: Path) -> None:
    edit(log10, "UPDATE certificates SET der = ?", card(99).der)
    assert problems(log10) == [
        "seq 4: evidence: the stored certificate is not the one the record names"
    ]


def test_a_certificate_of_an_untrusted_root_is_named_only_with_roots(tmp_path: Path) -> None:
    path = tmp_path / "audit.sqlite"
    stranger = card(7, cn="another root")
    written(
        path,
        [
            AuditEntry(
                AT,
                "gate-1",
                "granted",
                "ok",
                7,
                evidence=stranger.evidence(b"c"),
                issuer_key_id=stranger.issuer,
            )
        ],
    )
    assert problems(path) == []
    assert problems(path, trust=trust()) == [
        "seq 1: evidence: the certificate does not chain to a trusted root"
    ]


def test_every_record_evicted_then_seqs_go_on_from_the_anchor(tmp_path: Path) -> None:
    path = tmp_path / "audit.sqlite"
    old = AT - timedelta(days=400)
    log = AuditLog(path, keep=5000, max_age_days=30)
    for i in range(1024):
        log.append(AuditEntry(old, "gate-1", "rex", detail=str(i)))
    assert log.flush(30)
    log.trim()  # the one chunk is older than 30 days and, without a link, acknowledged
    assert len(log) == 0
    log.append(refusal(1))
    assert log.flush(30)
    page = log.page(0, 10)
    assert [seq for seq, _ in page.rows] == [1025]
    assert page.missing == (1, 1024) and page.last == 1025
    log.close()
    report = verify(path)
    assert report.ok and report.anchor[0] == 1024 and report.head[0] == 1025
    assert page.hashes == (report.head[1],)  # what the back office keeps to compare
    reopened = AuditLog(path)
    assert reopened.acknowledge(10**6) == 1025  # an ack past the newest is clamped
    reopened.close()


def test_age_evicts_only_acknowledged_chunks(tmp_path: Path) -> None:
    path = tmp_path / "audit.sqlite"
    old = datetime.now(UTC) - timedelta(days=100)
    log = AuditLog(path, keep=100_000, hold=400_000, max_age_days=30)
    for i in range(2100):
        log.append(AuditEntry(old, "gate-1", "rex", detail=str(i)))
    assert log.flush(30)
    log.trim()
    assert len(log) == 2100  # old, but nobody acknowledged them
    log.acknowledge(2000)
    log.trim()
    assert log.page(0, 1).rows[0][0] == 1025  # 1025-2048 is not all acknowledged
    log.close()
    assert verify(path).ok


def test_a_forced_eviction_leaves_a_chain_that_verifies(tmp_path: Path) -> None:
    path = tmp_path / "audit.sqlite"
    log = AuditLog(path, keep=1000, hold=2000, terminal="gate-1")
    for i in range(2500):
        log.append(refusal(i))
    assert log.flush(30)
    log.trim()
    log.close()
    report = verify(path)
    assert report.ok, report.problems
    assert report.anchor[0] == 1024


def _version_2_trail(path: Path) -> None:
    """A trail as schema version 2 wrote it (the oldest rows already trimmed)."""
    db = sqlite3.connect(path)
    db.executescript(
        """
        CREATE TABLE events (
            id INTEGER PRIMARY KEY, at TEXT NOT NULL, terminal TEXT NOT NULL,
            kind TEXT NOT NULL, reason TEXT, serial TEXT, label TEXT,
            detail TEXT NOT NULL DEFAULT '', challenge BLOB, signature BLOB, cert_sha256 BLOB,
            issuer TEXT
        );
        CREATE TABLE certificates (sha256 BLOB PRIMARY KEY, der BLOB NOT NULL);
        CREATE TABLE link_ack (one INTEGER PRIMARY KEY CHECK (one = 1), cursor INTEGER NOT NULL);
        INSERT INTO link_ack VALUES (1, 5);
        PRAGMA user_version=2;
        """
    )
    for seq in (5, 6, 7):
        db.execute(
            "INSERT INTO events (id, at, terminal, kind, reason, serial, label, issuer) "
            "VALUES (?, ?, 'gate-1', 'granted', 'ok', '4660', ?, ?)",
            (seq, AT.isoformat(), f"old {seq}", "1ac1"),
        )
    db.commit()
    db.close()


def test_a_version_2_file_is_chained_in_place(tmp_path: Path) -> None:
    path = tmp_path / "audit.sqlite"
    _version_2_trail(path)
    assert problems(path) == [
        "schema version 2: not chained yet (the daemon chains it when it next opens the log)"
    ]
    log = AuditLog(path, keep=1000, hold=4000)
    log.append(refusal(8))
    assert log.flush(30)
    page = log.page(0, 10)
    assert [seq for seq, _ in page.rows] == [5, 6, 7, 8]  # seqs kept, the next follows
    assert [e.label for _, e in page.rows[:3]] == ["old 5", "old 6", "old 7"]
    assert page.acknowledged == 5  # the link's mark survives
    log.close()
    report = verify(path)
    assert report.ok, report.problems
    assert report.anchor == (4, GENESIS)
    assert not list(tmp_path.glob("audit.sqlite.*-*"))  # migrated, not moved aside


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(seq=st.integers(1, 10), column=st.sampled_from(HASHED[1:]), value=st.text(max_size=8))
def test_any_edit_of_a_hashed_field_is_named(
    tmp_path_factory: pytest.TempPathFactory, seq: int, column: str, value: str
) -> None:
    path = tmp_path_factory.mktemp("edit") / "audit.sqlite"
    written(path, [refusal(i, attrs=(("k", str(i)),)) for i in range(1, 11)])
    db = sqlite3.connect(path)
    before = db.execute(f"SELECT {column} FROM events WHERE seq = ?", (seq,)).fetchone()[0]
    db.close()
    if before == value:
        return  # not an edit
    edit(path, f"UPDATE events SET {column} = ? WHERE seq = ?", value, seq)
    assert any(p.startswith(f"seq {seq}:") for p in problems(path))
