"""Link messages: every type round-trips; every malformed input is a MessageError that
says what was wrong (and keeps the request id when it could be read)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from terminald.link import messages as m
from terminald.link.messages_base import Role
from tests.fuzzing import FUZZ

from .link_message_examples import EXAMPLES, ROW

DOCS = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"
H2T, T2H = m.Direction.HOST_TO_TERMINAL, m.Direction.TERMINAL_TO_HOST


def raw(msg: m.Message) -> dict[str, Any]:
    value: dict[str, Any] = msgpack.unpackb(m.encode(msg), raw=False)
    return value


def pack(value: object) -> bytes:
    data: bytes = msgpack.packb(value, use_bin_type=True)
    return data


def reason_of(data: bytes, sender: m.Direction | None = None) -> m.MessageError:
    with pytest.raises(m.MessageError) as caught:
        m.decode(data, sender)
    return caught.value


def test_every_registered_type_has_an_example() -> None:
    assert set(EXAMPLES) == set(m.REGISTRY)
    assert all(t == EXAMPLES[t].TYPE for t in EXAMPLES)


@pytest.mark.parametrize("kind", sorted(EXAMPLES))
def test_round_trip(kind: str) -> None:
    msg = EXAMPLES[kind]
    data = m.encode(msg)
    assert m.decode(data) == msg
    assert m.decode(data, msg.DIRECTION) == msg
    envelope = raw(msg)
    assert (envelope["v"], envelope["t"], envelope["id"]) == (1, kind, msg.id)


def test_requests_name_registered_replies_of_the_other_direction() -> None:
    for cls in m.REGISTRY.values():
        for reply in cls.REPLIES:
            assert m.REGISTRY[reply].ROLE is Role.REPLY
            assert m.REGISTRY[reply].DIRECTION is not cls.DIRECTION
        if cls.CHANGES_STATE:
            assert cls.ROLE is Role.REQUEST and cls.DIRECTION is H2T


def test_state_changing_messages_are_the_expected_ones() -> None:
    changing = {t for t, cls in m.REGISTRY.items() if cls.CHANGES_STATE}
    assert changing == {"time", "mode", "test", "restart", "audit.ack"}


def test_audit_rows_go_on_the_bulk_lane_and_the_rest_interactive() -> None:
    bulk = {t for t, cls in m.REGISTRY.items() if cls.LANE is m.Lane.BULK}
    assert bulk == {"audit.rows"}


def test_replies_to_pairs_a_request_with_its_reply_or_error() -> None:
    status = EXAMPLES["status"]
    assert m.replies_to(status, EXAMPLES["status.reply"])
    assert m.replies_to(status, m.error_reply(status.id, m.REFUSED, "no"))
    assert not m.replies_to(status, m.error_reply(status.id + 1, m.REFUSED, "no"))
    assert not m.replies_to(status, m.ModeReply(id=status.id, mode="normal"))
    assert not m.replies_to(EXAMPLES["status.reply"], EXAMPLES["status"])


def test_error_reply_cuts_a_long_reason_to_fit() -> None:
    reply = m.error_reply(3, m.INTERNAL, "x" * 10_000)
    assert m.decode(m.encode(reply)) == reply and len(reply.reason) == 4096


# --- malformed input -------------------------------------------------------------------

WRONG: dict[type, object] = {
    str: 5,
    bytes: "text",
    int: "1",
    bool: 1,
    float: "x",
    type(None): [1],
    list: {"a": 1},
    dict: [1],
}


def field_cases() -> list[tuple[str, str]]:
    return [(t, name) for t, cls in sorted(m.REGISTRY.items()) for name in cls.SPEC]


@pytest.mark.parametrize(("kind", "name"), field_cases())
def test_a_field_of_the_wrong_type_is_named(kind: str, name: str) -> None:
    msg = EXAMPLES[kind]
    body = raw(msg)
    body[name] = WRONG[type(body[name])]
    error = reason_of(pack(body))
    assert error.reason.startswith(f"{kind}.{name}"), error.reason
    assert (error.msg_id, error.msg_type) == (msg.id, kind)


@pytest.mark.parametrize(("kind", "name"), field_cases())
def test_a_missing_field_is_named(kind: str, name: str) -> None:
    body = raw(EXAMPLES[kind])
    del body[name]
    assert reason_of(pack(body)).reason == f"{kind}: missing field(s) {name}"


@pytest.mark.parametrize("kind", sorted(EXAMPLES))
def test_an_unknown_field_is_refused(kind: str) -> None:
    body = raw(EXAMPLES[kind])
    body["colour"] = "red"
    assert reason_of(pack(body)).reason == f"{kind}: unknown field(s) 'colour'"


@pytest.mark.parametrize(
    ("envelope", "expected"),
    [
        ({"v": 2, "t": "status", "id": 1}, "message version 2 is not supported (want 1)"),
        ({"v": "1", "t": "status", "id": 1}, "message version a string is not supported"),
        ({"v": True, "t": "status", "id": 1}, "message version a boolean is not supported"),
        ({"t": "status", "id": 1}, "message version nil is not supported"),
        ({"v": 1, "id": 1}, "t: must be the type as a string, got nil"),
        ({"v": 1, "t": b"status", "id": 1}, "t: must be the type as a string, got a bytes"),
        ({"v": 1, "t": "launch", "id": 1}, "unknown message type launch"),
        ({"v": 1, "t": "status"}, "missing field id"),
        ({"v": 1, "t": "status", "id": -1}, "id: must be an integer 0..4294967295, got an integer"),
        ({"v": 1, "t": "status", "id": 2**32}, "id: must be an integer"),
        (
            {"v": 1, "t": "status", "id": True},
            "id: must be an integer 0..4294967295, got a boolean",
        ),
        ({"v": 1, "t": "status", "id": 1.0}, "id: must be an integer 0..4294967295, got a float"),
    ],
)
def test_the_envelope_is_checked(envelope: dict[str, object], expected: str) -> None:
    assert reason_of(pack(envelope)).reason.startswith(expected)


def test_an_unknown_type_keeps_the_id_for_the_error_reply() -> None:
    error = reason_of(pack({"v": 1, "t": "launch", "id": 77}))
    assert error.msg_id == 77


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"", "not one msgpack value: Unpack failed: incomplete input"),
        (b"\xc1", "not one msgpack value: not msgpack (a reserved byte)"),
        (pack({"v": 1, "t": "status", "id": 1}) + b"\x00", "bytes left over after the message"),
        (pack([1, 2]), "a message is a msgpack map, got a list"),
        (pack(7), "a message is a msgpack map, got an integer"),
        (pack(None), "a message is a msgpack map, got nil"),
        (pack({1: 2}), "not allowed for map key"),
        (b"\x81\xa1v\xa2\xff\xfe", "a string is not valid UTF-8"),
        (b"\xd6\xff" + bytes(4), "exceeds max_ext_len"),  # a msgpack timestamp
        (b"\x91" * 5000, "not one msgpack value"),  # deep nesting: bounded, not a crash
        (b"\xdd\xff\xff\xff\xff", "exceeds max_array_len"),  # a 4 G-item array header
        (b"\xdf\x00\x01\x00\x00", "exceeds max_map_len"),
    ],
)
def test_bad_msgpack_is_refused(data: bytes, expected: str) -> None:
    assert expected in reason_of(data).reason


def test_an_oversized_message_is_refused_before_unpacking() -> None:
    data = pack({"v": 1, "t": "time", "id": 1, "object": bytes(m.MAX_MESSAGE_SIZE), "force": False})
    assert "more than the 262144 allowed" in reason_of(data).reason


@pytest.mark.parametrize(
    ("kind", "name", "value", "expected"),
    [
        ("test", "duration_ms", 0, "test.duration_ms: must be 1..10000, got 0"),
        ("test", "duration_ms", 10_001, "must be 1..10000"),
        ("test", "output", "door", "test.output: must be one of relay, leds, buzzer, got door"),
        ("time", "object", bytes(1025), "time.object: must be at most 1024 bytes, got 1025"),
        ("time.nonce.reply", "nonce", bytes(15), "must be 16..16 bytes, got 15"),
        ("hello", "protocol", 0, "hello.protocol: must be 1..65535"),
        ("hello", "software", "x" * 65, "at most 64 characters, got 65"),
        ("hello", "software", "a\x00b", "must be printable text"),
        ("hello.reply", "terminal", "-bad", "hello.reply.terminal: does not match"),
        ("hello.reply", "capabilities", ["x"] * 33, "at most 32 items, got 33"),
        ("hello.reply", "capabilities", ["bulk", 5], "hello.reply.capabilities[1]: must be a str"),
        ("status.reply", "clock", float("nan"), "must be a finite float"),
        ("status.reply", "clock", -1.0, "status.reply.clock: must be 0..2.53402e+11"),
        ("status.reply", "link", {"Bad Key": 1}, "status.reply.link key: does not match"),
        ("status.reply", "link", {"x": -1}, "status.reply.link.x: must be 0.."),
        ("audit.pull", "max_rows", 257, "audit.pull.max_rows: must be 1..256"),
        ("audit.rows", "gap", {"first": 1}, "audit.rows.gap: missing field(s) last"),
        ("audit.ack", "cursor", 2**64, "not one msgpack value"),  # msgpack has no u65
    ],
)
def test_bounds_are_checked(kind: str, name: str, value: object, expected: str) -> None:
    body = raw(EXAMPLES[kind])
    body[name] = value
    try:
        data = pack(body)
    except OverflowError:  # the packer itself refuses 2**64: the decoder never sees it
        data = pack(body | {name: 0})[:-1] + b"\xcf"  # a u64 marker cut short
    assert expected in reason_of(data).reason


def row_value(**change: object) -> dict[str, Any]:
    body = raw(m.Event(id=1, row=ROW))
    row: dict[str, Any] = body["row"]
    row.update(change)
    return body


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"at": "yesterday"}, "event.row.at: not an ISO 8601 time"),
        ({"at": "2026-11-30T08:00:00"}, "event.row.at: an ISO 8601 time needs its zone"),
        ({"serial": "12a"}, "event.row.serial: does not match"),
        ({"serial": "9" * 50}, "event.row.serial: at most 49 characters"),
        ({"kind": "x" * 33}, "event.row.kind: at most 32 characters, got 33"),
        ({"label": "a\nb"}, "event.row.label: must be printable text"),
        ({"evidence": {"challenge": b"", "signature": b""}}, "missing field(s) certificate"),
        ({"evidence": {"challenge": b"", "signature": b"", "certificate": bytes(8193)}}, "8192"),
    ],
)
def test_audit_rows_are_checked_inside(change: dict[str, object], expected: str) -> None:
    assert expected in reason_of(pack(row_value(**change))).reason


def test_a_message_of_the_other_direction_is_refused() -> None:
    error = reason_of(m.encode(EXAMPLES["status.reply"]), H2T)
    assert error.reason == "status.reply travels terminal→host, not host→terminal"
    assert error.msg_id == 2
    assert m.decode(m.encode(EXAMPLES["status"]), H2T) == EXAMPLES["status"]


def test_encode_refuses_what_decode_would() -> None:
    expected = "test.duration_ms: must be 1..10000, got 0"
    with pytest.raises(m.MessageError, match=re.escape(expected)):
        m.encode(m.Test(id=1, output="relay", duration_ms=0))
    with pytest.raises(m.MessageError, match=re.escape("mode.id: must be 0..4294967295")):
        m.encode(m.SetMode(id=-1, mode="normal"))
    with pytest.raises(m.MessageError, match=re.escape("mode.mode: must be one of")):
        m.encode(m.SetMode(id=1, mode="party"))


def test_encode_refuses_an_oversized_message() -> None:
    big = m.AuditRow(seq=1, at=ROW.at, terminal="t", kind="x", evidence=ROW.evidence)
    rows = tuple(big for _ in range(m.MAX_AUDIT_ROWS))
    with pytest.raises(m.MessageError, match=re.escape("more than 262144")):
        m.encode(m.AuditRows(id=1, rows=rows, next=1, more=False))


def test_fit_rows_keeps_an_audit_answer_under_its_budget() -> None:
    rows = [ROW] * m.MAX_AUDIT_ROWS
    count = m.fit_rows(rows)
    assert 0 < count < len(rows)
    reply = m.AuditRows(id=1, rows=tuple(rows[:count]), next=41, more=True)
    assert len(m.encode(reply)) <= m.MAX_ROWS_BYTES + 100
    assert m.fit_rows([ROW], budget=10) == 1  # one row always goes
    assert m.fit_rows([]) == 0


def test_registering_a_type_twice_or_with_a_spec_typo_fails_at_import() -> None:
    from dataclasses import dataclass

    from terminald.link.messages_schema import U32, spec

    with pytest.raises(TypeError, match="registered twice"):

        @m.message
        @dataclass(frozen=True, kw_only=True)
        class Again(m.Message):
            TYPE = "status"
            DIRECTION, ROLE, REPLIES = H2T, Role.REQUEST, ("status.reply",)

    with pytest.raises(TypeError, match="fields"):

        @m.message
        @dataclass(frozen=True, kw_only=True)
        class Typo(m.Message):
            TYPE = "typo"
            DIRECTION, ROLE = T2H, Role.EVENT
            SPEC = spec(cuont=U32)
            count: int


# --- docs/protocol.md lists every message -------------------------------------------------


def test_the_protocol_document_lists_every_message_with_its_fields() -> None:
    text = DOCS.read_text()
    section = text[text.index("## 4. Messages") : text.index("## 5.")]
    for kind, cls in m.REGISTRY.items():
        rows = [line for line in section.splitlines() if line.startswith(f"| `{kind}` ")]
        assert len(rows) == 1, f"docs/protocol.md §4 has no single row for {kind}"
        for name in cls.SPEC:
            assert re.search(rf"`{re.escape(name)}`", rows[0]), f"{kind}: {name} not listed"


# --- fuzz -------------------------------------------------------------------------------


@pytest.mark.fuzz
@FUZZ
@given(st.binary(max_size=2048))
def test_decode_of_arbitrary_bytes_raises_only_message_error(data: bytes) -> None:
    try:
        msg = m.decode(data)
    except m.MessageError as exc:
        assert exc.reason
    else:
        assert m.decode(m.encode(msg)) == msg


MSGPACK_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats()
    | st.text(max_size=40)
    | st.binary(max_size=40),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


@pytest.mark.fuzz
@FUZZ
@given(st.sampled_from(sorted(EXAMPLES)), st.text(max_size=12), MSGPACK_VALUES)
def test_decode_of_mutated_messages_raises_only_message_error(
    kind: str, name: str, value: object
) -> None:
    body = raw(EXAMPLES[kind])
    fields = [k for k in body if k not in ("v", "t")]
    target = fields[len(name) % len(fields)] if name.isdigit() or not name else name
    body[target] = value
    try:
        msg = m.decode(pack(body))
    except m.MessageError as exc:
        assert exc.reason
    else:
        assert m.decode(m.encode(msg)) == msg
