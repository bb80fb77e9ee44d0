"""``terminald audit verify``, ``audit export`` and ``attendance export``."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest

from terminald.cli import main
from terminald.store.audit import AuditEntry, AuditLog
from tests.unit.audit_support import AT, card, grant, refusal

AUDIT_HEADER = (
    "seq,time,terminal,location,kind,reason,clock_trusted,issuer,serial,subject,label,"
    "detail,attrs,pin_verified,certificate_sha256,hash"
)


def clock(event: str, minutes: int, subject: str = "E1001", **kw: object) -> AuditEntry:
    return AuditEntry(
        AT + timedelta(minutes=minutes),
        "clock-1",
        "attendance",
        "ok",
        4660,
        "Sato Hanako",
        issuer_key_id=bytes.fromhex("1ac1"),
        subject=subject,
        attrs=(("attendance", event), ("door", "closed")),
        location="lobby",
        **kw,  # type: ignore[arg-type]
    )


@pytest.fixture
def path(tmp_path: Path) -> Path:
    path = tmp_path / "audit.sqlite"
    log = AuditLog(path)
    log.append(clock("clock_in", 0))
    log.append(refusal(2))
    log.append(grant(b"c-3"))
    log.append(clock("break_out", 240, clock_trusted=False))
    log.append(clock("clock_out", 540, subject="E1002"))
    assert log.flush(30)
    log.close()
    return path


def out(capsys: pytest.CaptureFixture[str]) -> str:
    return capsys.readouterr().out


def test_audit_export_csv_has_the_fixed_header_and_every_field(
    path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["audit", "export", "--file", str(path), "--format", "csv"]) == 0
    text = out(capsys)
    assert text.splitlines()[0] == AUDIT_HEADER
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["seq"] for r in rows] == ["1", "2", "3", "4", "5"]
    first = rows[0]
    assert (first["kind"], first["location"], first["subject"], first["clock_trusted"]) == (
        "attendance",
        "lobby",
        "E1001",
        "true",
    )
    assert first["attrs"] == '{"attendance":"clock_in","door":"closed"}'
    assert len(first["hash"]) == 64
    assert rows[2]["pin_verified"] == "true" and len(rows[2]["certificate_sha256"]) == 64
    assert rows[3]["clock_trusted"] == "false"
    assert "challenge" not in first  # the raw evidence only when asked


def test_audit_export_jsonl_since_kind_evidence_to_a_file(
    path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "out.jsonl"
    argv = ["audit", "export", "--file", str(path), "--format", "jsonl", "--since", "3"]
    assert main([*argv, "--evidence", "-o", str(target)]) == 0
    rows = [json.loads(line) for line in target.read_text().splitlines()]
    assert [r["seq"] for r in rows] == [3, 4, 5]
    assert rows[0]["challenge"] == b"c-3".hex()
    assert bytes.fromhex(rows[0]["certificate"]) == card().der
    assert rows[1]["challenge"] is None and rows[1]["attrs"]["attendance"] == "break_out"
    since = (AT + timedelta(minutes=200)).isoformat()
    assert main(["audit", "export", "--file", str(path), "--format", "jsonl",
                 "--since", since, "--kind", "attendance"]) == 0  # fmt: skip
    assert [json.loads(line)["seq"] for line in out(capsys).splitlines()] == [4, 5]


def test_audit_export_refuses_a_bad_since_without_writing(
    path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "out.csv"
    argv = ["audit", "export", "--file", str(path), "--format", "csv", "-o", str(target)]
    assert main([*argv, "--since", "yesterday"]) == 2
    assert "--since 'yesterday': not a seq or an ISO 8601 time" in capsys.readouterr().err
    assert not target.exists() and list(tmp_path.glob(".out.csv.*")) == []
    assert main(["audit", "export", "--file", str(tmp_path / "none"), "--format", "csv"]) == 2


def test_attendance_export_has_fixed_columns(
    path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["attendance", "export", "--file", str(path), "--format", "csv"]) == 0
    assert out(capsys).splitlines() == [
        "time,terminal,subject,event,issuer,serial,clock_trusted",
        "2026-11-24T09:00:00+00:00,clock-1,E1001,clock_in,1ac1,4660,true",
        "2026-11-24T13:00:00+00:00,clock-1,E1001,break_out,1ac1,4660,false",
        "2026-11-24T18:00:00+00:00,clock-1,E1002,clock_out,1ac1,4660,true",
    ]
    argv = ["attendance", "export", "--file", str(path), "--format", "jsonl"]
    assert main([*argv, "--since", "2026-11-24T22:00+09:00"]) == 0  # 13:00 UTC on
    rows = [json.loads(line) for line in out(capsys).splitlines()]
    assert [(r["subject"], r["event"]) for r in rows] == [
        ("E1001", "break_out"),
        ("E1002", "clock_out"),
    ]
    assert list(rows[0]) == ["time", "terminal", "subject", "event", "issuer", "serial",
                             "clock_trusted"]  # fmt: skip
    assert main([*argv, "--since", "3"]) == 2  # a seq is not a time here


def test_audit_verify_exit_codes(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["audit", "verify", "--file", str(path)]) == 0
    assert "verified: clean" in out(capsys)
    db = sqlite3.connect(path)
    db.execute("UPDATE events SET subject = 'E9999' WHERE seq = 5")
    db.commit()
    db.close()
    assert main(["audit", "verify", "--file", str(path)]) == 1
    assert "PROBLEM seq 5: hash does not match its contents (altered)" in out(capsys)
    assert main(["audit", "verify", "--file", str(path), "--json"]) == 1
    report = json.loads(out(capsys))
    assert report["problems"] == [
        {"seq": 5, "problem": "hash does not match its contents (altered)"}
    ]
    assert main(["audit", "verify", "--file", str(path.with_name("none"))]) == 2
    path.with_name("junk.sqlite").write_bytes(b"not a database" * 100)
    assert main(["audit", "verify", "--file", str(path.with_name("junk.sqlite"))]) == 2


def test_the_listing_still_works_beside_the_subcommands(
    path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["audit", "--db", str(path), "--limit", "2", "--kind", "attendance"]) == 0
    lines = out(capsys).splitlines()
    assert len(lines) == 2 and all("attendance" in line for line in lines)
