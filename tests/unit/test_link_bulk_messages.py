"""The bulk.* messages on the wire: round trips, strict refusals, the chunk's overhead, fuzz."""

from __future__ import annotations

import contextlib
from typing import Any

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from terminald.link.bulk_errors import BulkError
from terminald.link.bulk_messages import (
    BulkChunk,
    BulkDone,
    BulkMessage,
    BulkMissing,
    BulkOffer,
    BulkResult,
    BulkState,
    BulkStatus,
    bulk_from_wire,
)
from terminald.link.bulk_ranges import MAX_RANGES, Bitmap, bounded_runs, parse_runs
from tests.fuzzing import FUZZ

X = bytes(range(8))
SHA = bytes(range(32))

SAMPLES: list[BulkMessage] = [
    BulkOffer(X, "revocation", 123_456, 1024, SHA),
    BulkOffer(X, "config", 1, 64, SHA, group_key=b"k" * 32),
    BulkState(X, True, ((0, 3), (10, 1)), more=True),
    BulkState(X, False, reason="no-space"),
    BulkStatus(X),
    BulkMissing(X, ((4, 2),), False, 117),
    BulkDone(X, "sha-mismatch"),
    BulkResult(X, False, "older than the installed version"),
    BulkChunk(0xDEADBEEF, 70_000, b"\x00" * 1024),
]


def roundtrip(message: BulkMessage) -> BulkMessage:
    return bulk_from_wire(msgpack.unpackb(msgpack.packb(message.to_wire())))


@pytest.mark.parametrize("message", SAMPLES, ids=lambda m: type(m).__name__)
def test_every_message_survives_msgpack(message: BulkMessage) -> None:
    assert roundtrip(message) == message


def test_the_group_key_is_not_in_the_repr() -> None:
    assert "kkkk" not in repr(SAMPLES[1])


def test_the_chunk_costs_twelve_bytes_on_1024() -> None:
    """The figure docs/protocol.md §5 gives: fixarray 1 + u32 tag 5 + u16 index 3 + bin16 3."""
    chunk = BulkChunk(0xDEADBEEF, 300, b"\xaa" * 1024)
    assert len(msgpack.packb(chunk.to_wire())) - 1024 == 12
    # The map form the brief sketched, for the record: 39 bytes.
    as_map = {"v": 1, "t": "bulk.chunk", "x": X, "i": 300, "d": chunk.data}
    assert len(msgpack.packb(as_map)) - 1024 == 39


def offer_wire(**changes: Any) -> dict[str, Any]:
    wire = BulkOffer(X, "revocation", 4096, 1024, SHA).to_wire()
    for key, value in changes.items():
        if value is None:
            del wire[key]
        else:
            wire[key] = value
    return wire


@pytest.mark.parametrize(
    ("changes", "fault"),
    [
        ({"v": 2}, "version"),
        ({"v": True}, "version"),
        ({"t": "bulk.state"}, "type"),
        ({"zz": 1}, "unknown fields"),
        ({"h": None}, "missing fields"),
        ({"x": b"short"}, "'x'"),
        ({"n": 0}, "'n'"),
        ({"n": True}, "'n'"),
        ({"n": 1 << 31}, "'n'"),
        ({"c": 63}, "'c'"),
        ({"k": ""}, "'k'"),
        ({"k": 5}, "'k'"),
        ({"g": b"x" * 31}, "'g'"),
        ({"n": 1 << 30, "c": 64}, "too many"),
        ({"id": -1}, "request id"),
    ],
)
def test_a_malformed_offer_is_refused_naming_the_fault(changes: dict[str, Any], fault: str) -> None:
    with pytest.raises(BulkError, match=fault):
        BulkOffer.from_wire(offer_wire(**changes))


def test_a_request_id_is_accepted() -> None:
    assert BulkOffer.from_wire(offer_wire(id=7)).size == 4096


@pytest.mark.parametrize(
    "wire",
    [
        {"v": 1, "t": "bulk.state", "x": X, "a": False, "r": [], "m": False},  # no why
        {"v": 1, "t": "bulk.state", "x": X, "a": False, "r": [], "m": False, "why": "meh"},
        {"v": 1, "t": "bulk.state", "x": X, "a": True, "r": [5, 1, 2, 1], "m": False},
        {"v": 1, "t": "bulk.state", "x": X, "a": True, "r": [0, 2, 2, 1], "m": False},  # touch
        {"v": 1, "t": "bulk.state", "x": X, "a": True, "r": [0, 0], "m": False},
        {"v": 1, "t": "bulk.state", "x": X, "a": True, "r": [0], "m": False},
        {"v": 1, "t": "bulk.state", "x": X, "a": True, "r": [0, 1] * 300, "m": False},
        {"v": 1, "t": "bulk.missing", "x": X, "r": [0, 1], "m": 1, "n": 0},
        {"v": 1, "t": "bulk.done", "x": X, "r": "fine"},
        {"v": 1, "t": "bulk.result", "x": X, "ok": True, "why": "a\nb"},
        {"v": 1, "t": "bulk.result", "x": X, "ok": True, "why": "a" * 201},
        {"v": 1, "t": "bulk.nope", "x": X},
        {"t": "bulk.status", "x": X},
        [1, 2],
        [1 << 32, 0, b"x"],
        [1, -1, b"x"],
        [1, 0, b""],
        [1, 0, "text"],
        "bulk.status",
    ],
)
def test_malformed_messages_are_refused(wire: object) -> None:
    with pytest.raises(BulkError):
        bulk_from_wire(wire)


def test_bitmap_runs_and_their_bound() -> None:
    bitmap = Bitmap(20)
    for index in (0, 1, 2, 5, 19):
        bitmap.add(index)
    assert list(bitmap.runs(held=True)) == [(0, 3), (5, 1), (19, 1)]
    assert list(bitmap.runs(held=False)) == [(3, 2), (6, 13)]
    assert Bitmap.from_bytes(20, bitmap.to_bytes()).held == 5
    with pytest.raises(BulkError):
        Bitmap.from_bytes(20, b"\xff\xff\xff")  # claims chunks 20..23
    with pytest.raises(BulkError):
        bitmap.add(20)
    sparse = Bitmap(4 * MAX_RANGES)
    for index in range(0, 4 * MAX_RANGES, 2):
        sparse.add(index)
    runs, more = bounded_runs(sparse.runs(held=True))
    assert len(runs) == MAX_RANGES and more
    assert parse_runs([0, 1, 5, 2], 7, "r") == [(0, 1), (5, 2)]
    with pytest.raises(BulkError):
        parse_runs([5, 3], 7, "r")


wire_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(1 << 64), max_value=1 << 64)
    | st.binary(max_size=40)
    | st.text(max_size=20)
    | st.sampled_from(["bulk.offer", "bulk.state", "bulk.missing", "bulk.result", "revocation"]),
    lambda inner: (
        st.lists(inner, max_size=6)
        | st.dictionaries(
            st.sampled_from(
                ["v", "t", "x", "k", "n", "c", "h", "g", "a", "r", "m", "why", "ok", "id"]
            ),
            inner,
            max_size=8,
        )
    ),
    max_leaves=20,
)


@pytest.mark.fuzz
@FUZZ
@given(wire_values)
def test_fuzz_from_wire_raises_only_bulk_error(obj: object) -> None:
    try:
        message = bulk_from_wire(obj)
    except BulkError:
        return
    assert roundtrip(message) == message


@pytest.mark.fuzz
@FUZZ
@given(st.binary(max_size=200))
def test_fuzz_from_wire_of_unpacked_bytes(data: bytes) -> None:
    try:
        obj = msgpack.unpackb(data, raw=False, strict_map_key=True)
    except Exception:
        return
    with contextlib.suppress(BulkError):
        bulk_from_wire(obj)
