"""The audit trail's vocabulary and its rows in SQLite: the entry, the schema, insert,
trim, migrate, decode; shared by the writer (``store/audit.py``) and the reader."""

from __future__ import annotations

import hashlib
import logging
import os
import sqlite3
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

logger = logging.getLogger("terminald.store.audit")


AUDIT_NAME = "audit.sqlite"
SCHEMA_VERSION = 2
_TRIM_EVERY = 100  # rows between trims: one DELETE per hundred inserts

# The memory queue's bound, in rows. A row is ~200 bytes, a grant with its evidence up to
# ~2 KB (a 1.6 KB certificate, 256-byte signature, challenge), so 4096 rows cost at most
# ~8 MB, which even a 512 MB Pi Zero 2 can spare; at a busy gate (a tap every 3 s) it rides
# out over three hours of an unwritable file, time for someone to free the disk.
QUEUE_ROWS = 4096
BUSY_TIMEOUT_S = 1.0  # the writer's SQLite busy timeout: it runs off the loop, so it may wait
RETRY_FIRST_S = 0.1
RETRY_MAX_S = 2.0
_BATCH = 256  # rows per transaction when catching up
CLOSE_WAIT_S = 3.0  # at shutdown, the queue's last chance to reach the file

# The kinds the daemon writes (core/terminal.py, core/door.py, daemon/service.py) and the
# writer's own ``gap``. ``terminald audit --kind`` checks against these and the file's own.
KINDS = (
    "granted",
    "refused",
    "rex",
    "door_opened",
    "door_closed",
    "alarm",
    "mode",
    "revocation",
    "gap",
    # the technician's console (console/session.py)
    "console_login",
    "console_login_failed",
    "console_lockout",
    "console_logout",
    "console_command",
)

# https://www.sqlite.org/rescode.html: the primary code is the low byte.
_CORRUPT_CODES = frozenset({sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB})

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id       INTEGER PRIMARY KEY,
    at       TEXT NOT NULL,     -- UTC, ISO 8601 with microseconds
    terminal TEXT NOT NULL,
    kind     TEXT NOT NULL,
    reason   TEXT,
    serial   TEXT,              -- decimal: serials can exceed SQLite's 64-bit integers
    label    TEXT,
    detail   TEXT NOT NULL DEFAULT '',
    -- a grant's evidence: the challenge message the card signed, its signature, and the
    -- SHA-256 of its certificate (the DER is kept once, in certificates)
    challenge BLOB,
    signature BLOB,
    cert_sha256 BLOB,
    issuer   TEXT               -- the issuing root's key id, hex (version 2)
);
CREATE TABLE IF NOT EXISTS certificates (
    sha256 BLOB PRIMARY KEY,
    der    BLOB NOT NULL
);
"""

_SELECT = (
    "SELECT at, terminal, kind, reason, serial, label, detail, challenge, signature, "
    "der, issuer FROM events LEFT JOIN certificates ON sha256 = cert_sha256 "
    "WHERE ?1 IS NULL OR kind = ?1 ORDER BY id DESC LIMIT ?2"
)


class AuditError(Exception):
    pass


@dataclass(frozen=True)
class AuditEntry:
    at: datetime
    terminal: str
    kind: str
    reason: str | None = None
    serial: int | None = None
    label: str | None = None
    detail: str = ""
    # A grant's evidence: (challenge message, signature, certificate DER).
    evidence: tuple[bytes, bytes, bytes] | None = field(default=None, repr=False)
    # With ``serial``, the certificate's identity; None when no trusted root vouched for it.
    issuer_key_id: bytes | None = None

    def as_dict(self) -> dict[str, object]:
        return {
            "at": self.at.isoformat(),
            "terminal": self.terminal,
            "kind": self.kind,
            "reason": self.reason,
            "issuer": self.issuer_key_id.hex() if self.issuer_key_id is not None else None,
            "serial": self.serial,
            "label": self.label,
            "detail": self.detail,
            "evidence": self.evidence is not None,
        }


@dataclass
class _Gap:
    """Rows dropped while the queue was full: how many, from when to when."""

    terminal: str
    first: datetime
    last: datetime
    count: int = 1

    def entry(self, bound: int) -> AuditEntry:
        return AuditEntry(
            self.first,
            self.terminal,
            "gap",
            None,
            None,
            None,
            f"{self.count} rows lost from {self.first.astimezone(UTC).isoformat()} to "
            f"{self.last.astimezone(UTC).isoformat()}: the file could not be written and "
            f"the memory queue ({bound} rows) was full",
        )


class _Wait(Exception):
    """The file cannot be written now; the rows stay queued."""


def _code(exc: sqlite3.Error) -> int | None:
    code = getattr(exc, "sqlite_errorcode", None)
    return None if code is None else int(code) & 0xFF


def _says_corrupt(exc: sqlite3.Error) -> bool:
    return _code(exc) in _CORRUPT_CODES


def _uri(path: Path, **params: str) -> str:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return f"file:{quote(str(path.absolute()))}?{query}"


def _companions(path: Path) -> tuple[Path, Path]:
    return Path(f"{path}-wal"), Path(f"{path}-shm")


def _insert(db: sqlite3.Connection, entry: AuditEntry) -> int:
    """Insert the row; its id (the sequence number the back office pulls by)."""
    challenge = signature = digest = None
    if entry.evidence is not None:
        challenge, signature, der = entry.evidence
        digest = hashlib.sha256(der).digest()
        db.execute(
            "INSERT OR IGNORE INTO certificates (sha256, der) VALUES (?, ?)",
            (digest, der),
        )
    cursor = db.execute(
        "INSERT INTO events (at, terminal, kind, reason, issuer, serial, label, detail, "
        "challenge, signature, cert_sha256) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            entry.at.astimezone(UTC).isoformat(),
            entry.terminal,
            entry.kind,
            entry.reason,
            None if entry.issuer_key_id is None else entry.issuer_key_id.hex(),
            None if entry.serial is None else str(entry.serial),
            entry.label,
            entry.detail,
            challenge,
            signature,
            digest,
        ),
    )
    return int(cursor.lastrowid or 0)


def _trim(db: sqlite3.Connection, keep: int) -> None:
    db.execute("BEGIN IMMEDIATE")
    try:
        db.execute("DELETE FROM events WHERE id <= (SELECT max(id) FROM events) - ?", (keep,))
        db.execute(
            "DELETE FROM certificates WHERE sha256 NOT IN "
            "(SELECT cert_sha256 FROM events WHERE cert_sha256 IS NOT NULL)"
        )
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _migrate(db: sqlite3.Connection) -> None:
    """Version 1 → 2: add ``issuer``. Idempotent: a cut between the ALTER and the
    version update leaves a file this completes on the next open."""
    columns = {row[1] for row in db.execute("PRAGMA table_info(events)")}
    if "issuer" not in columns:
        logger.info("audit log: adding the issuer column (schema version %d)", SCHEMA_VERSION)
        db.execute("ALTER TABLE events ADD COLUMN issuer TEXT")


def _entry(row: tuple[Any, ...]) -> AuditEntry:
    at, terminal, kind, reason, serial, label, detail, challenge, signature, der, issuer = row
    evidence = (challenge, signature, der) if challenge and signature and der else None
    return AuditEntry(
        datetime.fromisoformat(at),
        terminal,
        kind,
        reason,
        None if serial is None else int(serial),
        label,
        detail,
        evidence,
        None if issuer is None else bytes.fromhex(issuer),
    )
