"""The audit log's hash chain: the canonical encoding of a record, its hash, the anchor,
and appending records to the chain (one SQLite transaction is the caller's).

``hash = SHA-256(prev || encoding)``, ``prev`` the previous record's hash (32 zero bytes
before the first record ever written: GENESIS). The encoding is msgpack of one array: a
domain tag, then every stored field in ``HASHED`` order, as stored (text as str, integers
as int, blobs as bin, NULL as nil). msgpack writes each of these one way only (integers
in their shortest form, https://github.com/msgpack/msgpack/blob/master/spec.md), so the
same record always encodes to the same bytes; msgpack rather than our own format because
the project already depends on it for the link.

The evidence enters as the challenge, the signature and the certificate's SHA-256 (the
DER is kept once per certificate in ``certificates``; ``verify`` checks that it still
hashes to the value the record committed to).

The ``anchor`` table holds the seq and hash of the last record evicted (0 and GENESIS
before any): the next record's seq is one past the newest of the rows and the anchor, so
a seq is never used twice, even after every row has been evicted.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterable
from typing import Any

import msgpack

from terminald.store.audit_rows import AuditEntry, attrs_json, stored_time

GENESIS = bytes(32)
_TAG = "terminald-audit-3"

# The stored fields a record's hash covers, in encoding order.
HASHED = (
    "seq",
    "at",
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
    "challenge",
    "signature",
    "cert_sha256",
)
_INSERT = (  # our own column names; the values are bound
    f"INSERT INTO events ({', '.join(HASHED)}, prev, hash) "  # noqa: S608
    f"VALUES ({', '.join('?' * (len(HASHED) + 2))})"
)

ANCHOR_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS anchor "
    "(one INTEGER PRIMARY KEY CHECK (one = 1), seq INTEGER NOT NULL, hash BLOB NOT NULL)"
)


def encoding(values: Iterable[Any]) -> bytes:
    """The canonical bytes of a record's ``HASHED`` values."""
    return bytes(msgpack.packb([_TAG, *values], use_bin_type=True))


def record_hash(prev: bytes, values: Iterable[Any]) -> bytes:
    return hashlib.sha256(prev + encoding(values)).digest()


def stored_values(seq: int, entry: AuditEntry) -> tuple[Any, ...]:
    """The entry as its ``HASHED`` columns hold it."""
    challenge = signature = digest = None
    if entry.evidence is not None:
        challenge, signature, der = entry.evidence
        digest = hashlib.sha256(der).digest()
    return (
        seq,
        stored_time(entry.at),
        entry.terminal,
        entry.location,
        entry.kind,
        entry.reason,
        int(entry.clock_trusted),
        None if entry.issuer_key_id is None else entry.issuer_key_id.hex(),
        None if entry.serial is None else str(entry.serial),  # may exceed 64 bits
        entry.subject,
        entry.label,
        entry.detail,
        attrs_json(entry.attrs),
        int(entry.pin_verified),
        challenge,
        signature,
        digest,
    )


def anchor(db: sqlite3.Connection) -> tuple[int, bytes]:
    """(seq, hash) of the last evicted record; (0, GENESIS) before any eviction."""
    row = db.execute("SELECT seq, hash FROM anchor WHERE one = 1").fetchone()
    return (0, GENESIS) if row is None else (int(row[0]), bytes(row[1]))


def set_anchor(db: sqlite3.Connection, seq: int, digest: bytes) -> None:
    db.execute(
        "INSERT INTO anchor (one, seq, hash) VALUES (1, ?, ?) "
        "ON CONFLICT(one) DO UPDATE SET seq = excluded.seq, hash = excluded.hash",
        (seq, digest),
    )


def newest(db: sqlite3.Connection) -> int:
    """The newest seq ever written: the last row's, or the anchor's once all are evicted."""
    row = db.execute("SELECT max(seq) FROM events").fetchone()
    return max(int(row[0] or 0), anchor(db)[0])


def head(db: sqlite3.Connection) -> tuple[int, bytes]:
    """(the next seq, the hash it chains to)."""
    last = db.execute("SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1").fetchone()
    at_anchor = anchor(db)
    if last is None or int(last[0]) <= at_anchor[0]:
        return at_anchor[0] + 1, at_anchor[1]
    return int(last[0]) + 1, bytes(last[1] or GENESIS)


def append_chained(
    db: sqlite3.Connection, entries: Iterable[AuditEntry]
) -> list[tuple[int, AuditEntry]]:
    """Insert the entries after the chain's head, each committing to the one before.

    Inside the caller's transaction (the head read and the inserts must not interleave
    with another writer's). Returns (seq, entry) for each."""
    seq, prev = head(db)
    written: list[tuple[int, AuditEntry]] = []
    for entry in entries:
        if entry.evidence is not None:
            der = entry.evidence[2]
            db.execute(
                "INSERT OR IGNORE INTO certificates (sha256, der) VALUES (?, ?)",
                (hashlib.sha256(der).digest(), der),
            )
        values = stored_values(seq, entry)
        digest = record_hash(prev, values)
        db.execute(_INSERT, (*values, prev, digest))
        written.append((seq, entry))
        seq, prev = seq + 1, digest
    return written
