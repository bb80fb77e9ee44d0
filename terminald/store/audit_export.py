"""Exporting the audit log (``terminald audit export``) and its attendance records
(``terminald attendance export``) as CSV or JSON lines, streamed, to a file replaced
atomically or to standard output.

Columns are fixed (a payroll or HR import depends on them; append only):
- audit: ``AUDIT_COLUMNS`` (+ ``EVIDENCE_COLUMNS`` as hex with ``--evidence``);
- attendance: ``time,terminal,subject,event,issuer,serial,clock_trusted`` from the
  ``attendance`` records, ``event`` being the record's ``attendance`` attribute
  (clock_in, clock_out, break_out, break_in).
Times are UTC, ISO 8601. In CSV a boolean is ``true``/``false``, a missing value empty,
``attrs`` its canonical JSON; in JSON lines they are JSON's own.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import os
import sys
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Final, TextIO, cast

from terminald.store.atomic_file import fsync_directory
from terminald.store.audit_reader import StoredRecord
from terminald.store.audit_rows import attrs_json

AUDIT_COLUMNS = (
    "seq",
    "time",
    "terminal",
    "location",
    "kind",
    "reason",
    "clock_trusted",
    "issuer",
    "serial",
    "subject",
    "label",
    "detail",
    "attrs",
    "pin_verified",
    "certificate_sha256",
    "hash",
)
EVIDENCE_COLUMNS = ("challenge", "signature", "certificate")
ATTENDANCE_COLUMNS = ("time", "terminal", "subject", "event", "issuer", "serial", "clock_trusted")
FORMATS = ("csv", "jsonl")

Row = dict[str, object]


def audit_row(record: StoredRecord, *, evidence: bool = False) -> Row:
    """One record as export columns (``attrs`` a dict; JSON-ready)."""
    e = record.entry
    row: Row = {
        "seq": record.seq,
        "time": e.at.isoformat(),
        "terminal": e.terminal,
        "location": e.location,
        "kind": e.kind,
        "reason": e.reason,
        "clock_trusted": e.clock_trusted,
        "issuer": None if e.issuer_key_id is None else e.issuer_key_id.hex(),
        "serial": e.serial,
        "subject": e.subject,
        "label": e.label,
        "detail": e.detail,
        "attrs": dict(e.attrs),
        "pin_verified": e.pin_verified,
        "certificate_sha256": None
        if e.evidence is None
        else hashlib.sha256(e.evidence[2]).hexdigest(),
        "hash": None if record.hash is None else record.hash.hex(),
    }
    if evidence:
        proof = e.evidence
        for name, value in zip(EVIDENCE_COLUMNS, proof or (None, None, None), strict=True):
            row[name] = None if value is None else value.hex()
    return row


def attendance_row(record: StoredRecord) -> Row:
    e = record.entry
    return {
        "time": e.at.isoformat(),
        "terminal": e.terminal,
        "subject": e.subject,
        "event": dict(e.attrs).get("attendance"),
        "issuer": None if e.issuer_key_id is None else e.issuer_key_id.hex(),
        "serial": e.serial,
        "clock_trusted": e.clock_trusted,
    }


# A cell a spreadsheet would read as a formula (CWE-1236, OWASP "CSV Injection"): a
# subject or label is any printable text from the enrolment set, so "=cmd|..." can reach
# here. Such a cell gets a leading apostrophe in CSV (JSON lines keep the value as is).
_FORMULA_START: Final = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return attrs_json(tuple(value.items()))
    text = str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def write_rows(rows: Iterable[Row], columns: tuple[str, ...], fmt: str, out: TextIO) -> int:
    """Write ``rows`` in ``fmt`` ("csv": a header line first; "jsonl"); returns the count.

    Serials are written in full (JSON integers may exceed 64 bits; readers that parse
    them as doubles should read them as text)."""
    count = 0
    if fmt == "csv":
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(columns)
        for row in rows:
            writer.writerow([_cell(row.get(c)) for c in columns])
            count += 1
    elif fmt == "jsonl":
        for row in rows:
            out.write(json.dumps({c: row.get(c) for c in columns}, ensure_ascii=False) + "\n")
            count += 1
    else:
        raise ValueError(f"unknown format {fmt!r}; one of {', '.join(FORMATS)}")
    return count


@contextlib.contextmanager
def output(path: Path | None) -> Iterator[TextIO]:
    """Standard output, or ``path`` written whole or not at all: a temporary file in the
    same directory, fsynced, renamed over ``path`` only when the block ends without an
    exception (the export streams, so it is not built in memory first)."""
    if path is None:
        yield sys.stdout
        return
    handle = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed below, renamed or removed
        "w",
        encoding="utf-8",
        newline="",
        dir=path.parent,
        prefix=f".{path.name}.",
        suffix=".tmp",
        delete=False,
    )
    done = False
    try:
        with handle:
            yield cast(TextIO, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(handle.name, path)
        fsync_directory(path.parent)
        done = True
    finally:
        if not done:
            with contextlib.suppress(OSError):
                os.unlink(handle.name)
