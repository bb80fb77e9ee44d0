"""The terminal's end of the link, pure: frames in, frames out, messages to the service.

It answers only frames addressed to it (or broadcast), drops every frame a terminal sent
(the top bit: another terminal's reply on a shared RS-485 pair), gives an unauthenticated
peer nothing but the minimal hello (docs/protocol.md §2), runs the KK handshake through a
:class:`SessionSlot`, and carries messages over a :class:`Transport` that lives as long as
its session (a new session starts new sequence spaces; a bulk transfer then resumes from
the receiver's bitmap, not from transport state).

Broadcast-channel frames are handed to the service as they are (the bulk layer opens them
with the transfer's group key). Nothing here reads the clock: ``now`` comes in.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass, field

from terminald.link import hello
from terminald.link.frame import (
    BROADCAST,
    FROM_TERMINAL,
    Channel,
    Frame,
    FrameDecoder,
    encode_frame,
)
from terminald.link.session import SessionError
from terminald.link.transport import Lane, Transport, TransportConfig

logger = logging.getLogger(__name__)

INBOX_MESSAGES = 1024  # delivered messages waiting for the service (bulk chunks ~1 KB each)
PLAIN_FRAMES = 8  # hello replies waiting to go out
NO_SESSION_EVERY_S = 1.0
# Refused unauthenticated input is logged at most this often (with a count): alternating
# two malformed frames otherwise wrote a log line per frame, hundreds a second, into the
# journal, whose rate limit then drops the daemon's other messages.
PROBLEM_LOG_EVERY_S = 10.0


@dataclass
class NodeStats:
    refused_records: int = 0
    refused_handshakes: int = 0
    handshakes: int = 0
    sessions: int = 0
    inbox_dropped: int = 0
    not_for_us: int = 0
    broadcast: int = 0
    last_problem: str | None = None


@dataclass
class TerminalNode:
    address: int
    slot: hello.SessionSlot
    transport_config: TransportConfig
    decoder: FrameDecoder = field(default_factory=FrameDecoder)
    stats: NodeStats = field(default_factory=NodeStats)

    def __post_init__(self) -> None:
        self.inbox: deque[tuple[Lane, bytes]] = deque()
        self.broadcasts: deque[Frame] = deque()
        self._plain: deque[bytes] = deque()
        self._transport: Transport | None = None
        self._session_id: str | None = None
        self._reply_address = self.address | FROM_TERMINAL
        self._no_session_after = 0.0
        self._log_after = float("-inf")
        self._unlogged = 0
        self._last_rx = float("-inf")
        # Half duplex: a plaintext answer (a hello reply, NO_SESSION) waits until the line
        # has been quiet this long, so it never talks over the rest of the host's burst.
        config = self.transport_config
        self._quiet_s = config.max_frame_time / 8 if config.half_duplex else 0.0

    # -- input ---------------------------------------------------------------------------

    def on_bytes(self, data: bytes, now: float) -> None:
        self._last_rx = now
        for frame in self.decoder.feed(data):
            self.on_frame(frame, now)

    def on_frame(self, frame: Frame, now: float) -> None:
        if frame.address & FROM_TERMINAL or frame.address not in (self.address, BROADCAST):
            self.stats.not_for_us += 1
            return
        if frame.channel == Channel.HELLO:
            if frame.address == self.address:  # never answer a broadcast: all would talk
                self._on_hello(frame, now)
        elif frame.channel == Channel.SESSION:
            if frame.address == self.address:
                self._on_record(frame, now)
        elif frame.channel == Channel.BROADCAST and frame.address == BROADCAST:
            self.stats.broadcast += 1
            if self.session_up and len(self.broadcasts) < INBOX_MESSAGES:
                self.broadcasts.append(frame)

    def _on_hello(self, frame: Frame, now: float) -> None:
        try:
            reply = self.slot.handle(frame.payload, now)
        except (hello.HelloError, SessionError) as exc:
            self.stats.refused_handshakes += 1
            self._problem(f"hello refused: {exc}", now)
            return
        if reply is not None:
            self.stats.handshakes += 1
            self._send_plain(reply)

    def _send_plain(self, payload: bytes) -> None:
        if len(self._plain) < PLAIN_FRAMES:
            self._plain.append(encode_frame(Frame(self._reply_address, Channel.HELLO, payload)))

    def _on_record(self, frame: Frame, now: float) -> None:
        try:
            plaintext = self.slot.open(frame.header(), frame.payload)
        except hello.NoSessionError:
            # A host that thinks it has a session we lost (we restarted): tell it, at most
            # once a second, so it handshakes again instead of waiting for timeouts.
            self.stats.refused_records += 1
            if now >= self._no_session_after:
                self._no_session_after = now + NO_SESSION_EVERY_S
                self._send_plain(hello.encode(hello.HelloKind.NO_SESSION))
            return
        except SessionError as exc:
            self.stats.refused_records += 1
            self._problem(f"record refused: {exc}", now)
            return
        self._follow_session(now)
        assert self._transport is not None
        for lane, message in self._transport.on_segment(plaintext, now):
            if len(self.inbox) >= INBOX_MESSAGES:
                self.stats.inbox_dropped += 1
                continue
            self.inbox.append((lane, message))

    def _follow_session(self, now: float) -> None:
        session = self.slot.current
        current = None if session is None else session.id
        if current != self._session_id:
            self._session_id = current
            self._transport = None if session is None else Transport(self.transport_config, now)
            self.stats.sessions += 1
            self.broadcasts.clear()

    def _problem(self, text: str, now: float) -> None:
        self.stats.last_problem = text
        if now < self._log_after:
            self._unlogged += 1
            return
        logger.info("event=link_input_refused problem=%r more=%d", text, self._unlogged)
        self._log_after, self._unlogged = now + PROBLEM_LOG_EVERY_S, 0

    # -- output --------------------------------------------------------------------------

    @property
    def transport(self) -> Transport | None:
        """The current session's transport; None before the first session."""
        return self._transport

    @property
    def session_up(self) -> bool:
        return self._transport is not None

    def send(self, lane: Lane, message: bytes) -> bool:
        """Queue a message for the back office; False when no session is up (dropped)."""
        if self._transport is None:
            return False
        self._transport.send(lane, message)
        return True

    def take_frames(self, now: float, limit: int) -> list[bytes]:
        out: list[bytes] = []
        quiet = now - self._last_rx >= self._quiet_s
        while self._plain and len(out) < limit and quiet:
            out.append(self._plain.popleft())
        session = self.slot.current
        if self._transport is None or session is None or len(out) >= limit:
            return out
        for segment in self._transport.poll(now, limit - len(out)):
            header = Frame(self._reply_address, Channel.SESSION, b"").header()
            record = session.seal(header, segment)
            out.append(encode_frame(Frame(self._reply_address, Channel.SESSION, record)))
        return out

    def next_deadline(self) -> float | None:
        if self._plain:
            return self._last_rx + self._quiet_s
        return None if self._transport is None else self._transport.next_deadline()
