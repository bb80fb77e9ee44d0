"""Property tests: unauthenticated bytes on the HELLO and SESSION channels never raise
anything but the documented errors and never change or stop the established session."""

from __future__ import annotations

import contextlib

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from terminald.link import hello
from terminald.link.hello import HelloError, HelloKind, SessionSlot
from terminald.link.keys import LinkKeyError, generate_private, parse_terminals, public_of
from terminald.link.session import Initiator, Session, SessionError
from tests.fuzzing import FUZZ

pytestmark = pytest.mark.fuzz

HOST, TERMINAL = generate_private(), generate_private()
HEADER = bytes([1, 5, 1])
REPLY_HEADER = bytes([1, 0x85, 1])


def established() -> tuple[SessionSlot, Session]:
    """A slot with a live session, and the host's side of it."""
    slot = SessionSlot(TERMINAL, public_of(HOST), "gate-east", address=5, rate=1e9, burst=10**9)
    initiator = Initiator(HOST, public_of(TERMINAL), hello.initiator_payload())
    reply = slot.handle(hello.encode(HelloKind.HANDSHAKE_1, initiator.first_message()), 0.0)
    assert reply is not None
    host, _ = initiator.finish(hello.decode(reply).body)
    assert slot.open(HEADER, host.seal(HEADER, b"first")) == b"first"
    return slot, host


SLOT, HOST_SESSION = established()

hello_payloads = st.one_of(
    st.binary(max_size=400),
    st.builds(lambda kind, body: bytes([kind]) + body, st.integers(0, 7), st.binary(max_size=320)),
)


@FUZZ
@given(payload=hello_payloads)
def test_hello_decode_raises_only_hello_error(payload: bytes) -> None:
    try:
        decoded = hello.decode(payload)
    except HelloError:
        return
    assert hello.encode(decoded.kind, decoded.body) == payload


@FUZZ
@given(
    steps=st.lists(
        st.one_of(
            st.tuples(st.just("hello"), hello_payloads),
            st.tuples(st.just("record"), st.binary(max_size=3), st.binary(max_size=80)),
            st.tuples(st.just("handshake"), st.binary(min_size=48, max_size=120)),
        ),
        max_size=8,
    ),
    now=st.floats(-1e9, 1e9, allow_nan=False),
)
def test_unauthenticated_input_never_changes_the_live_session(
    steps: list[tuple[object, ...]], now: float
) -> None:
    live = SLOT.current
    assert live is not None
    received, sent = live.last_received, live.last_sent
    for step in steps:
        try:
            if step[0] == "hello":
                answer = SLOT.handle(step[1], now)  # type: ignore[arg-type]
                assert answer is None or hello.decode(answer).kind in (
                    HelloKind.REPLY,
                    HelloKind.HANDSHAKE_2,
                )
            elif step[0] == "record":
                SLOT.open(step[1], step[2])  # type: ignore[arg-type]
            else:
                SLOT.on_handshake(step[1], now)  # type: ignore[arg-type]
        except (HelloError, SessionError):
            pass
        assert SLOT.current is live and SLOT.pending is None
        assert (live.last_received, live.last_sent) == (received, sent)
    # ... and the genuine host is still heard, in both directions.
    assert SLOT.open(HEADER, HOST_SESSION.seal(HEADER, b"still here")) == b"still here"
    assert HOST_SESSION.open(REPLY_HEADER, SLOT.seal(REPLY_HEADER, b"yes")) == b"yes"


@FUZZ
@given(at=st.integers(0, 40), xor=st.integers(1, 255), cut=st.integers(0, 40))
def test_a_damaged_record_is_refused_and_the_next_good_one_opens(
    at: int, xor: int, cut: int
) -> None:
    live = SLOT.current
    assert live is not None
    record = bytearray(HOST_SESSION.seal(HEADER, bytes(17)))  # 41 bytes
    damaged = bytearray(record)
    damaged[at] ^= xor
    for bad in (bytes(damaged), bytes(record[:cut])):
        before = live.last_received
        # Raising a counter byte to a higher value still fails the tag; lowering it is a
        # replay. Either way nothing is accepted and nothing changes.
        with pytest.raises(SessionError):
            SLOT.open(HEADER, bad)
        assert live.last_received == before
    assert SLOT.open(HEADER, bytes(record)) == bytes(17)


msgpack_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**64 - 1), st.text(max_size=80)),
    lambda inner: st.lists(inner, max_size=20) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=12,
)
packed_maps = st.dictionaries(st.sampled_from(["link", "id", "v"]), msgpack_values, max_size=4).map(
    lambda fields: bytes(msgpack.packb(fields))
)


@FUZZ
@given(data=st.one_of(st.binary(max_size=300), packed_maps))
def test_handshake_payload_parsers_raise_only_hello_error(data: bytes) -> None:
    for parse in (hello.parse_initiator_payload, hello.parse_responder_payload):
        with contextlib.suppress(HelloError):
            parse(data)


@FUZZ
@given(
    text=st.one_of(
        st.text(max_size=300),
        st.builds(
            lambda address, key, name: f'[terminals.{address}]\nkey = "{key}"\nname = {name}\n',
            st.text(max_size=6),
            st.text(max_size=50),
            st.text(max_size=20),
        ),
    )
)
def test_terminals_file_parser_raises_only_link_key_error(text: str) -> None:
    try:
        terminals = parse_terminals(text, "terminals.toml")
    except LinkKeyError:
        return
    assert all(1 <= address <= 0x7E for address in terminals)
