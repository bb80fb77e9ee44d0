"""BREAK2: what an enrolment set can put into a spreadsheet through the exports.

A subject or label is any printable text (docs/enrolment.md), so "=HYPERLINK(...)" or
"=cmd|' /C calc'!A0" passes the enrolment and reaches the audit log; a CSV opened in a
spreadsheet would run it as a formula (CWE-1236). The CSV exports must neutralise it.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta
from pathlib import Path

import pytest

from terminald.cli import main
from terminald.enrolment.source import parse_source_text
from terminald.store.audit import AuditEntry, AuditLog
from tests.unit.audit_support import AT

FORMULAS = ("=cmd|' /C calc'!A0", "+1+1", "-2+3", "@SUM(A1)", "\t=1", "\r=1")


def clock(subject: str, label: str, minutes: int) -> AuditEntry:
    return AuditEntry(
        AT + timedelta(minutes=minutes),
        "=clock-1",
        "attendance",
        "ok",
        4660,
        label,
        "-detail",
        issuer_key_id=bytes.fromhex("1ac1"),
        subject=subject,
        attrs=(("attendance", "clock_in"),),
        location="+lobby",
    )


def test_a_formula_subject_passes_the_enrolment_source() -> None:
    # Why the export must defend: the source format lets it through (printable text).
    text = '[[person]]\nsubject = "=HYPERLINK(\\"http://x\\")"\nlabel = "@evil"\ncards = []\n'
    content = parse_source_text(text)
    assert '=HYPERLINK("http://x")' in content.people


@pytest.fixture
def path(tmp_path: Path) -> Path:
    path = tmp_path / "audit.sqlite"
    log = AuditLog(path)
    for i, formula in enumerate(FORMULAS[:4]):
        log.append(clock(formula, formula, i))
    assert log.flush(30)
    log.close()
    return path


def test_csv_exports_neutralise_formula_cells(
    path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for argv in (["audit", "export"], ["attendance", "export"]):
        assert main([*argv, "--file", str(path), "--format", "csv"]) == 0
        rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))[1:]
        assert rows
        for row in rows:
            for cell in row:
                assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), (argv, cell)
    # The JSON lines keep the values as they are (data, not a spreadsheet).
    assert main(["attendance", "export", "--file", str(path), "--format", "jsonl"]) == 0
    subjects = [json.loads(line)["subject"] for line in capsys.readouterr().out.splitlines()]
    assert subjects == list(FORMULAS[:4])


# -- a damaged record: one line naming it, never a traceback -----------------------------

DAMAGE = {
    "at": "UPDATE events SET at = 'not a time' WHERE seq = 2",
    "serial": "UPDATE events SET serial = 'abc' WHERE seq = 2",
    "serial blob": "UPDATE events SET serial = x'00ff' WHERE seq = 2",
    "issuer": "UPDATE events SET issuer = 'zz' WHERE seq = 2",
    "subject": "UPDATE events SET subject = x'ff' WHERE seq = 2",
}


@pytest.mark.parametrize("sql", DAMAGE.values(), ids=DAMAGE.keys())
def test_exports_name_a_damaged_record_without_a_traceback(
    path: Path, sql: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Found: a record whose stored value no longer decodes (an edited file, a bad
    sector) made ``audit export`` and ``attendance export`` end in a traceback."""
    import sqlite3

    with sqlite3.connect(path) as db:
        db.execute(sql)
    db.close()
    for argv in (
        ["audit", "export", "--format", "csv"],
        ["audit", "export", "--format", "jsonl"],
        ["attendance", "export", "--format", "csv"],
        ["attendance", "export", "--format", "jsonl"],
        ["audit", "--db"],
    ):
        option = [] if argv[-1] == "--db" else ["--file"]
        assert main([*argv, *option, str(path)]) == 2, argv
        err = capsys.readouterr().err
        assert "record 2" in err and "damaged" in err and "Traceback" not in err, err


def test_a_japanese_label_with_an_ideographic_space_is_enrolled() -> None:
    """Found: "佐藤\\u3000花子" (the full-width space Japanese HR systems put between the
    family and given names) was refused as "not printable" (U+3000 is a space separator,
    which str.isprintable rejects), so a set could not be built from such an export.
    A label's spaces are now plain spaces; control and format characters (an RTL
    override) are still refused."""
    text = '[[person]]\nsubject = "E1"\nlabel = "佐藤\\u3000花子\\u00a0様"\ncards = []\n'
    content = parse_source_text(text)
    assert content.people["E1"].label == "佐藤 花子 様"
    from terminald.enrolment.errors import EnrolmentFormatError

    for bad in ("\\u202e", "\\u200d", "\\u0007", "\\u2028"):
        with pytest.raises(EnrolmentFormatError):
            parse_source_text(f'[[person]]\nsubject = "E1"\nlabel = "a{bad}b"\ncards = []\n')
