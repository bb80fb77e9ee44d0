"""The audit trail in SQLite, and ``terminald audit``."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from terminald.cli import main
from terminald.store.audit import AuditEntry, AuditLog

AT = datetime(2026, 11, 24, 9, 0, 0, 123456, tzinfo=UTC)
ROOT = bytes.fromhex("1ac100f596a3bc8c4b3df195e32699249e9e308a")
OTHER = bytes.fromhex("9567951b5ca70d84a0fff1d85a87f1aab1340385")
BIG = 2**70  # beyond SQLite's 64-bit integers


def entry(kind: str = "granted", serial: int | None = 4660, **kw: object) -> AuditEntry:
    kw.setdefault("issuer_key_id", ROOT if serial is not None else None)
    return AuditEntry(AT, "gate-1", kind, "ok" if kind == "granted" else None, serial, **kw)  # type: ignore[arg-type]


def test_rows_round_trip_oldest_first(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.sqlite")
    log.append(entry(label="front desk"))
    log.append(AuditEntry(AT, "gate-1", "refused", "pin_wrong", BIG, None, "wrong PIN"))
    log.append(entry("alarm", None, detail="forced_open raised"))
    rows = log.recent()
    assert [r.kind for r in rows] == ["granted", "refused", "alarm"]
    assert rows[0] == entry(label="front desk")
    assert rows[1].serial == BIG
    assert [r.kind for r in log.recent(kind="refused")] == ["refused"]
    assert [r.kind for r in log.recent(limit=1)] == ["alarm"]
    log.close()
    # Survives a reopen (it is on disk, not in memory).
    assert len(AuditLog(tmp_path / "audit.sqlite")) == 3


def test_the_trail_is_trimmed_to_keep_in_whole_chunks(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.sqlite", keep=150)
    for i in range(2500):
        log.append(entry(serial=i))
    assert log.flush(30)
    log.trim()
    # Chunks 1-1024 and 1025-2048 lie wholly beyond the newest 150; 2049-3072 does not.
    assert len(log) == 2500 - 2048
    assert log.recent(limit=1)[0].serial == 2499  # the newest are kept
    assert log.page(0, 1).rows[0][0] == 2049


def test_a_corrupt_file_is_moved_aside_and_a_new_trail_started(tmp_path: Path) -> None:
    path = tmp_path / "audit.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    log = AuditLog(path)
    log.append(entry())
    assert log.flush(30)
    assert len(log) == 1
    (aside,) = tmp_path.glob("audit.sqlite.corrupt-*")
    assert (aside / "audit.sqlite").read_bytes().startswith(b"this is not a database")


def test_a_trail_of_another_schema_is_not_written_into(tmp_path: Path) -> None:
    path = tmp_path / "audit.sqlite"
    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version=99")
    db.close()
    log = AuditLog(path)
    log.append(entry())
    assert log.flush(30)
    (aside,) = tmp_path.glob("audit.sqlite.schema-99-*")
    assert (aside / "audit.sqlite").is_file()


def test_rows_carry_the_issuer_so_twins_are_two_people(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.sqlite")
    log.append(entry(label="alice"))
    log.append(entry(label="bob", issuer_key_id=OTHER))
    alice, bob = log.recent()
    assert (alice.issuer_key_id, alice.serial, alice.label) == (ROOT, 4660, "alice")
    assert (bob.issuer_key_id, bob.serial, bob.label) == (OTHER, 4660, "bob")


def _version_1_trail(path: Path) -> None:
    """A trail as the first release wrote it: schema version 1, no issuer column."""
    db = sqlite3.connect(path)
    db.executescript(
        """
        CREATE TABLE events (
            id INTEGER PRIMARY KEY, at TEXT NOT NULL, terminal TEXT NOT NULL,
            kind TEXT NOT NULL, reason TEXT, serial TEXT, label TEXT,
            detail TEXT NOT NULL DEFAULT '', challenge BLOB, signature BLOB, cert_sha256 BLOB
        );
        CREATE TABLE certificates (sha256 BLOB PRIMARY KEY, der BLOB NOT NULL);
        PRAGMA user_version=1;
        """
    )
    db.execute(
        "INSERT INTO events (at, terminal, kind, reason, serial, label) VALUES "
        "(?, 'gate-1', 'granted', 'ok', '4660', 'old row')",
        (AT.isoformat(),),
    )
    db.commit()
    db.close()


def test_a_version_1_trail_is_migrated_in_place_and_keeps_its_rows(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "audit.sqlite"
    _version_1_trail(path)
    assert main(["audit", "--db", str(path)]) == 0  # a reader reads it as it is
    assert "issuer unknown serial 4660  old row" in capsys.readouterr().out
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == 1  # and leaves it so
    db.close()
    log = AuditLog(path)
    log.append(entry(label="new row"))
    old, new = log.recent()
    assert (old.serial, old.label, old.issuer_key_id) == (4660, "old row", None)
    assert (new.serial, new.label, new.issuer_key_id) == (4660, "new row", ROOT)
    log.close()
    assert not list(tmp_path.glob("audit.sqlite.corrupt-*"))  # migrated, not moved aside
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == 3
    db.close()
    assert len(AuditLog(path)) == 2  # and opens again as version 3
    from terminald.store.audit_verify import verify

    assert verify(path).ok  # the old row was chained in place
    assert main(["audit", "--db", str(path)]) == 0
    out = capsys.readouterr().out
    assert "issuer unknown serial 4660  old row" in out
    assert f"issuer {ROOT.hex()} serial 4660  new row" in out


def test_a_migration_cut_short_is_completed_on_the_next_open(tmp_path: Path) -> None:
    path = tmp_path / "audit.sqlite"
    _version_1_trail(path)
    db = sqlite3.connect(path)
    db.execute("ALTER TABLE events ADD COLUMN issuer TEXT")  # then power failed
    db.commit()
    db.close()
    log = AuditLog(path)
    log.append(entry())
    assert [r.issuer_key_id for r in log.recent()] == [None, ROOT]


def test_the_cli_reads_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "audit.sqlite"
    log = AuditLog(path)
    log.append(entry(label="front desk"))
    log.append(
        AuditEntry(AT, "gate-1", "refused", "not_enrolled", 4660, None, "not enrolled", None, OTHER)
    )
    log.append(AuditEntry(AT, "gate-1", "refused", "unknown_issuer", 77, None, "no root"))
    log.append(entry("rex", None, detail="request to exit"))
    log.close()
    assert main(["audit", "--db", str(path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        f"2026-11-24 09:00:00  granted  ok  issuer {ROOT.hex()} serial 4660  front desk  ",
        f"2026-11-24 09:00:00  refused  not_enrolled  issuer {OTHER.hex()} serial 4660  -  "
        "not enrolled",
        "2026-11-24 09:00:00  refused  unknown_issuer  issuer unknown serial 77  -  no root",
        "2026-11-24 09:00:00  rex  -  -  -  request to exit",
    ]
    assert main(["audit", "--db", str(path), "--json", "--kind", "refused"]) == 0
    first, second = (json.loads(line) for line in capsys.readouterr().out.splitlines())
    assert (first["reason"], first["issuer"], first["serial"]) == (
        "not_enrolled",
        OTHER.hex(),
        4660,
    )
    assert second["issuer"] is None
    assert main(["audit", "--db", str(tmp_path / "none.sqlite")]) == 2
    assert "no audit trail" in capsys.readouterr().err


def _signed(message: bytes) -> tuple[bytes, bytes]:
    """A throwaway RSA key's self-signed certificate (DER) and its signature of ``message``."""
    from datetime import timedelta

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding, rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "audit test")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(4660)
        .not_valid_before(AT)
        .not_valid_after(AT + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    signature = key.sign(message, padding.PKCS1v15(), hashes.SHA256())
    return cert.public_bytes(serialization.Encoding.DER), signature


def test_a_grants_evidence_is_kept_and_can_be_checked_later(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "audit.sqlite"
    log = AuditLog(path, keep=1000)
    der, signature = _signed(b"challenge-1")
    for _ in range(3):  # the same card three times: its certificate is stored once
        log.append(entry(evidence=(b"challenge-1", signature, der)))
    log.append(entry(evidence=(b"challenge-2", signature, der)))  # not what was signed
    log.append(entry("granted", 5))  # a grant recorded without evidence
    assert log.flush(30)
    rows = log.recent()
    assert rows[0].evidence == (b"challenge-1", signature, der)
    db = sqlite3.connect(path)
    assert db.execute("SELECT count(*) FROM certificates").fetchone() == (1,)
    assert main(["audit", "--db", str(path), "--verify"]) == 0
    verdicts = [line.rsplit("[", 1)[1] for line in capsys.readouterr().out.splitlines()]
    assert verdicts == ["evidence valid]"] * 3 + ["evidence INVALID]", "no evidence]"]
    log.close()
    # Once no row refers to a certificate, trimming drops it too.
    small = AuditLog(path, keep=1)
    for i in range(2048):
        small.append(entry("refused", i))
    small.trim()  # rows 1-1024 (the grants among them) go
    assert db.execute("SELECT count(*) FROM certificates").fetchone() == (0,)
