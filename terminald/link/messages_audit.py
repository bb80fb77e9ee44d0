"""The audit trail over the link: pull by cursor, acknowledge, and events as they happen.

A row follows ``terminald.store.audit_rows.AuditEntry`` (its ``as_dict`` names), plus
``seq``, the row's id in the terminal's trail. Rows are pulled after a cursor (the last
``seq`` the host holds) and are kept by the terminal until an ``audit.ack`` covers them;
rows that are gone all the same (the trail's memory queue overflowed, or the file was
replaced) are reported as a ``gap`` of sequence numbers, never silently skipped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import msgpack

from terminald.link.messages_base import Direction, Lane, Message, Role, message
from terminald.link.messages_policy import ATTRS, SUBJECT
from terminald.link.messages_schema import (
    U64,
    Bool,
    Bytes,
    Int,
    List,
    Optional,
    Struct,
    Text,
    Time,
    spec,
)

MAX_AUDIT_ROWS = 256
# A pull's rows stop short of this many encoded bytes (the terminal uses fit_rows): one
# row with its evidence is ~2 KB, so a full answer is ~11 s of line at 115200.
MAX_ROWS_BYTES = 128 * 1024
MAX_CERTIFICATE = 8192  # a JPKI certificate is ~1.6 KB
MAX_EVIDENCE_FIELD = 1024  # the challenge message; a 2048-bit RSA signature is 256 bytes
MAX_SERIAL_DIGITS = 49  # 2**160 (RFC 5280's 20-byte serials); terminald.store.enrolled


@dataclass(frozen=True, kw_only=True)
class Evidence:
    """A grant's proof: the challenge the card signed, its signature, its certificate."""

    SPEC = spec(
        challenge=Bytes(MAX_EVIDENCE_FIELD),
        signature=Bytes(MAX_EVIDENCE_FIELD),
        certificate=Bytes(MAX_CERTIFICATE),
    )
    challenge: bytes
    signature: bytes
    certificate: bytes = field(repr=False)


@dataclass(frozen=True, kw_only=True)
class AuditRow:
    """One row of the trail. ``serial`` is decimal text: serials exceed msgpack's 64 bits."""

    SPEC = spec(
        seq=U64,
        at=Time(),
        terminal=Text(64),
        kind=Text(32),
        reason=Optional(Text(64)),
        issuer=Optional(Bytes(64)),
        serial=Optional(Text(MAX_SERIAL_DIGITS, pattern="[0-9]+")),
        label=Optional(Text(64)),
        detail=Text(4096, printable=False),
        evidence=Optional(Struct(Evidence)),
        subject=Optional(SUBJECT),
        attrs=ATTRS,
    )
    seq: int
    at: str  # ISO 8601 with its zone, as the trail stores it
    terminal: str
    kind: str  # terminald.store.audit_rows.KINDS, and any kind added later
    reason: str | None = None
    issuer: bytes | None = None  # the issuing root's key id
    serial: str | None = None
    label: str | None = None
    detail: str = ""
    evidence: Evidence | None = None
    # The enrolment's subject id and the policy's attributes (("passback", "entry"),
    # ("product", "A"), ...): what the back office relays and reports.
    subject: str | None = None
    attrs: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, kw_only=True)
class Gap:
    """Sequence numbers ``first``..``last`` (inclusive) that the terminal no longer holds."""

    SPEC = spec(first=U64, last=U64)
    first: int
    last: int


ROW = Struct(AuditRow)
H2T, T2H = Direction.HOST_TO_TERMINAL, Direction.TERMINAL_TO_HOST


@message
@dataclass(frozen=True, kw_only=True)
class AuditPull(Message):
    TYPE = "audit.pull"
    DIRECTION, ROLE = H2T, Role.REQUEST
    REPLIES = ("audit.rows",)
    SPEC = spec(cursor=U64, max_rows=Int(1, MAX_AUDIT_ROWS))
    SUMMARY = "rows with seq > cursor, oldest first, at most max_rows"
    cursor: int
    max_rows: int


@message
@dataclass(frozen=True, kw_only=True)
class AuditRows(Message):
    TYPE = "audit.rows"
    DIRECTION, ROLE = T2H, Role.REPLY
    LANE = Lane.BULK  # up to MAX_ROWS_BYTES: it must not hold up a tap's messages
    SPEC = spec(
        rows=List(ROW, MAX_AUDIT_ROWS),
        next=U64,
        more=Bool(),
        gap=Optional(Struct(Gap)),
    )
    SUMMARY = "rows after the cursor; next = cursor for the next pull; gap = rows gone"
    rows: tuple[AuditRow, ...]
    next: int  # the last seq sent (the cursor itself when no row follows it)
    more: bool  # rows after next remain
    gap: Gap | None = None


@message
@dataclass(frozen=True, kw_only=True)
class AuditAck(Message):
    TYPE = "audit.ack"
    DIRECTION, ROLE = H2T, Role.REQUEST
    REPLIES = ("ack",)
    CHANGES_STATE = True  # rows up to cursor may now be trimmed
    SPEC = spec(cursor=U64)
    SUMMARY = "the host holds every row with seq <= cursor"
    cursor: int


@message
@dataclass(frozen=True, kw_only=True)
class Event(Message):
    """Unsolicited, on the interactive lane, as the daemon records it. ``id`` counts the
    terminal's events in this session; the row's ``seq`` places it in the trail, so
    the host can pull whatever a dropped line made it miss. No evidence (kept small:
    the host pulls it with audit.pull)."""

    TYPE = "event"
    DIRECTION, ROLE = T2H, Role.EVENT
    SPEC = spec(row=ROW)
    SUMMARY = "a decision, alarm or door event as it happens, with its audit seq"
    row: AuditRow


def fit_rows(rows: Sequence[AuditRow], budget: int = MAX_ROWS_BYTES) -> int:
    """How many of ``rows`` (from the first) fit in ``budget`` encoded bytes; at least one
    when there is any (a single row is always far below the message limit)."""
    used = 0
    for count, row in enumerate(rows):
        used += len(msgpack.packb(ROW.dump(row), use_bin_type=True))
        if used > budget and count:
            return count
    return len(rows)
