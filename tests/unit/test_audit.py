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
BIG = 2**70  # beyond SQLite's 64-bit integers


def entry(kind: str = "granted", serial: int | None = 4660, **kw: object) -> AuditEntry:
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


def test_the_trail_is_trimmed_to_keep(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.sqlite", keep=150)
    for i in range(1000):
        log.append(entry(serial=i))
    assert len(log) <= 150 + 100  # trimmed every 100 rows
    log.trim()
    assert len(log) == 150
    assert log.recent(limit=1)[0].serial == 999  # the newest are kept


def test_a_corrupt_file_is_moved_aside_and_a_new_trail_started(tmp_path: Path) -> None:
    path = tmp_path / "audit.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    log = AuditLog(path)
    log.append(entry())
    assert len(log) == 1
    (aside,) = tmp_path.glob("audit.sqlite.corrupt-*")
    assert aside.read_bytes().startswith(b"this is not a database")


def test_a_trail_of_another_schema_is_not_written_into(tmp_path: Path) -> None:
    path = tmp_path / "audit.sqlite"
    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version=99")
    db.close()
    AuditLog(path).append(entry())
    assert list(tmp_path.glob("audit.sqlite.corrupt-*"))


def test_the_cli_reads_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "audit.sqlite"
    log = AuditLog(path)
    log.append(entry(label="front desk"))
    log.append(AuditEntry(AT, "gate-1", "refused", "not_enrolled", 77, None, "not enrolled"))
    assert main(["audit", "--db", str(path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        "2026-11-24 09:00:00  granted  ok  4660  front desk  ",
        "2026-11-24 09:00:00  refused  not_enrolled  77  -  not enrolled",
    ]
    assert main(["audit", "--db", str(path), "--json", "--kind", "refused"]) == 0
    (line,) = capsys.readouterr().out.splitlines()
    assert json.loads(line)["reason"] == "not_enrolled"
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
    rows = log.recent()
    assert rows[0].evidence == (b"challenge-1", signature, der)
    db = sqlite3.connect(path)
    assert db.execute("SELECT count(*) FROM certificates").fetchone() == (1,)
    assert main(["audit", "--db", str(path), "--verify"]) == 0
    verdicts = [line.rsplit("[", 1)[1] for line in capsys.readouterr().out.splitlines()]
    assert verdicts == ["evidence valid]"] * 3 + ["evidence INVALID]", "no evidence]"]
    # Once no row refers to a certificate, trimming drops it too.
    small = AuditLog(path, keep=1)
    small.trim()
    assert db.execute("SELECT count(*) FROM certificates").fetchone() == (0,)
