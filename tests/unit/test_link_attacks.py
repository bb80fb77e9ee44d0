"""Attacks on the link by a party on the wire without keys, and by a legitimate but buggy
back office (issue 10's break-it pass): each test shows one finding fixed."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from types import SimpleNamespace

import pytest

from terminald.daemon.link_install import NESTED_TOO_DEEPLY, validate_config_text
from terminald.daemon.link_service import LinkService, _verdict
from terminald.enrolment.errors import EnrolmentFormatError
from terminald.enrolment.source import parse_source_text
from terminald.link import hello, keys
from terminald.link.bulk_messages import BulkChunk, BulkOffer, BulkResult, BulkState, chunk_tag
from terminald.link.bulk_receiver import BulkReceiver
from terminald.link.frame import (
    BROADCAST,
    FROM_TERMINAL,
    Channel,
    Frame,
    FrameDecoder,
    encode_frame,
)
from terminald.link.session import Initiator, SessionError, respond
from terminald.link.transport import Lane
from tests.unit.link_bulk_support import MemoryStore
from tests.unit.test_link_nodes import HOST, TERMINAL, host, pump, terminal

NO_SESSION = encode_frame(
    Frame(5 | FROM_TERMINAL, Channel.HELLO, hello.encode(hello.HelloKind.NO_SESSION))
)


def test_a_forged_no_session_does_not_end_a_session_the_terminal_still_answers() -> None:
    t = terminal()
    h = host({5: keys.public_of(TERMINAL)})
    h.connect(5, 0.0)
    now = pump(h, [t], 0.0)
    h.send(5, Lane.INTERACTIVE, b"status please")
    h.on_bytes(NO_SESSION, now)  # anyone on the wire can send these 7 bytes
    assert h.session_up(5) and h.peers[5].sessions == 1
    now = pump(h, [t], now)
    assert [m for _, m in t.inbox] == [b"status please"]
    assert h.peers[5].sessions == 1 and not h.peers[5].wanted


def test_a_pushed_toml_nested_too_deeply_is_refused_not_raised(tmp_path: Path) -> None:
    deep = "a = " + "[" * 5000 + "]" * 5000  # tomllib recurses without a limit
    path = tmp_path / "terminald.toml"
    assert validate_config_text(deep, path, "gate-1") == [NESTED_TOO_DEEPLY]
    # Enrolment arrives as a signed set now; its source is TOML built in the back office.
    with pytest.raises(EnrolmentFormatError, match="nested too deeply"):
        parse_source_text(deep)


class _BrokenInstaller:
    def install_config(self, data: bytes) -> None:
        raise RuntimeError("a bug")


def test_an_installer_that_raises_still_gives_a_verdict_and_frees_the_receiver() -> None:
    receiver = BulkReceiver(MemoryStore(), _verdict(_BrokenInstaller()), max_size=1 << 20)  # type: ignore[arg-type]
    data = b"x" * 100
    offer = BulkOffer(b"12345678", "config", len(data), 64, hashlib.sha256(data).digest())
    receiver.on_message(offer, 0.0)
    receiver.on_message(BulkChunk(chunk_tag(offer.transfer_id), 0, data[:64]), 0.0)
    replies = receiver.on_message(BulkChunk(chunk_tag(offer.transfer_id), 1, data[64:]), 0.0)
    assert replies[-1] == BulkResult(offer.transfer_id, False, "internal error: RuntimeError")
    other = BulkOffer(b"87654321", "config", 5, 64, hashlib.sha256(b"other").digest())
    (state,) = receiver.on_message(other, 0.0)
    assert isinstance(state, BulkState) and state.accepted  # not "busy" for ever


def test_recorded_host_traffic_replayed_later_or_to_a_restarted_terminal_delivers_nothing() -> None:
    t = terminal()
    h = host({5: keys.public_of(TERMINAL)})
    recorded: list[bytes] = []
    sent = False
    h.connect(5, 0.0)
    now = 0.0
    for _ in range(40):  # pump() with a tap on the host's output
        for frame in h.take_frames(now, 64):
            recorded.append(frame)
            t.on_bytes(frame, now)
        for frame in t.take_frames(now, 64):
            h.on_bytes(frame, now)
        if h.session_up(5) and not sent:
            sent = True
            h.send(5, Lane.INTERACTIVE, b'{"t": "mode", "mode": "emergency_open"}')
        now += 0.05
    assert [m for _, m in t.inbox] == [b'{"t": "mode", "mode": "emergency_open"}']
    t.inbox.clear()
    restarted = terminal()
    for target in (t, restarted):  # the same terminal later, and after its restart
        for frame in recorded:
            target.on_bytes(frame, now)
        now += 5.0
        for frame in recorded:  # again, after the handshake rate limit refilled
            target.on_bytes(frame, now)
        assert not target.inbox
    assert restarted.slot.current is None  # a replayed message 1 is at most pending
    assert t.stats.refused_records > 0


def _handshake_1(frames: list[bytes]) -> bytes:
    """The HANDSHAKE_1 frame among the host's ``frames``."""
    for frame in frames:
        (decoded,) = FrameDecoder().feed(frame)
        if decoded.channel == Channel.HELLO and decoded.payload[0] == hello.HelloKind.HANDSHAKE_1:
            return frame
    raise AssertionError("no handshake message 1")


def test_an_old_message_1_replayed_mid_handshake_does_not_strand_the_host() -> None:
    # The attacker recorded a message 1 before the terminal restarted (its replay memory
    # is empty then) and replays it between the terminal's message 2 and the host's first
    # record: the genuine pending session must survive it.
    h = host({5: keys.public_of(TERMINAL)})
    h.connect(5, 0.0)
    old = _handshake_1(h.take_frames(0.0, 64))
    restarted = terminal()
    h2 = host({5: keys.public_of(TERMINAL)})  # the back office reconnects (a new process)
    h2.connect(5, 10.0)
    for frame in h2.take_frames(10.0, 64):
        restarted.on_bytes(frame, 10.0)
    restarted.on_bytes(old, 10.0)  # the replay
    for frame in restarted.take_frames(10.0, 64):
        h2.on_bytes(frame, 10.0)
    assert h2.session_up(5)
    h2.send(5, Lane.INTERACTIVE, b"status please")
    pump(h2, [restarted], 10.0)
    assert [m for _, m in restarted.inbox] == [b"status please"]


def test_a_restarted_terminal_with_a_planted_pending_session_still_says_no_session() -> None:
    t = terminal()
    h = host({5: keys.public_of(TERMINAL)})
    h.connect(5, 0.0)
    frames = h.take_frames(0.0, 64)
    old = _handshake_1(frames)  # recorded by the attacker
    for frame in frames:
        t.on_bytes(frame, 0.0)
    now = pump(h, [t], 0.0)
    h.send(5, Lane.INTERACTIVE, b"one")
    now = pump(h, [t], now)
    restarted = terminal()
    restarted.on_bytes(old, now)  # planted: a pending session nobody can use
    restarted.take_frames(now, 64)
    now += 2.0
    h.send(5, Lane.INTERACTIVE, b"two")
    now = pump(h, [restarted], now)
    assert h.peers[5].sessions == 2  # told NO_SESSION all the same, and handshook again
    h.send(5, Lane.INTERACTIVE, b"three")
    pump(h, [restarted], now)
    assert [m for _, m in restarted.inbox][-1] == b"three"


def test_alternating_malformed_frames_do_not_flood_the_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    t = terminal()
    short = encode_frame(Frame(5, Channel.HELLO, bytes([hello.HelloKind.HANDSHAKE_1]) + bytes(9)))
    odd = encode_frame(Frame(5, Channel.HELLO, bytes([0x7E])))
    with caplog.at_level(logging.INFO, logger="terminald.link.terminal_node"):
        for i in range(1000):  # ~2 s of line
            t.on_bytes(short if i % 2 else odd, i * 0.002)
    assert t.stats.refused_handshakes == 1000
    assert len(caplog.records) == 1 and t.stats.last_problem


def test_forged_broadcast_frames_are_counted_not_logged(caplog: pytest.LogCaptureFixture) -> None:
    node = terminal()
    receiver = BulkReceiver(MemoryStore(), lambda *_: None, max_size=1 << 20)
    service = LinkService(node, SimpleNamespace(on_input=None), None, receiver)  # type: ignore[arg-type]
    for _ in range(100):
        service._queue_bulk(Frame(BROADCAST, Channel.BROADCAST, bytes(60)))
    service._queue_bulk(None)  # type: ignore[arg-type]  # the stop marker
    with caplog.at_level(logging.INFO):
        service._work_bulk()
    assert service.counters["broadcast_refused"] == 100
    assert not caplog.records


def test_a_forged_message_2_does_not_spoil_the_hosts_handshake() -> None:
    t = terminal()
    h = host({5: keys.public_of(TERMINAL)})
    h.connect(5, 0.0)
    for frame in h.take_frames(0.0, 64):
        t.on_bytes(frame, 0.0)
    forged = hello.encode(hello.HelloKind.HANDSHAKE_2, bytes(range(64)))
    h.on_bytes(encode_frame(Frame(5 | FROM_TERMINAL, Channel.HELLO, forged)), 0.0)
    for frame in t.take_frames(0.0, 64):  # the genuine message 2, after the forged one
        h.on_bytes(frame, 0.0)
    assert h.session_up(5)
    h.send(5, Lane.INTERACTIVE, b"status please")
    pump(h, [t], 0.0)
    assert [m for _, m in t.inbox] == [b"status please"]


def test_an_initiator_survives_a_wrong_message_2_and_takes_the_right_one() -> None:
    initiator = Initiator(HOST, keys.public_of(TERMINAL), hello.initiator_payload())
    first = initiator.first_message()
    with pytest.raises(SessionError, match="handshake message 2"):
        initiator.finish(bytes(64))
    with pytest.raises(SessionError, match="failed authentication"):
        initiator.finish(bytes(range(64)))
    _session, second, _payload = respond(TERMINAL, keys.public_of(HOST), first)
    session, _ = initiator.finish(second)
    assert session.id


def test_a_late_message_2_for_an_earlier_attempt_does_not_spoil_the_current_one() -> None:
    # A slow line, or a terminal that was restarting: the host retried its handshake, and
    # the terminal answers both attempts, in order.
    t = terminal()
    h = host({5: keys.public_of(TERMINAL)})
    h.connect(5, 0.0)
    first = h.take_frames(0.0, 64)
    second = h.take_frames(1.0, 64)  # no answer within HANDSHAKE_RETRY_S: a new attempt
    for frame in first + second:
        t.on_bytes(frame, 1.5)
    for frame in t.take_frames(1.5, 64):
        h.on_bytes(frame, 1.5)
    assert h.session_up(5) and h.peers[5].problem is None
