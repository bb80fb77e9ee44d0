"""The rows of ``store/enrolment_db.py``: its schema, how a serial and the set's header
are stored, and the writes of a full set and of a delta (inside the caller's transaction)."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import msgpack

from terminald.enrolment.bundle import SetHeader
from terminald.enrolment.codec import (
    EnrolmentDelta,
    decode_calendar,
    decode_person_record,
    decode_schedules,
    encode_calendar,
    encode_person_record,
    encode_schedules,
)
from terminald.enrolment.errors import EnrolmentError, EnrolmentFormatError
from terminald.enrolment.model import Credential, EnrolmentContent, SetInfo

_INT_SERIAL: Final = 2**63  # SQLite integers are signed 64-bit; larger serials are BLOBs

SCHEMA_SQL: Final = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS person (subject TEXT PRIMARY KEY, record BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS credential (
    issuer BLOB NOT NULL, serial NOT NULL, subject TEXT NOT NULL,
    PRIMARY KEY (issuer, serial)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS credential_subject ON credential (subject);
CREATE TABLE IF NOT EXISTS age_yes (
    issuer BLOB NOT NULL, serial NOT NULL, age INTEGER NOT NULL, since INTEGER NOT NULL,
    PRIMARY KEY (issuer, serial, age)) WITHOUT ROWID;
"""


def serial_key(serial: int) -> int | bytes:
    """How a serial is stored: an INTEGER when it fits, else its big-endian bytes."""
    if serial < _INT_SERIAL:
        return serial
    return serial.to_bytes((serial.bit_length() + 7) // 8, "big")


def serial_of(value: int | bytes) -> int:
    return value if isinstance(value, int) else int.from_bytes(value, "big")


class EnrolmentStoreError(EnrolmentError):
    """The database cannot be read or written (damaged, permissions, disk full)."""


def info_record(info: SetInfo) -> bytes:
    record = [
        info.version,
        int(info.issued_at.timestamp()),
        int(info.valid_until.timestamp()),
        info.digest,
        info.signer,
        info.people,
        info.credentials,
    ]
    return msgpack.packb(record, use_bin_type=True)  # type: ignore[no-any-return]


def info_of(record: bytes) -> SetInfo:
    try:
        version, issued, until, digest, signer, people, credentials = msgpack.unpackb(record)
        return SetInfo(
            int(version),
            datetime.fromtimestamp(issued, UTC),
            datetime.fromtimestamp(until, UTC),
            bytes(digest),
            bytes(signer),
            int(people),
            int(credentials),
        )
    except (ValueError, TypeError, OverflowError, msgpack.UnpackException) as exc:
        raise EnrolmentStoreError(f"the installed set's record is damaged ({exc})") from None


def meta(conn: sqlite3.Connection) -> dict[str, bytes]:
    rows = dict(conn.execute("SELECT key, value FROM meta WHERE key != 'schema'"))
    if "set" in rows and not {"schedules", "calendar"} <= rows.keys():
        raise EnrolmentStoreError("the installed set's schedules or calendar are missing")
    return rows


Step = tuple[str, list[tuple[Any, ...]] | None]  # SQL and its rows (None: run once)


@dataclass(frozen=True)
class Prepared:
    """An install's writes, computed before the write lock is taken."""

    info: SetInfo
    steps: list[Step]


def _full_steps(content: EnrolmentContent) -> list[Step]:
    return [
        ("DELETE FROM person", None),
        ("DELETE FROM credential", None),
        (
            "INSERT INTO person VALUES (?, ?)",
            [(s, encode_person_record(p)) for s, p in content.people.items()],
        ),
        (
            "INSERT INTO credential VALUES (?, ?, ?)",
            [
                (c.issuer_key_id, serial_key(c.serial), c.subject)
                for c in content.credentials.values()
            ],
        ),
    ]


def _delta_steps(delta: EnrolmentDelta) -> list[Step]:
    removed = [(s,) for s in delta.removed_subjects]
    return [
        ("DELETE FROM person WHERE subject = ?", removed),
        ("DELETE FROM credential WHERE subject = ?", removed),
        (
            "INSERT OR REPLACE INTO person VALUES (?, ?)",
            [(p.subject, encode_person_record(p)) for p in delta.upserted_people],
        ),
        (
            "DELETE FROM credential WHERE issuer = ? AND serial = ?",
            [(k, serial_key(s)) for k, s in delta.removed_credentials],
        ),
        (
            "INSERT INTO credential VALUES (?, ?, ?)",
            [(c.issuer_key_id, serial_key(c.serial), c.subject) for c in delta.added_credentials],
        ),
    ]


def prepare(
    header: SetHeader, incoming: EnrolmentContent | EnrolmentDelta, content: EnrolmentContent
) -> Prepared:
    """The rows that turn the installed set into ``content`` (``incoming`` is what the
    set carried: a delta writes only its changes)."""
    steps = _delta_steps(incoming) if isinstance(incoming, EnrolmentDelta) else _full_steps(content)
    info = SetInfo(
        header.version,
        header.issued_at,
        header.valid_until,
        header.content_digest,
        header.signer_key_id,
        len(content.people),
        len(content.credentials),
    )
    meta_rows: list[tuple[Any, ...]] = [
        ("set", info_record(info)),
        ("schedules", encode_schedules(content.schedules)),
        ("calendar", encode_calendar(content.calendar)),
    ]
    steps.append(("INSERT OR REPLACE INTO meta VALUES (?, ?)", meta_rows))
    return Prepared(info, steps)


def write_prepared(conn: sqlite3.Connection, prepared: Prepared) -> SetInfo:
    """Run the writes (inside the caller's transaction)."""
    for sql, rows in prepared.steps:
        if rows is None:
            conn.execute(sql)
        else:
            conn.executemany(sql, rows)
    return prepared.info


def read_content(conn: sqlite3.Connection, path: Path) -> EnrolmentContent:
    """The whole installed content (empty when no set is); call inside a transaction."""
    rows = meta(conn)
    if "set" not in rows:
        return EnrolmentContent()
    try:
        people = {
            subject: decode_person_record(record)
            for subject, record in conn.execute("SELECT subject, record FROM person")
        }
        credentials = {
            (issuer, serial_of(serial)): Credential(issuer, serial_of(serial), subject)
            for issuer, serial, subject in conn.execute(
                "SELECT issuer, serial, subject FROM credential"
            )
        }
        return EnrolmentContent(
            people,
            credentials,
            decode_schedules(rows["schedules"]),
            decode_calendar(rows["calendar"]),
        )
    except EnrolmentFormatError as exc:
        raise EnrolmentStoreError(f"{path}: a stored record is damaged ({exc})") from None


def credentials_of(conn: sqlite3.Connection, subject: str) -> list[tuple[bytes, int]]:
    rows = conn.execute(
        "SELECT issuer, serial FROM credential WHERE subject = ? ORDER BY issuer, serial",
        (subject,),
    )
    return [(issuer, serial_of(serial)) for issuer, serial in rows]


def installed_info(conn: sqlite3.Connection) -> SetInfo | None:
    row = conn.execute("SELECT value FROM meta WHERE key = 'set'").fetchone()
    return None if row is None else info_of(row[0])
