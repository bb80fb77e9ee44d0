"""The audit trail: every decision, exit, alarm and mode change, in SQLite.

``state/audit.sqlite``, one row per event: when (UTC), which terminal, what kind
(``granted``, ``refused``, ``rex``, ``alarm``, ``mode``, ``door_opened``...), the reason
code, the certificate's identity (issuer key id and serial: serials are unique per
issuer only) and the enrolled label. Never a PIN, never the My Number.

Schema version 2 added ``issuer``; a version 1 file is migrated in place when opened
(one ``ALTER TABLE``; its old rows keep ``issuer`` NULL, shown as unknown).

SQLite in WAL mode with ``synchronous=NORMAL``: each row is one transaction, so a power
cut loses at most the last rows, never the file's consistency, and ``terminald audit``
can read while the daemon writes. The table is trimmed to ``keep`` rows so an unattended
terminal never fills its SD card. A file that SQLite cannot open as a database is moved
aside (``audit.sqlite.corrupt-<time>``) and a new one started: the terminal keeps
working, and the old file is kept for whoever investigates.
"""

from __future__ import annotations

import hashlib
import logging
import sqlite3
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

AUDIT_NAME = "audit.sqlite"
SCHEMA_VERSION = 2
_TRIM_EVERY = 100  # rows between trims: one DELETE per hundred inserts

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


class AuditLog:
    def __init__(self, path: Path, keep: int = 100_000) -> None:
        if keep < 1:
            raise ValueError("keep must be >= 1")
        self.path = path
        self.keep = keep
        self._since_trim = 0
        try:
            self._db = self._open(path)
        except sqlite3.DatabaseError as exc:
            aside = path.with_name(f"{path.name}.corrupt-{time.strftime('%Y%m%dT%H%M%S')}")
            logger.error("audit log %s is unusable (%s); moved to %s", path, exc, aside)
            path.rename(aside)
            for suffix in ("-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
            self._db = self._open(path)

    @staticmethod
    def _open(path: Path) -> sqlite3.Connection:
        db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version not in (0, 1, SCHEMA_VERSION):
                raise sqlite3.DatabaseError(f"schema version {version}, expected {SCHEMA_VERSION}")
            db.executescript(_SCHEMA)
            _migrate(db)
            db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            db.execute("SELECT count(*) FROM events").fetchone()
        except BaseException:
            db.close()
            raise
        return db

    def append(self, entry: AuditEntry) -> None:
        """One row, one transaction. Raises AuditError (the caller logs and goes on)."""
        challenge = signature = digest = None
        try:
            self._db.execute("BEGIN")
            if entry.evidence is not None:
                challenge, signature, der = entry.evidence
                digest = hashlib.sha256(der).digest()
                self._db.execute(
                    "INSERT OR IGNORE INTO certificates (sha256, der) VALUES (?, ?)",
                    (digest, der),
                )
            self._db.execute(
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
            self._db.execute("COMMIT")
            self._since_trim += 1
            if self._since_trim >= _TRIM_EVERY:
                self._since_trim = 0
                self.trim()
        except sqlite3.Error as exc:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise AuditError(f"audit log {self.path}: {exc}") from exc

    def trim(self) -> None:
        self._db.execute("BEGIN")
        self._db.execute(
            "DELETE FROM events WHERE id <= (SELECT max(id) FROM events) - ?", (self.keep,)
        )
        self._db.execute(
            "DELETE FROM certificates WHERE sha256 NOT IN "
            "(SELECT cert_sha256 FROM events WHERE cert_sha256 IS NOT NULL)"
        )
        self._db.execute("COMMIT")

    def recent(self, limit: int = 50, kind: str | None = None) -> list[AuditEntry]:
        """The newest ``limit`` rows (of ``kind``), oldest first."""
        rows = self._db.execute(
            "SELECT at, terminal, kind, reason, serial, label, detail, challenge, signature, "
            "der, issuer FROM events LEFT JOIN certificates ON sha256 = cert_sha256 "
            "WHERE ?1 IS NULL OR kind = ?1 ORDER BY id DESC LIMIT ?2",
            (kind, limit),
        ).fetchall()
        return [_entry(row) for row in reversed(rows)]

    def __len__(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM events").fetchone()[0])

    def close(self) -> None:
        self._db.close()


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
