"""The host's and the terminal's nodes wired back to back (no line): handshake, messages
both ways, address filtering, a terminal restart answered with NO_SESSION."""

from __future__ import annotations

from terminald.link import hello, keys
from terminald.link.frame import BROADCAST, Channel, Frame, encode_frame
from terminald.link.host_node import HostNode
from terminald.link.terminal_node import TerminalNode
from terminald.link.transport import Lane
from terminald.link.tuning import transport_config

HOST = keys.generate_private()
TERMINAL = keys.generate_private()
OTHER = keys.generate_private()


def terminal(address: int = 5, private: bytes = TERMINAL) -> TerminalNode:
    slot = hello.SessionSlot(private, keys.public_of(HOST), "gate-5", address=address)
    return TerminalNode(address, slot, transport_config(115200, initiator=False, half_duplex=False))


def host(terminals: dict[int, bytes]) -> HostNode:
    return HostNode(HOST, terminals, transport_config(115200, initiator=True, half_duplex=False))


def pump(h: HostNode, ts: list[TerminalNode], now: float, rounds: int = 50) -> float:
    """Move frames both ways until quiet; every terminal hears the host and vice versa."""
    for _ in range(rounds):
        moved = False
        for frame in h.take_frames(now, 64):
            moved = True
            for t in ts:
                t.on_bytes(frame, now)
        for t in ts:
            for frame in t.take_frames(now, 64):
                moved = True
                h.on_bytes(frame, now)
        now += 0.05
        if not moved and all(t.next_deadline() is None for t in ts):
            break
    return now


def test_handshake_then_messages_both_ways() -> None:
    t = terminal()
    h = host({5: keys.public_of(TERMINAL)})
    h.connect(5, 0.0)
    now = pump(h, [t], 0.0)
    assert h.session_up(5)
    assert h.peers[5].terminal_id == "gate-5"
    h.send(5, Lane.INTERACTIVE, b"status please")
    now = pump(h, [t], now)
    assert t.session_up
    assert list(t.inbox) == [(Lane.INTERACTIVE, b"status please")]
    t.send(Lane.INTERACTIVE, b"all well")
    pump(h, [t], now)
    assert list(h.inbox) == [(5, Lane.INTERACTIVE, b"all well")]


def test_only_the_addressed_terminal_answers_on_a_shared_line() -> None:
    five, six = terminal(5), terminal(6, OTHER)
    h = host({5: keys.public_of(TERMINAL), 6: keys.public_of(OTHER)})
    h.connect(5, 0.0)
    now = pump(h, [five, six], 0.0)
    assert h.session_up(5) and not h.session_up(6)
    h.send(5, Lane.BULK, b"for five")
    pump(h, [five, six], now)
    assert [m for _, m in five.inbox] == [b"for five"]
    assert not six.inbox and not six.session_up
    assert six.stats.not_for_us > 0


def test_a_broadcast_hello_is_never_answered() -> None:
    t = terminal()
    t.on_bytes(
        encode_frame(Frame(BROADCAST, Channel.HELLO, hello.encode(hello.HelloKind.REQUEST))), 0
    )
    assert t.take_frames(0.0, 8) == []
    t.on_bytes(encode_frame(Frame(5, Channel.HELLO, hello.encode(hello.HelloKind.REQUEST))), 0)
    (reply,) = t.take_frames(0.0, 8)
    assert reply  # the minimal hello, and only to its own address


def test_a_restarted_terminal_says_no_session_and_the_host_handshakes_again() -> None:
    t = terminal()
    h = host({5: keys.public_of(TERMINAL)})
    h.connect(5, 0.0)
    now = pump(h, [t], 0.0)
    h.send(5, Lane.INTERACTIVE, b"one")
    now = pump(h, [t], now)
    restarted = terminal()
    now += 2.0  # a restart takes a while: the host believes NO_SESSION only after silence
    h.send(5, Lane.INTERACTIVE, b"two")
    now = pump(h, [restarted], now)
    assert h.peers[5].sessions == 2  # NO_SESSION, then a new handshake
    h.send(5, Lane.INTERACTIVE, b"three")
    pump(h, [restarted], now)
    assert [m for _, m in restarted.inbox][-1] == b"three"


def test_records_sealed_for_another_terminal_are_refused() -> None:
    five = terminal(5)
    impostor_host = HostNode(
        OTHER,
        {5: keys.public_of(TERMINAL)},
        transport_config(115200, initiator=True, half_duplex=False),
    )
    impostor_host.connect(5, 0.0)
    pump(impostor_host, [five], 0.0)
    assert not impostor_host.session_up(5)
    assert five.stats.refused_handshakes >= 1
    assert not five.session_up
