"""The audit log's vocabulary and its rows in SQLite: the entry, the columns, decode;
shared by the writer (``store/audit.py``), the chain, the reader and ``verify``."""

from __future__ import annotations

import json
import os
import sqlite3
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

AUDIT_NAME = "audit.sqlite"
# 3: the hash chain, seq, location, clock_trusted, subject, attrs, pin_verified, anchor.
SCHEMA_VERSION = 3
_TRIM_EVERY = 100  # rows between evictions: one pass per hundred inserts

# The memory queue's bound, in rows. A row is ~250 bytes, a grant with its evidence up to
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
# A certificate that is valid but not enrolled is a ``refused`` row with the reason
# ``unknown_certificate``, not a kind of its own.
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
    # issue 11: attendance, vending, enrolment installs
    "attendance",
    "vend_complete",
    "vend_timeout",
    "enrolment",
)

# https://www.sqlite.org/rescode.html: the primary code is the low byte.
_CORRUPT_CODES = frozenset({sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB})

# What a reader selects, in this order (``_entry`` decodes it). A file of an older schema
# lacks some columns; the reader puts each one's default in its place (``select_list``).
COLUMNS: tuple[tuple[str, str], ...] = (
    ("seq", "NULL"),
    ("at", "NULL"),
    ("terminal", "NULL"),
    ("kind", "NULL"),
    ("reason", "NULL"),
    ("serial", "NULL"),
    ("label", "NULL"),
    ("detail", "''"),
    ("challenge", "NULL"),
    ("signature", "NULL"),
    ("der", "NULL"),
    ("issuer", "NULL"),
    ("location", "''"),
    ("clock_trusted", "1"),
    ("subject", "NULL"),
    ("attrs", "'{}'"),
    ("pin_verified", "0"),
    ("prev", "NULL"),
    ("hash", "NULL"),
)


def select_list(present: set[str]) -> str:
    """The select list for a file whose ``events`` has the columns ``present`` (a version 1
    or 2 file names its sequence number ``id``)."""
    parts = []
    for name, default in COLUMNS:
        if name == "seq" and "seq" not in present:
            parts.append("id")
        elif name == "der" or name in present:
            parts.append(name)
        else:
            parts.append(default)
    return ", ".join(parts)


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
    # Schema version 3 (issue 11); keyword use.
    location: str = ""
    clock_trusted: bool = True
    subject: str | None = None
    attrs: tuple[tuple[str, str], ...] = ()  # sorted by key in the file (attrs_json)
    pin_verified: bool = False

    def as_dict(self) -> dict[str, object]:
        return {
            "at": self.at.isoformat(),
            "terminal": self.terminal,
            "location": self.location,
            "kind": self.kind,
            "reason": self.reason,
            "clock_trusted": self.clock_trusted,
            "issuer": self.issuer_key_id.hex() if self.issuer_key_id is not None else None,
            "serial": self.serial,
            "subject": self.subject,
            "label": self.label,
            "detail": self.detail,
            "attrs": dict(self.attrs),
            "pin_verified": self.pin_verified,
            "evidence": self.evidence is not None,
        }


def attrs_json(attrs: tuple[tuple[str, str], ...]) -> str:
    """Canonical JSON of a str→str map: keys sorted, no spaces, UTF-8 kept (what is hashed).

    A key given twice keeps its last value, as ``dict`` does."""
    return json.dumps(dict(attrs), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def attrs_of(text: str | None) -> tuple[tuple[str, str], ...]:
    """The stored JSON back as sorted pairs; anything but a str→str object reads as ()."""
    try:
        value = json.loads(text or "{}")
    except ValueError:
        return ()
    if not isinstance(value, dict):
        return ()
    return tuple(sorted((str(k), str(v)) for k, v in value.items()))


def stored_time(at: datetime) -> str:
    """UTC ISO 8601 with microseconds always (so times compare as text)."""
    return at.astimezone(UTC).isoformat(timespec="microseconds")


@dataclass
class _Gap:
    """Rows dropped while the queue was full: how many, from when to when."""

    terminal: str
    first: datetime
    last: datetime
    count: int = 1
    location: str = ""
    clock_trusted: bool = True  # the first lost record's: the gap's time is its time

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
            location=self.location,
            clock_trusted=self.clock_trusted,
            attrs=(("lost", str(self.count)),),
        )


class _Wait(Exception):
    """The file cannot be written now; the rows stay queued. ``corrupt``: SQLite said so
    (quick_check should look again before anything is moved)."""

    def __init__(self, message: str, *, corrupt: bool = False) -> None:
        super().__init__(message)
        self.corrupt = corrupt


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


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _entry(row: tuple[Any, ...], seq: object = None) -> AuditEntry:
    """A row selected with ``select_list`` (from ``at`` on: the caller takes ``seq``).

    AuditError naming record ``seq`` and the field when a stored value no longer decodes
    (an edited file, a bad sector): the readers say so in one line, never a traceback;
    ``terminald audit verify`` names every such problem."""
    (at, terminal, kind, reason, serial, label, detail, challenge, signature, der, issuer,
     location, clock_trusted, subject, attrs, pin_verified) = row[:16]  # fmt: skip
    evidence = (challenge, signature, der) if challenge and signature and der else None
    texts = {"terminal": terminal, "kind": kind, "reason": reason, "label": label,
             "detail": detail, "location": location, "subject": subject}  # fmt: skip
    field = next((k for k, v in texts.items() if v is not None and not isinstance(v, str)), "")
    try:
        if field:
            raise TypeError(field)
        field = "at"
        when = datetime.fromisoformat(at)
        field = "serial"
        if serial is not None and not isinstance(serial, int | str):
            raise TypeError(field)
        number = None if serial is None else int(serial)
        field = "issuer"
        issuer_id = None if issuer is None else bytes.fromhex(issuer)
    except (ValueError, TypeError):
        value = texts.get(field, {"at": at, "serial": serial, "issuer": issuer}.get(field))
        raise AuditError(
            f"record {seq} is damaged: its {field} ({str(value)[:40]!r}) does not decode; "
            "`terminald audit verify` names every problem"
        ) from None
    return AuditEntry(
        when,
        terminal,
        kind,
        reason,
        number,
        label,
        detail,
        evidence,
        issuer_id,
        location=location or "",
        clock_trusted=bool(clock_trusted),
        subject=subject,
        attrs=attrs_of(attrs),
        pin_verified=bool(pin_verified),
    )
