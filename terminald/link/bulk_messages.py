"""The ``bulk.*`` messages (docs/protocol.md §5): plain objects, msgpack shapes, strict checks.

Every message but the chunk is a map ``{"v": 1, "t": "bulk.<type>", ...}`` with one-letter
fields (listed per class). ``to_wire()`` gives the map; ``from_wire(obj)`` takes what
msgpack unpacked and raises :class:`BulkError` naming the first fault: not a map, a wrong
``v``/``t``, a missing, extra or mistyped field, a value out of bounds. The envelope's
request ``"id"`` (docs/protocol.md §4) is accepted and left to the message layer.

The chunk is the exception, because it is nearly all of the bytes on the line: a msgpack
array ``[tag, index, data]`` (see :class:`BulkChunk`), 12 bytes of overhead on 1024 bytes of
data where the map form would cost 39.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar, Final

from terminald.link.bulk_errors import BulkError
from terminald.link.bulk_ranges import MAX_CHUNKS, Range, flatten, parse_runs

VERSION: Final = 1
KINDS: Final = frozenset({"revocation", "enrolment", "config"})
ID_SIZE: Final = 8
SHA256_SIZE: Final = 32
GROUP_KEY_SIZE: Final = 32
MIN_CHUNK_SIZE: Final = 64
MAX_CHUNK_SIZE: Final = 16384
MAX_SIZE: Final = 1 << 30  # the protocol's bound; a terminal configures a lower one
MAX_REASON: Final = 200  # characters of an installer's free-text reason

# Why a terminal refuses an offer (bulk.state) or a transfer ends unverified (bulk.done).
REFUSE_TOO_BIG: Final = "too-big"
REFUSE_NO_SPACE: Final = "no-space"
REFUSE_UNKNOWN_KIND: Final = "unknown-kind"
REFUSE_BUSY: Final = "busy"
REFUSE_STORE: Final = "store-error"
# A status or chunk for a transfer the terminal does not know (it restarted): offer again.
REFUSE_UNKNOWN_TRANSFER: Final = "unknown-transfer"
REFUSALS: Final = frozenset(
    {
        REFUSE_TOO_BIG,
        REFUSE_NO_SPACE,
        REFUSE_UNKNOWN_KIND,
        REFUSE_BUSY,
        REFUSE_STORE,
        REFUSE_UNKNOWN_TRANSFER,
    }
)
DONE_OK: Final = "ok"
DONE_SHA_MISMATCH: Final = "sha-mismatch"
DONE_OUTCOMES: Final = frozenset({DONE_OK, DONE_SHA_MISMATCH, REFUSE_STORE, REFUSE_NO_SPACE})


def chunk_count(size: int, chunk_size: int) -> int:
    return math.ceil(size / chunk_size)


def chunk_tag(transfer_id: bytes) -> int:
    """The u32 a chunk carries instead of the 8-byte id: its first 4 bytes, big-endian."""
    return int.from_bytes(transfer_id[:4], "big")


def _envelope(obj: object, kind: str, fields: frozenset[str]) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise BulkError(f"{kind}: expected a map, got {type(obj).__name__}")
    if obj.get("v") != VERSION or type(obj.get("v")) is not int:
        raise BulkError(f"{kind}: version {obj.get('v')!r} is not {VERSION}")
    if obj.get("t") != kind:
        raise BulkError(f"{kind}: type {obj.get('t')!r} is not {kind!r}")
    if "id" in obj and (type(obj["id"]) is not int or not 0 <= obj["id"] < 1 << 32):
        raise BulkError(f"{kind}: request id is not a u32")
    extra = set(obj) - fields - {"v", "t", "id"}
    if extra:
        raise BulkError(f"{kind}: unknown fields {sorted(map(str, extra))}")
    missing = fields - set(obj)
    if missing:
        raise BulkError(f"{kind}: missing fields {sorted(missing)}")
    return obj


def _bytes(obj: dict[str, Any], key: str, size: int, kind: str) -> bytes:
    value = obj[key]
    if type(value) is not bytes or len(value) != size:
        raise BulkError(f"{kind}: field {key!r} must be {size} bytes")
    return value


def _int(obj: dict[str, Any], key: str, low: int, high: int, kind: str) -> int:
    value = obj[key]
    if type(value) is not int or not low <= value <= high:
        raise BulkError(f"{kind}: field {key!r} must be an integer in {low}..{high}")
    return value


def _bool(obj: dict[str, Any], key: str, kind: str) -> bool:
    value = obj[key]
    if type(value) is not bool:
        raise BulkError(f"{kind}: field {key!r} must be true or false")
    return value


def _choice(obj: dict[str, Any], key: str, allowed: frozenset[str], kind: str) -> str:
    value = obj[key]
    if type(value) is not str or value not in allowed:
        raise BulkError(f"{kind}: field {key!r} must be one of {sorted(allowed)}")
    return value


def _head(kind: str) -> dict[str, Any]:
    return {"v": VERSION, "t": kind}


@dataclass(frozen=True)
class BulkOffer:
    """host → terminal. ``{"x": id (bin 8), "k": kind, "n": size (bytes), "c": chunk size
    (bytes), "h": SHA-256 of the whole (bin 32), "g": group key (bin 32) — broadcast only}``.
    ``kind`` is checked against :data:`KINDS` by the receiver (so that a new kind is refused
    with a reason, not dropped as malformed)."""

    TYPE: ClassVar[str] = "bulk.offer"
    transfer_id: bytes
    kind: str
    size: int
    chunk_size: int
    sha256: bytes
    group_key: bytes | None = field(default=None, repr=False)  # never logged

    @property
    def chunks(self) -> int:
        return chunk_count(self.size, self.chunk_size)

    def to_wire(self) -> dict[str, Any]:
        wire = _head(self.TYPE) | {
            "x": self.transfer_id,
            "k": self.kind,
            "n": self.size,
            "c": self.chunk_size,
            "h": self.sha256,
        }
        if self.group_key is not None:
            wire["g"] = self.group_key
        return wire

    @classmethod
    def from_wire(cls, obj: object) -> BulkOffer:
        fields = frozenset({"x", "k", "n", "c", "h"})
        if isinstance(obj, dict) and "g" in obj:
            fields |= {"g"}
        wire = _envelope(obj, cls.TYPE, fields)
        kind = wire["k"]
        if type(kind) is not str or not 0 < len(kind) <= 32:
            raise BulkError(f"{cls.TYPE}: field 'k' must be a short string")
        size = _int(wire, "n", 1, MAX_SIZE, cls.TYPE)
        chunk_size = _int(wire, "c", MIN_CHUNK_SIZE, MAX_CHUNK_SIZE, cls.TYPE)
        if chunk_count(size, chunk_size) > MAX_CHUNKS:
            raise BulkError(f"{cls.TYPE}: {size} bytes in {chunk_size}-byte chunks is too many")
        return cls(
            transfer_id=_bytes(wire, "x", ID_SIZE, cls.TYPE),
            kind=kind,
            size=size,
            chunk_size=chunk_size,
            sha256=_bytes(wire, "h", SHA256_SIZE, cls.TYPE),
            group_key=_bytes(wire, "g", GROUP_KEY_SIZE, cls.TYPE) if "g" in wire else None,
        )


@dataclass(frozen=True)
class BulkState:
    """terminal → host, the answer to an offer. Accepted: ``{"x", "a": true, "r": held runs
    [start, length, ...], "m": more runs left off}`` — a left-off run only under-reports
    (the host re-sends chunks the terminal then ignores). Refused: ``{"x", "a": false,
    "r": [], "m": false, "why": one of REFUSALS}``."""

    TYPE: ClassVar[str] = "bulk.state"
    transfer_id: bytes
    accepted: bool
    held: tuple[Range, ...] = ()
    more: bool = False
    reason: str | None = None

    def to_wire(self) -> dict[str, Any]:
        wire = _head(self.TYPE) | {
            "x": self.transfer_id,
            "a": self.accepted,
            "r": flatten(self.held),
            "m": self.more,
        }
        if self.reason is not None:
            wire["why"] = self.reason
        return wire

    @classmethod
    def from_wire(cls, obj: object) -> BulkState:
        refused = isinstance(obj, dict) and obj.get("a") is False
        fields = frozenset({"x", "a", "r", "m"} | ({"why"} if refused else set()))
        wire = _envelope(obj, cls.TYPE, fields)
        accepted = _bool(wire, "a", cls.TYPE)
        return cls(
            transfer_id=_bytes(wire, "x", ID_SIZE, cls.TYPE),
            accepted=accepted,
            held=tuple(parse_runs(wire["r"], None, f"{cls.TYPE} 'r'")),
            more=_bool(wire, "m", cls.TYPE),
            reason=None if accepted else _choice(wire, "why", REFUSALS, cls.TYPE),
        )


@dataclass(frozen=True)
class BulkStatus:
    """host → terminal: which chunks do you lack? ``{"x"}``."""

    TYPE: ClassVar[str] = "bulk.status"
    transfer_id: bytes

    def to_wire(self) -> dict[str, Any]:
        return _head(self.TYPE) | {"x": self.transfer_id}

    @classmethod
    def from_wire(cls, obj: object) -> BulkStatus:
        wire = _envelope(obj, cls.TYPE, frozenset({"x"}))
        return cls(_bytes(wire, "x", ID_SIZE, cls.TYPE))


@dataclass(frozen=True)
class BulkMissing:
    """terminal → host, the answer to a status while chunks are lacking: ``{"x", "r": missing
    runs, "m": more runs left off (send these, then ask again), "n": chunks held}``."""

    TYPE: ClassVar[str] = "bulk.missing"
    transfer_id: bytes
    missing: tuple[Range, ...]
    more: bool
    held: int

    def to_wire(self) -> dict[str, Any]:
        return _head(self.TYPE) | {
            "x": self.transfer_id,
            "r": flatten(self.missing),
            "m": self.more,
            "n": self.held,
        }

    @classmethod
    def from_wire(cls, obj: object) -> BulkMissing:
        wire = _envelope(obj, cls.TYPE, frozenset({"x", "r", "m", "n"}))
        return cls(
            transfer_id=_bytes(wire, "x", ID_SIZE, cls.TYPE),
            missing=tuple(parse_runs(wire["r"], None, f"{cls.TYPE} 'r'")),
            more=_bool(wire, "m", cls.TYPE),
            held=_int(wire, "n", 0, MAX_CHUNKS, cls.TYPE),
        )


@dataclass(frozen=True)
class BulkDone:
    """terminal → host once every chunk is held and the SHA-256 checked: ``{"x", "r": "ok" |
    "sha-mismatch" (the spool was discarded; offer again) | "store-error" | "no-space"}``."""

    TYPE: ClassVar[str] = "bulk.done"
    transfer_id: bytes
    outcome: str

    @property
    def ok(self) -> bool:
        return self.outcome == DONE_OK

    def to_wire(self) -> dict[str, Any]:
        return _head(self.TYPE) | {"x": self.transfer_id, "r": self.outcome}

    @classmethod
    def from_wire(cls, obj: object) -> BulkDone:
        wire = _envelope(obj, cls.TYPE, frozenset({"x", "r"}))
        return cls(
            _bytes(wire, "x", ID_SIZE, cls.TYPE), _choice(wire, "r", DONE_OUTCOMES, cls.TYPE)
        )


@dataclass(frozen=True)
class BulkResult:
    """terminal → host, the installer's verdict: ``{"x", "ok": installed, "why": reason
    (≤ 200 characters, "" when installed)}``."""

    TYPE: ClassVar[str] = "bulk.result"
    transfer_id: bytes
    installed: bool
    reason: str = ""

    def to_wire(self) -> dict[str, Any]:
        return _head(self.TYPE) | {"x": self.transfer_id, "ok": self.installed, "why": self.reason}

    @classmethod
    def from_wire(cls, obj: object) -> BulkResult:
        wire = _envelope(obj, cls.TYPE, frozenset({"x", "ok", "why"}))
        reason = wire["why"]
        if type(reason) is not str or len(reason) > MAX_REASON or not reason.isprintable():
            raise BulkError(f"{cls.TYPE}: field 'why' must be printable text ≤ {MAX_REASON}")
        return cls(_bytes(wire, "x", ID_SIZE, cls.TYPE), _bool(wire, "ok", cls.TYPE), reason)


@dataclass(frozen=True)
class BulkChunk:
    """host → terminal on the bulk lane: msgpack ``[tag, index, data]``; tag = u32
    :func:`chunk_tag` of the transfer id, index = chunk number from 0, data = ``bin``.
    Overhead for 1024 data bytes and index ≥ 256: fixarray 1 + uint32 5 + uint16 3 + bin16
    header 3 = 12 bytes (tests/unit/test_link_bulk_messages.py measures it)."""

    TYPE: ClassVar[str] = "bulk.chunk"
    tag: int
    index: int
    data: bytes = field(repr=False)

    def to_wire(self) -> list[Any]:
        return [self.tag, self.index, self.data]

    @classmethod
    def from_wire(cls, obj: object) -> BulkChunk:
        if not isinstance(obj, list) or len(obj) != 3:
            raise BulkError(f"{cls.TYPE}: expected an array [tag, index, data]")
        tag, index, data = obj
        if type(tag) is not int or not 0 <= tag < 1 << 32:
            raise BulkError(f"{cls.TYPE}: tag is not a u32")
        if type(index) is not int or not 0 <= index < MAX_CHUNKS:
            raise BulkError(f"{cls.TYPE}: index is not in 0..{MAX_CHUNKS - 1}")
        if type(data) is not bytes or not 0 < len(data) <= MAX_CHUNK_SIZE:
            raise BulkError(f"{cls.TYPE}: data is not 1..{MAX_CHUNK_SIZE} bytes")
        return cls(tag, index, data)


BulkMessage = BulkOffer | BulkState | BulkStatus | BulkMissing | BulkDone | BulkResult | BulkChunk

_BY_TYPE: dict[str, Any] = {
    cls.TYPE: cls for cls in (BulkOffer, BulkState, BulkStatus, BulkMissing, BulkDone, BulkResult)
}


def bulk_from_wire(obj: object) -> BulkMessage:
    """Any bulk message from what msgpack unpacked: an array is a chunk, a map is dispatched
    on ``"t"``. Raises BulkError."""
    if isinstance(obj, list):
        return BulkChunk.from_wire(obj)
    if not isinstance(obj, dict):
        raise BulkError(f"bulk message: expected a map or an array, got {type(obj).__name__}")
    kind = obj.get("t")
    cls = _BY_TYPE.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise BulkError(f"bulk message: unknown type {kind!r}")
    message: BulkMessage = cls.from_wire(obj)
    return message
