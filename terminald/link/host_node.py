"""The back office's end of one serial line, pure: one session and transport per terminal.

A line may carry several terminals (RS-485 multi-drop). For each address the host runs the
KK handshake (it is the initiator and holds each terminal's public key), then a
:class:`Transport` per session. Output is taken round-robin over the terminals, one frame at
a time, so one terminal's bulk transfer cannot starve another's status request; broadcast
frames (bulk chunks for every terminal at once) are interleaved with them.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass, field

from terminald.link import hello
from terminald.link.frame import FROM_TERMINAL, Channel, Frame, FrameDecoder, encode_frame
from terminald.link.session import Initiator, Session, SessionError
from terminald.link.transport import Lane, Transport, TransportConfig

logger = logging.getLogger(__name__)

HANDSHAKE_RETRY_S = 1.0
# NO_SESSION is unauthenticated: it is believed only from a terminal that has sent no
# authenticated record for this long (a terminal that lost our session cannot send any,
# and it says NO_SESSION at most once a second; a restart takes longer than that).
NO_SESSION_QUIET_S = 1.0
HELLO_TURN_FRAMES = 2  # a handshake message 2 is short; two frame times and a margin
INBOX_MESSAGES = 1024
BROADCAST_FRAMES = 64


@dataclass
class Peer:
    address: int
    public_key: bytes
    initiator: Initiator | None = None
    session: Session | None = None
    transport: Transport | None = None
    handshake_due: float = 0.0
    wanted: bool = False  # connect() was asked and the session is not up yet
    problem: str | None = None
    terminal_id: str | None = None
    sessions: int = 0
    heard: float = float("-inf")  # when the last authenticated record arrived
    # The terminal answered the minimal hello since connect(): it is there, at this address
    # and baud, so a handshake that fails is a key mismatch (a hint for the error message;
    # unauthenticated, so it decides nothing).
    hello_replied: bool = False
    ignored_no_session: int = 0
    plain: deque[bytes] = field(default_factory=deque)


class HostNode:
    def __init__(
        self, host_private: bytes, terminals: dict[int, bytes], config: TransportConfig
    ) -> None:
        self._private = host_private
        self.config = config
        self.peers = {a: Peer(a, key) for a, key in terminals.items()}
        self.decoder = FrameDecoder()
        self.inbox: deque[tuple[int, Lane, bytes]] = deque()
        self.broadcast_frames: deque[bytes] = deque()
        self._turn = 0
        self.dropped = 0
        # Half duplex (RS-485): after a handshake message 1 the line is the terminal's until
        # its message 2 arrives or this time passes.
        self._hello_until = 0.0
        self._hello_from: int | None = None
        self._broadcast_first = False

    # -- sessions ------------------------------------------------------------------------

    def connect(self, address: int, now: float) -> None:
        """Start (or restart) the handshake with ``address``."""
        peer = self.peers[address]
        peer.wanted = True
        peer.handshake_due = now
        peer.hello_replied = False

    def session_up(self, address: int) -> bool:
        return self.peers[address].transport is not None

    def _handshake(self, peer: Peer, now: float) -> None:
        # A fresh Initiator each time: a terminal refuses a re-sent message 1 as a replay.
        peer.initiator = Initiator(self._private, peer.public_key, hello.initiator_payload())
        message = hello.encode(hello.HelloKind.HANDSHAKE_1, peer.initiator.first_message())
        if not peer.hello_replied:  # 7 bytes: tells "no answer" from "keys do not match"
            request = hello.encode(hello.HelloKind.REQUEST)
            peer.plain.append(encode_frame(Frame(peer.address, Channel.HELLO, request)))
        peer.plain.append(encode_frame(Frame(peer.address, Channel.HELLO, message)))
        peer.handshake_due = now + HANDSHAKE_RETRY_S
        if self.config.half_duplex:
            self._hello_until = now + HELLO_TURN_FRAMES * self.config.max_frame_time + 0.1
            self._hello_from = peer.address

    # -- input ---------------------------------------------------------------------------

    def on_bytes(self, data: bytes, now: float) -> None:
        for frame in self.decoder.feed(data):
            if not frame.address & FROM_TERMINAL:
                continue  # our own frames echoed on a two-wire bus, or another host
            peer = self.peers.get(frame.address & ~FROM_TERMINAL)
            if peer is None:
                continue
            if frame.channel == Channel.HELLO:
                self._on_hello(peer, frame.payload, now)
            elif frame.channel == Channel.SESSION:
                self._on_record(peer, frame, now)

    def _on_hello(self, peer: Peer, payload: bytes, now: float) -> None:
        try:
            message = hello.decode(payload)
        except hello.HelloError as exc:
            peer.problem = f"hello: {exc}"
            return
        if message.kind is hello.HelloKind.NO_SESSION:
            if peer.session is not None and now - peer.heard < NO_SESSION_QUIET_S:
                peer.ignored_no_session += 1  # forged: the terminal still answers us
                return
            # The terminal lost our session (it restarted): handshake again.
            peer.session = peer.transport = None
            peer.wanted = True
            peer.handshake_due = now
            return
        if message.kind is hello.HelloKind.REPLY:
            peer.hello_replied = True
            return
        if message.kind is not hello.HelloKind.HANDSHAKE_2 or peer.initiator is None:
            return
        try:
            session, payload = peer.initiator.finish(message.body)
            peer.terminal_id = hello.parse_responder_payload(payload).terminal_id
        except (SessionError, hello.HelloError) as exc:
            peer.problem = str(exc)
            # The initiator is kept: this message 2 may be forged, or the late answer to an
            # earlier attempt, and the genuine one may follow.
            logger.warning("event=link_handshake_failed address=%d problem=%r", peer.address, exc)
            return
        peer.initiator = None
        if self._hello_from == peer.address:
            self._hello_until, self._hello_from = 0.0, None
        peer.session = session
        peer.transport = Transport(self.config, now)
        peer.wanted = False
        peer.problem = None
        peer.heard = now  # message 2 is authenticated too
        peer.sessions += 1

    def _on_record(self, peer: Peer, frame: Frame, now: float) -> None:
        if peer.session is None or peer.transport is None:
            return
        try:
            plaintext = peer.session.open(frame.header(), frame.payload)
        except SessionError as exc:
            peer.problem = str(exc)
            return
        peer.heard = now
        for lane, message in peer.transport.on_segment(plaintext, now):
            if len(self.inbox) >= INBOX_MESSAGES:
                self.dropped += 1
                continue
            self.inbox.append((peer.address, lane, message))

    # -- output --------------------------------------------------------------------------

    def send(self, address: int, lane: Lane, message: bytes) -> None:
        transport = self.peers[address].transport
        if transport is None:
            raise SessionError(f"no session with terminal {address}")
        transport.send(lane, message)

    def line_busy(self, now: float) -> bool:
        """Half duplex: a terminal holds the line (it was handed the turn, or owes the
        answer to a handshake), so nothing may be sent to anyone: on one RS-485 pair a
        second talker would collide. Never in full duplex."""
        if not self.config.half_duplex:
            return False
        if now < self._hello_until:
            return True
        return any(
            p.transport is not None and not p.transport.holds_turn(now) for p in self.peers.values()
        )

    def take_frames(self, now: float, limit: int) -> list[bytes]:
        if self.line_busy(now):
            return []
        if self.config.half_duplex:
            limit = 1  # one frame, then look again: a POLL may have handed the line over
        out: list[bytes] = []
        # Broadcast frames and the terminals' sessions take turns, one frame each, so a
        # broadcast is never starved by polls and a request waits at most one frame.
        self._broadcast_first = not self._broadcast_first
        if self._broadcast_first and self.broadcast_frames:
            out.append(self.broadcast_frames.popleft())
            if len(out) >= limit:
                return out
        peers = list(self.peers.values())
        for peer in peers:
            if peer.wanted and now >= peer.handshake_due:
                self._handshake(peer, now)  # first try, or no answer: a fresh Initiator
                if self.config.half_duplex:
                    out.append(peer.plain.popleft())
                    return out  # the line is that terminal's until it answers
            while peer.plain and len(out) < limit:
                out.append(peer.plain.popleft())
        for i in range(len(peers)):
            if len(out) >= limit:
                break
            peer = peers[(self._turn + i) % len(peers)]
            if peer.transport is None or peer.session is None:
                continue
            if self.config.half_duplex and self.broadcast_frames and not peer.transport.has_data():
                continue  # no idle turnarounds while a broadcast waits for the line
            for segment in peer.transport.poll(now, limit - len(out)):
                header = Frame(peer.address, Channel.SESSION, b"").header()
                record = peer.session.seal(header, segment)
                out.append(encode_frame(Frame(peer.address, Channel.SESSION, record)))
        self._turn = (self._turn + 1) % max(1, len(peers))
        while self.broadcast_frames and len(out) < limit:
            out.append(self.broadcast_frames.popleft())
        return out

    def next_deadline(self) -> float | None:
        deadlines = [self._hello_until] if self._hello_until else []
        for peer in self.peers.values():
            if peer.plain or self.broadcast_frames:
                return 0.0
            if peer.wanted:
                deadlines.append(peer.handshake_due)
            if peer.transport is not None:
                d = peer.transport.next_deadline()
                if d is not None:
                    deadlines.append(d)
        return min(deadlines) if deadlines else None
