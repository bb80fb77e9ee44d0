"""The link's session (Noise KK + counter records) and the HELLO channel's SessionSlot."""

from __future__ import annotations

import time

import pytest

from terminald.link import hello
from terminald.link.hello import (
    HelloError,
    HelloKind,
    NoSessionError,
    SessionSlot,
    TerminalInfo,
)
from terminald.link.keys import generate_private, public_of
from terminald.link.session import (
    MAX_HANDSHAKE_PAYLOAD,
    RECORD_OVERHEAD,
    Initiator,
    Session,
    SessionError,
    respond,
)

HEADER = bytes([1, 5, 1])  # version 1, terminal 5, channel SESSION
REPLY_HEADER = bytes([1, 0x85, 1])


class Keys:
    def __init__(self) -> None:
        self.host = generate_private()
        self.terminal = generate_private()
        self.host_public = public_of(self.host)
        self.terminal_public = public_of(self.terminal)


@pytest.fixture
def keys() -> Keys:
    return Keys()


def handshake(keys: Keys) -> tuple[Session, Session]:
    initiator = Initiator(keys.host, keys.terminal_public, b"host says")
    terminal, message_2, host_payload = respond(
        keys.terminal, keys.host_public, initiator.first_message(), b"terminal says"
    )
    host, terminal_payload = initiator.finish(message_2)
    assert (host_payload, terminal_payload) == (b"host says", b"terminal says")
    return host, terminal


def test_handshake_gives_both_sides_matching_keys_and_one_id(keys: Keys) -> None:
    host, terminal = handshake(keys)
    assert host.id == terminal.id and len(host.id) == 16
    record = host.seal(HEADER, b"to the terminal")
    assert len(record) == len(b"to the terminal") + RECORD_OVERHEAD == len(b"to the terminal") + 24
    assert terminal.open(HEADER, record) == b"to the terminal"
    assert host.open(REPLY_HEADER, terminal.seal(REPLY_HEADER, b"to the host")) == b"to the host"


def test_messages_are_48_bytes_plus_payload(keys: Keys) -> None:
    initiator = Initiator(keys.host, keys.terminal_public)
    message_1 = initiator.first_message()
    _, message_2, _ = respond(keys.terminal, keys.host_public, message_1)
    assert len(message_1) == len(message_2) == 48


def test_each_handshake_makes_new_keys(keys: Keys) -> None:
    first, _ = handshake(keys)
    second, terminal = handshake(keys)
    assert first.id != second.id
    with pytest.raises(SessionError, match="authentication"):
        terminal.open(HEADER, first.seal(HEADER, b"old session"))


def test_terminal_refuses_a_host_it_does_not_know(keys: Keys) -> None:
    stranger = generate_private()
    message_1 = Initiator(stranger, keys.terminal_public).first_message()
    with pytest.raises(SessionError, match="not from the configured back-office key"):
        respond(keys.terminal, keys.host_public, message_1)


def test_terminal_with_the_wrong_host_key_configured_refuses(keys: Keys) -> None:
    message_1 = Initiator(keys.host, keys.terminal_public).first_message()
    with pytest.raises(SessionError, match="message 1 failed authentication"):
        respond(keys.terminal, public_of(generate_private()), message_1)


def test_host_with_the_wrong_terminal_key_gets_no_session(keys: Keys) -> None:
    other_terminal = generate_private()
    initiator = Initiator(keys.host, public_of(other_terminal))
    # The real terminal (keys.terminal) cannot even read message 1 meant for another key.
    with pytest.raises(SessionError, match="failed authentication"):
        respond(keys.terminal, keys.host_public, initiator.first_message())


def test_host_refuses_a_second_message_of_another_handshake(keys: Keys) -> None:
    initiator = Initiator(keys.host, keys.terminal_public)
    initiator_1 = initiator.first_message()
    other = Initiator(keys.host, keys.terminal_public)
    _, foreign_2, _ = respond(keys.terminal, keys.host_public, other.first_message())
    with pytest.raises(SessionError, match="message 2 failed authentication"):
        initiator.finish(foreign_2)
    with pytest.raises(SessionError, match="message 2 failed authentication"):
        initiator.finish(foreign_2)  # refused again, but not spent: anyone can send one
    _, own_2, _ = respond(keys.terminal, keys.host_public, initiator_1)
    initiator.finish(own_2)
    with pytest.raises(SessionError, match="no handshake in progress"):
        initiator.finish(own_2)  # spent by the one that finished it


def test_only_the_terminal_whose_key_the_host_holds_can_answer(keys: Keys) -> None:
    message_1 = Initiator(keys.host, keys.terminal_public).first_message()
    impostor = generate_private()  # knows the host's public key, not the terminal's private
    with pytest.raises(SessionError, match="failed authentication"):
        respond(impostor, keys.host_public, message_1)


def test_malformed_handshake_messages_are_refused_by_length_first(keys: Keys) -> None:
    for size in (0, 47, 48 + MAX_HANDSHAKE_PAYLOAD + 1):
        with pytest.raises(SessionError, match=f"message 1 of {size} bytes"):
            respond(keys.terminal, keys.host_public, bytes(size))
    with pytest.raises(SessionError, match="malformed"):  # all-zero e: a low-order point
        respond(keys.terminal, keys.host_public, bytes(48))


def test_payload_and_key_sizes_are_checked(keys: Keys) -> None:
    with pytest.raises(SessionError, match="payload of 257 bytes"):
        Initiator(keys.host, keys.terminal_public, bytes(257))
    with pytest.raises(SessionError, match="private key is 32 bytes, got 31"):
        Initiator(keys.host[:31], keys.terminal_public)
    with pytest.raises(SessionError, match="public key is 32 bytes, got 33"):
        respond(keys.terminal, keys.host_public + b"x", bytes(48))


def test_first_message_is_written_once(keys: Keys) -> None:
    initiator = Initiator(keys.host, keys.terminal_public)
    initiator.first_message()
    with pytest.raises(SessionError, match="already written"):
        initiator.first_message()


def test_counters_strictly_increase_and_are_in_clear(keys: Keys) -> None:
    host, terminal = handshake(keys)
    records = [host.seal(HEADER, bytes([n])) for n in range(5)]
    assert [int.from_bytes(r[:8], "big") for r in records] == [0, 1, 2, 3, 4]
    assert host.last_sent == 4
    for n, record in enumerate(records):
        assert terminal.open(HEADER, record) == bytes([n])
    assert terminal.last_received == 4


def test_lost_records_are_skipped_over(keys: Keys) -> None:
    host, terminal = handshake(keys)
    records = [host.seal(HEADER, bytes([n])) for n in range(6)]
    assert terminal.open(HEADER, records[0]) == b"\x00"
    assert terminal.open(HEADER, records[4]) == b"\x04"  # 1-3 lost on the line
    assert terminal.open(HEADER, records[5]) == b"\x05"


def test_replayed_and_reordered_records_are_refused(keys: Keys) -> None:
    host, terminal = handshake(keys)
    first, second = host.seal(HEADER, b"a"), host.seal(HEADER, b"b")
    terminal.open(HEADER, second)
    for stale in (first, second):
        with pytest.raises(SessionError, match="replayed or stale"):
            terminal.open(HEADER, stale)
    assert terminal.last_received == 1


def test_tampered_records_are_refused_and_change_nothing(keys: Keys) -> None:
    host, terminal = handshake(keys)
    record = host.seal(HEADER, b"open the door")
    for at in (0, 7, 8, len(record) - 1):  # counter, ciphertext, tag
        bad = bytearray(record)
        bad[at] ^= 0x01
        with pytest.raises(SessionError):
            terminal.open(HEADER, bytes(bad))
    with pytest.raises(SessionError, match="authentication"):
        terminal.open(bytes([1, 6, 1]), record)  # the header is authenticated (AAD)
    assert terminal.last_received == -1
    assert terminal.open(HEADER, record) == b"open the door"


def test_truncated_records_are_refused(keys: Keys) -> None:
    host, terminal = handshake(keys)
    record = host.seal(HEADER, b"")
    assert len(record) == 24
    with pytest.raises(SessionError, match="shorter than 24"):
        terminal.open(HEADER, record[:23])
    with pytest.raises(SessionError, match="authentication"):
        terminal.open(HEADER, host.seal(HEADER, b"abc")[:-1])


def test_a_bad_header_length_is_refused(keys: Keys) -> None:
    host, _ = handshake(keys)
    with pytest.raises(SessionError, match="header is 3 bytes"):
        host.seal(b"\x01\x05", b"x")


def test_the_counter_is_never_reused_even_at_the_end(keys: Keys) -> None:
    host, terminal = handshake(keys)
    host._sent = 2**64 - 3  # as after ~10**19 records
    record = host.seal(HEADER, b"last")
    assert int.from_bytes(record[:8], "big") == 2**64 - 2
    with pytest.raises(SessionError, match="exhausted"):
        host.seal(HEADER, b"one more")
    assert host.last_sent == 2**64 - 2
    assert terminal.open(HEADER, record) == b"last"


def test_repr_and_errors_hold_no_key_material(keys: Keys) -> None:
    host, _ = handshake(keys)
    assert "id=" in repr(host) and keys.host.hex() not in repr(host)
    try:
        respond(
            keys.terminal, b"\x00" * 32, Initiator(keys.host, keys.terminal_public).first_message()
        )
    except SessionError as exc:
        text = str(exc)
    assert keys.terminal.hex() not in text and keys.host.hex() not in text


# ---- the terminal's slot -------------------------------------------------------------


def slot_for(keys: Keys, **kwargs: float) -> SessionSlot:
    return SessionSlot(keys.terminal, keys.host_public, "gate-east", address=5, **kwargs)  # type: ignore[arg-type]


def host_handshake(keys: Keys, slot: SessionSlot, now: float) -> tuple[Session, bytes]:
    initiator = Initiator(keys.host, keys.terminal_public, hello.initiator_payload())
    message_1 = initiator.first_message()
    reply = slot.handle(hello.encode(HelloKind.HANDSHAKE_1, message_1), now)
    assert reply is not None
    answer = hello.decode(reply)
    assert answer.kind is HelloKind.HANDSHAKE_2
    session, payload = initiator.finish(answer.body)
    assert hello.parse_responder_payload(payload) == TerminalInfo(1, "gate-east")
    return session, message_1


def test_slot_answers_a_hello_request_minimally(keys: Keys) -> None:
    slot = slot_for(keys)
    reply = slot.handle(hello.encode(HelloKind.REQUEST), 0.0)
    assert reply == b"\x02\x01\x05\x01"
    assert hello.decode_reply(hello.decode(reply).body) == hello.HelloReply(1, 5, True)


def test_slot_has_no_session_until_the_first_record_arrives(keys: Keys) -> None:
    slot = slot_for(keys)
    with pytest.raises(NoSessionError):
        slot.open(HEADER, bytes(40))
    host, _ = host_handshake(keys, slot, 0.0)
    assert slot.current is None and slot.pending is not None
    with pytest.raises(NoSessionError):
        slot.seal(REPLY_HEADER, b"too early")
    assert slot.open(HEADER, host.seal(HEADER, b"hello")) == b"hello"
    assert slot.current is not None and slot.pending is None
    assert host.open(REPLY_HEADER, slot.seal(REPLY_HEADER, b"hi")) == b"hi"


def test_a_replayed_message_1_does_not_displace_the_live_session(keys: Keys) -> None:
    slot = slot_for(keys)
    host, message_1 = host_handshake(keys, slot, 0.0)
    slot.open(HEADER, host.seal(HEADER, b"live"))
    live = slot.current
    with pytest.raises(SessionError, match="replay of a recent one"):
        slot.on_handshake(message_1, 10.0)
    assert slot.current is live and slot.pending is None
    # A replay older than the slot remembers is answered, but only as a pending session
    # nobody can use: the live session carries on.
    forgetful = slot_for(keys)
    forgetful.current = live
    forgetful.on_handshake(message_1, 10.0)
    assert forgetful.pending is not None
    assert forgetful.open(HEADER, host.seal(HEADER, b"still live")) == b"still live"
    assert forgetful.current is live


def test_a_genuine_new_handshake_takes_over_at_its_first_record(keys: Keys) -> None:
    slot = slot_for(keys)
    old, _ = host_handshake(keys, slot, 0.0)
    slot.open(HEADER, old.seal(HEADER, b"1"))
    new, _ = host_handshake(keys, slot, 5.0)
    assert slot.open(HEADER, old.seal(HEADER, b"in flight")) == b"in flight"
    assert slot.open(HEADER, new.seal(HEADER, b"new")) == b"new"
    assert slot.current is not None and slot.current.id == new.id
    with pytest.raises(SessionError):
        slot.open(HEADER, old.seal(HEADER, b"too late"))


def test_refused_handshakes_change_nothing(keys: Keys) -> None:
    slot = slot_for(keys)
    host, _ = host_handshake(keys, slot, 0.0)
    slot.open(HEADER, host.seal(HEADER, b"x"))
    live = slot.current
    stranger = Initiator(generate_private(), keys.terminal_public, hello.initiator_payload())
    with pytest.raises(SessionError, match="not from the configured back-office key"):
        slot.on_handshake(stranger.first_message(), 10.0)
    no_common = Initiator(keys.host, keys.terminal_public, hello.initiator_payload((7,)))
    with pytest.raises(SessionError, match="no common link version"):
        slot.on_handshake(no_common.first_message(), 20.0)
    bad_payload = Initiator(keys.host, keys.terminal_public, b"\xc1")
    with pytest.raises(SessionError, match="not msgpack"):
        slot.on_handshake(bad_payload.first_message(), 30.0)
    assert slot.current is live and slot.pending is None
    assert slot.refused_handshakes == 3


def test_handshakes_are_rate_limited(keys: Keys) -> None:
    slot = slot_for(keys, rate=1.0, burst=2)
    host_handshake(keys, slot, 100.0)
    host_handshake(keys, slot, 100.0)
    third = Initiator(keys.host, keys.terminal_public, hello.initiator_payload())
    message_1 = third.first_message()
    with pytest.raises(SessionError, match="rate"):
        slot.on_handshake(message_1, 100.5)
    assert slot.pending is not None and slot.refused_handshakes == 1
    host_handshake(keys, slot, 101.0)  # one token back after a second
    with pytest.raises(SessionError, match="rate"):  # a clock stepping back refills nothing
        slot.on_handshake(message_1, 50.0)
    slot.on_handshake(message_1, 102.0)  # the refused message was not remembered as seen


def test_hello_decoding_is_strict_and_bounded() -> None:
    cases = {
        b"": "empty",
        b"\x00": "unknown HELLO kind 0x00",
        b"\x06": "unknown HELLO kind 0x06",
        b"\x01x": "REQUEST carries no body",
        b"\x05\x00": "NO_SESSION carries no body",
        b"\x02\x01\x05": "REPLY body is 3 bytes, got 2",
        b"\x03" + bytes(47): "HANDSHAKE_1 of 47 bytes",
        b"\x04" + bytes(305): "more than 305",
    }
    for payload, problem in cases.items():
        with pytest.raises(HelloError, match=problem):
            hello.decode(payload)
    assert hello.decode(b"\x03" + bytes(304)).kind is HelloKind.HANDSHAKE_1
    with pytest.raises(HelloError, match="unknown bits"):
        hello.decode_reply(b"\x01\x05\x03")


def test_handshake_payloads_are_validated() -> None:
    assert hello.parse_initiator_payload(hello.initiator_payload()) == (1,)
    for bad in (b"\x90", b"\x80", b"\x81\xa4link\x90", b"\x81\xa4link\x91\xc3"):
        with pytest.raises(HelloError):
            hello.parse_initiator_payload(bad)
    with pytest.raises(HelloError, match="terminal id"):
        hello.responder_payload("")
    with pytest.raises(HelloError, match="not supported"):
        hello.parse_responder_payload(hello.responder_payload("t", version=9))


def test_benchmark_handshake_and_records(keys: Keys, capsys: pytest.CaptureFixture[str]) -> None:
    """Prints timings (no assertion on speed): handshake, seal and open of a 1 KB record."""
    rounds = 200
    start = time.perf_counter()
    for _ in range(rounds):
        handshake(keys)
    handshake_ms = (time.perf_counter() - start) / rounds * 1e3
    messages = [Initiator(keys.host, keys.terminal_public).first_message() for _ in range(rounds)]
    start = time.perf_counter()
    for message_1 in messages:
        respond(keys.terminal, keys.host_public, message_1)
    respond_ms = (time.perf_counter() - start) / rounds * 1e3
    host, terminal = handshake(keys)
    data = bytes(1024)
    records = []
    start = time.perf_counter()
    for _ in range(2000):
        records.append(host.seal(HEADER, data))
    seal_us = (time.perf_counter() - start) / 2000 * 1e6
    start = time.perf_counter()
    for record in records:
        terminal.open(HEADER, record)
    open_us = (time.perf_counter() - start) / 2000 * 1e6
    with capsys.disabled():
        print(
            f"\nlink session: handshake (both sides) {handshake_ms:.2f} ms, terminal's "
            f"side (respond) {respond_ms:.2f} ms; "
            f"1 KB record seal {seal_us:.1f} us, open {open_us:.1f} us"
        )
    assert terminal.last_received == 1999
