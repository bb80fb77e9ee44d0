"""The back office's end of one serial line, as a library: a gateway makes one
:class:`HostLink` per line and talks to every terminal on it.

Requests are numbered and matched with their replies; bulk transfers (revocation
snapshots, enrolment sets, configurations) are pushed to one terminal or broadcast to
several, with progress reported through a callback. Everything here runs in the caller's
thread beside the port's two threads; the line's state lives in a pure
:class:`~terminald.link.host_node.HostNode` guarded by the port's lock.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Final, TypeVar

from terminald.backends.link_port import LinkPort, serial_opener
from terminald.link import messages as m
from terminald.link import wire
from terminald.link.bulk_errors import BulkError
from terminald.link.bulk_messages import (
    BulkChunk,
    BulkDone,
    BulkMissing,
    BulkResult,
    BulkState,
    BulkStatus,
)
from terminald.link.bulk_plan import BroadcastPlan
from terminald.link.bulk_sender import BulkSender, Outcome
from terminald.link.frame import BROADCAST, Channel, Frame, encode_frame
from terminald.link.host_node import HostNode
from terminald.link.transport import Lane, TransportError
from terminald.link.tuning import transport_config
from terminald.store.link_keys import HostKeys

logger = logging.getLogger("terminald.host")

CONNECT_TIMEOUT_S: Final = 10.0
# Bulk bytes kept queued in the transport ahead of the line: enough to fill the window.
BULK_AHEAD: Final = 64 * 1024
# Events kept in ``HostLink.events`` (newest); a gateway that keeps them all uses on_event.
EVENTS_KEPT: Final = 10_000
Progress = Callable[[int, int], None]
M = TypeVar("M", bound=m.Message)


def _lane_of(message: wire.Any) -> Lane:
    """Chunks and the status request that follows them go on the bulk lane, in order, so
    the terminal answers the status only after every chunk sent before it; the offer goes
    on the interactive lane."""
    return Lane.BULK if isinstance(message, BulkChunk | BulkStatus) else Lane.INTERACTIVE


def _stale(
    reply: BulkState | BulkMissing | BulkDone | BulkResult, current: bytes, address: int
) -> bool:
    """A reply to another (earlier) transfer: a late copy the terminal sent again after that
    transfer ended here. Dropped, not an error: it must not end the transfer under way."""
    if reply.transfer_id == current:
        return False
    logger.info(
        "event=host_stale_bulk_reply address=%d transfer=%s", address, reply.transfer_id.hex()
    )
    return True


class HostError(Exception):
    """A terminal did not answer, refused, or the line is down; the message says which."""


class HostLink:
    """``keys``: the back office's key directory (``terminald host keys init``)."""

    def __init__(
        self,
        port: Path,
        keys: HostKeys,
        *,
        baud: int = 115200,
        rs485: bool = False,
        rts: bool = True,
        timeout: float = CONNECT_TIMEOUT_S,
    ):
        """``rs485``: half duplex, one terminal talking at a time; ``rts``: with it, drive
        the transceiver from RTS through the kernel's RS-485 mode (false for a transceiver
        that switches by itself, or a test line)."""
        self.timeout = timeout  # a handshake's or a request's wait, unless one is given
        terminals = {a: t.public_key for a, t in keys.terminals.items()}
        config = transport_config(baud, initiator=True, half_duplex=rs485)
        self.node = HostNode(keys.host_private, terminals, config)
        opener = serial_opener(port, baud, rs485=rs485 and rts)
        self.port = LinkPort(opener, self.node, name="host", on_input=self._heard)
        self.keys = keys
        self._input = threading.Condition()
        self._ids = itertools.count(1)
        self._replies: dict[tuple[int, int], m.Message] = {}
        self._awaited: set[tuple[int, int]] = set()  # only these replies are kept
        self._bulk: dict[int, list[wire.Any]] = {}
        # Unsolicited, in arrival order; the newest EVENTS_KEPT (a gateway runs for months).
        # A list, not a deque: callers iterate it while the reader thread appends.
        self.events: list[tuple[int, m.Event]] = []
        self.on_event: Callable[[int, m.Event], None] | None = None
        # A terminal's own request (age.query): called on the port's reader thread, outside
        # every lock, with the address; it answers with ``send`` (none set: dropped).
        self.on_request: Callable[[int, m.Message], None] | None = None
        # The last transfers' state machines (figures for benchmarks and gateways).
        self.last_sender: BulkSender | None = None
        self.last_plan: BroadcastPlan | None = None

    def __enter__(self) -> HostLink:
        self.port.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self.port.stop()

    # -- input (the port's reader thread) ------------------------------------------------

    def _heard(self) -> None:
        with self.port.lock:
            inbox = list(self.node.inbox)
            self.node.inbox.clear()
        for address, _lane, data in inbox:
            try:
                message = wire.unpack(data, m.Direction.TERMINAL_TO_HOST)
            except (m.MessageError, BulkError) as exc:
                logger.warning("event=host_bad_message address=%d problem=%r", address, str(exc))
                continue
            if isinstance(message, m.Message) and message.ROLE is m.Role.REQUEST:
                handler = self.on_request
                try:
                    if handler is not None:
                        handler(address, message)
                except Exception:  # a gateway's bug must not end the port's reader thread
                    logger.exception("event=host_request_failed address=%d", address)
                continue
            with self._input:
                if isinstance(message, m.Event):
                    self.events.append((address, message))
                    if len(self.events) > EVENTS_KEPT + EVENTS_KEPT // 10:  # trim now and then
                        del self.events[: len(self.events) - EVENTS_KEPT]
                    if self.on_event is not None:
                        self.on_event(address, message)
                elif isinstance(message, m.Message):
                    if (address, message.id) in self._awaited:  # else late: its wait ended
                        self._replies[(address, message.id)] = message
                else:
                    self._bulk.setdefault(address, []).append(message)
                self._input.notify_all()

    def _wait(self, until: Callable[[], bool], deadline: float) -> bool:
        with self._input:
            while not until():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._input.wait(min(left, 0.1))
        return True

    # -- sessions and requests -----------------------------------------------------------

    def connect(self, address: int, timeout: float | None = None) -> m.HelloReply:
        """Handshake with terminal ``address`` (if not up) and ask its hello."""
        self.open_session(address, timeout)
        hello = m.Hello(id=0, protocol=1, software="terminald-host")
        return self.request(address, hello, m.HelloReply, timeout)

    def open_session(self, address: int, timeout: float | None = None) -> None:
        """Handshake with terminal ``address`` unless a session is up."""
        timeout = self.timeout if timeout is None else timeout
        if address not in self.node.peers:
            raise HostError(
                f"terminal {address} is not in the key directory: "
                "terminald host keys add --address N PUBKEY"
            )
        if not self.port.wait_open(min(timeout, 5.0)):
            raise HostError(f"serial port: {self.port.problem or 'did not open'}")
        deadline = time.monotonic() + timeout
        with self.port.lock:
            if not self.node.session_up(address):
                self.node.connect(address, time.monotonic())
        self.port.wake()
        if not self._wait(lambda: self.node.session_up(address), deadline):
            peer = self.node.peers[address]
            if peer.problem:
                why = peer.problem
            elif peer.hello_replied:
                why = (
                    "it answers at this address but refused the handshake: its [link] host_key "
                    "is not this directory's host key (terminald host keys show), or the key "
                    f"recorded for terminal {address} is not its key (terminald keys show)"
                )
            else:
                why = "no answer: wrong address, port or baud?"
            raise HostError(f"terminal {address}: no session within {timeout:g} s ({why})")

    def request(
        self, address: int, message: m.Message, reply: type[M], timeout: float | None = None
    ) -> M:
        """Send a request and wait for its reply; HostError for an ``error`` or silence."""
        timeout = self.timeout if timeout is None else timeout
        number = next(self._ids) & 0xFFFFFFFF
        request = dataclasses.replace(message, id=number)
        key = (address, number)
        with self._input:
            self._awaited.add(key)
        try:
            self._send(address, request.LANE, wire.pack(request))
            if not self._wait(lambda: key in self._replies, time.monotonic() + timeout):
                raise HostError(f"terminal {address}: no answer to {request.TYPE} in {timeout:g} s")
        finally:
            with self._input:
                self._awaited.discard(key)
        with self._input:
            answer = self._replies.pop(key)
        if isinstance(answer, m.Error):
            raise HostError(
                f"terminal {address} refused {request.TYPE}: {answer.code}: {answer.reason}"
            )
        if not isinstance(answer, reply):
            raise HostError(f"terminal {address}: {answer.TYPE} is no answer to {request.TYPE}")
        return answer

    def send(self, address: int, message: m.Message) -> None:
        """Send a reply or an event to ``address`` without waiting (on its own lane);
        HostError without a session or when the message is out of bounds."""
        try:
            data = wire.pack(message)
        except m.MessageError as exc:
            raise HostError(f"terminal {address}: {exc.reason}") from None
        self._send(address, message.LANE, data)

    def _send(self, address: int, lane: Lane, data: bytes) -> None:
        with self.port.lock:
            try:
                self.node.send(address, lane, data)
            except TransportError as exc:
                raise HostError(f"terminal {address}: {exc}") from None
            except Exception as exc:  # no session
                raise HostError(f"terminal {address}: {exc}") from None
        self.port.wake()

    # -- bulk ----------------------------------------------------------------------------

    def _bulk_replies(self, address: int) -> list[wire.Any]:
        with self._input:
            return self._bulk.pop(address, [])

    def push(
        self,
        address: int,
        kind: str,
        data: bytes,
        *,
        progress: Progress | None = None,
        timeout: float = 3600.0,
    ) -> Outcome:
        """Send ``data`` (a signed object of ``kind``) to one terminal; resumes across
        line cuts and new sessions until installed, refused, or ``timeout``."""
        sender = BulkSender(data, kind, os.urandom(8))
        self.last_sender = sender
        self._bulk_replies(address)  # a late copy from an earlier transfer is not for us
        deadline = time.monotonic() + timeout
        session = self.node.peers[address].sessions
        while sender.outcome is None:
            if time.monotonic() > deadline:
                sender.fail(f"no outcome within {timeout:g} s")
                break
            if not self.node.session_up(address):
                try:
                    self.open_session(address, min(CONNECT_TIMEOUT_S, deadline - time.monotonic()))
                except HostError as exc:
                    logger.info("event=host_reconnect address=%d problem=%r", address, str(exc))
                    continue
            if self.node.peers[address].sessions != session:
                session = self.node.peers[address].sessions
                sender.start()  # a new session: offer again, the terminal says what it holds
            self._feed(address, sender.next_message)
            for reply in self._bulk_replies(address):
                if isinstance(reply, BulkState | BulkMissing | BulkDone | BulkResult):
                    if _stale(reply, sender.offer.transfer_id, address):
                        continue
                    sender.on_reply(reply)
            if progress is not None:
                p = sender.progress
                progress(p.acknowledged, p.total)
            self._wait(lambda: address in self._bulk, time.monotonic() + 0.1)
        assert sender.outcome is not None
        return sender.outcome

    def _feed(self, address: int, next_message: Callable[[], wire.Any | None]) -> None:
        """Queue what a sender (or a broadcast plan, for one terminal) has to send, keeping
        about BULK_AHEAD bytes in that terminal's transport."""
        while True:
            with self.port.lock:
                peer = self.node.peers[address]
                if peer.transport is None or peer.transport.queued(Lane.BULK) > BULK_AHEAD:
                    return
                message = next_message()
                if message is None:
                    return
                lane = _lane_of(message)
                try:
                    peer.transport.send(lane, wire.pack(message))
                except TransportError as exc:
                    raise HostError(f"terminal {address}: {exc}") from None
            self.port.wake()

    def broadcast(
        self,
        addresses: list[int],
        kind: str,
        data: bytes,
        *,
        progress: Progress | None = None,
        timeout: float = 3600.0,
    ) -> dict[int, Outcome | None]:
        """Send ``data`` once to every terminal in ``addresses`` on this line; each then
        reports what it lacks and only that is repeated."""
        for address in addresses:
            self.open_session(address)
        header = Frame(BROADCAST, Channel.BROADCAST, b"").header()
        plan = BroadcastPlan(data, kind, os.urandom(8), os.urandom(32), addresses, header)
        self.last_plan = plan
        for address in addresses:
            self._bulk_replies(address)  # late copies from an earlier transfer
        deadline = time.monotonic() + timeout
        while not plan.finished and time.monotonic() < deadline:
            for address in addresses:
                self._feed(address, functools.partial(plan.next_unicast, address))
                for reply in self._bulk_replies(address):
                    if isinstance(reply, BulkState | BulkMissing | BulkDone | BulkResult):
                        if _stale(reply, plan.offer.transfer_id, address):
                            continue
                        plan.on_reply(address, reply)
            with self.port.lock:
                while len(self.node.broadcast_frames) < 4:
                    payload = plan.next_broadcast()
                    if payload is None:
                        break
                    frame = Frame(BROADCAST, Channel.BROADCAST, payload)
                    self.node.broadcast_frames.append(encode_frame(frame))
            self.port.wake()
            if progress is not None:
                p = plan.progress
                progress(p.acknowledged, p.total)
            self._wait(lambda: any(a in self._bulk for a in addresses), time.monotonic() + 0.05)
        for address in addresses:
            if plan.outcomes.get(address) is None:
                plan.lost(address, f"no outcome within {timeout:g} s")
        return plan.outcomes
