"""The terminal's link to its back office, running beside the event loop.

Threads: the port's reader and writer (:mod:`terminald.backends.link_port`), a worker that
answers requests (status, time, mode, audit, tests: each through the daemon's operator,
which posts to the loop and waits with a timeout, so the loop never waits on the link),
and a bulk worker that takes chunks into the spool and installs what is complete (through
the same paths as the command line: ``RevocationStore.apply`` for revocation). A tap is
served while a transfer runs because nothing here runs on the loop.

What the daemon records reaches the back office as ``event`` messages as soon as the audit
writer has committed it (with its sequence number); with no session up, events are not
kept here: the back office pulls what it missed by cursor.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Final

from terminald.backends.link_port import LinkPort, serial_opener
from terminald.config import relay_wiring_mismatches
from terminald.daemon.link_handlers import LinkContext, answer, row_of
from terminald.daemon.link_install import LinkInstaller
from terminald.daemon.link_policy import (
    AgeQuestions,
    PartnerHandler,
    PresenceHandler,
    deliver,
)
from terminald.daemon.operator import Operator
from terminald.link import hello, wire
from terminald.link import messages as m
from terminald.link.bulk_errors import BulkError
from terminald.link.bulk_messages import BulkChunk, BulkOffer, BulkStatus
from terminald.link.bulk_receiver import BulkReceiver, InstallVerdict
from terminald.link.frame import Frame
from terminald.link.terminal_node import TerminalNode
from terminald.link.transport import Lane, TransportError
from terminald.link.tuning import transport_config
from terminald.store.audit import AuditEntry, AuditLog
from terminald.store.spool import Spool

if TYPE_CHECKING:
    from terminald.daemon.service import Daemon

logger = logging.getLogger("terminald.link")

SPOOL_NAME: Final = "link-spool"
EVENTS_QUEUED: Final = 256  # events waiting for the worker; more are dropped (pull has them)
BULK_QUEUED: Final = 2048
TICK_S: Final = 0.5
RESTART_GRACE_S: Final = 2.0  # time for the restart's ack to leave before the daemon stops


class LinkService:
    def __init__(
        self,
        node: TerminalNode,
        port: LinkPort,
        context: LinkContext,
        receiver: BulkReceiver,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
        spool: Spool | None = None,
    ) -> None:
        self.spool = spool
        self.wall = wall
        self.node = node
        self.port = port
        self.context = context
        self.receiver = receiver
        self.clock = clock
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._events: deque[m.Event] = deque()
        self._event_id = 0
        self._bulk: queue.Queue[BulkOffer | BulkStatus | BulkChunk | Frame | None] = queue.Queue(
            BULK_QUEUED
        )
        self._restart_after: str | None = None
        self._session: str | None = None
        self.counters: dict[str, int] = {
            "events_dropped": 0,
            "bad_messages": 0,
            "bulk_dropped": 0,
            "unencodable": 0,
            "broadcast_refused": 0,
            **AgeQuestions.COUNTERS,
        }
        self._asks = AgeQuestions(self._send_query, self.counters)
        # The policy's anti-passback inputs, set by the runtime; called on the link's worker
        # thread: (subject, "entry"|"exit", aware UTC time, the partner terminal's id), and
        # (partner terminal id, aware UTC time the back office last heard it = now − s).
        self.on_presence: PresenceHandler | None = None
        self.on_partner_seen: PartnerHandler | None = None
        port.on_input = self._wake.set
        self._threads = [
            threading.Thread(target=self._work, name="link-work", daemon=True),
            threading.Thread(target=self._work_bulk, name="link-bulk", daemon=True),
        ]

    # -- life ----------------------------------------------------------------------------

    def start(self) -> None:
        if self.spool is not None:
            try:  # partial transfers abandoned for two weeks, half-written files
                for path in self.spool.clean():
                    logger.info("event=link_spool_cleaned file=%s", path)
            except OSError as exc:
                logger.warning("event=link_spool_unreadable problem=%r", str(exc))
        self.port.start()
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        with contextlib.suppress(queue.Full):
            self._bulk.put_nowait(None)
        for thread in self._threads:
            if thread.is_alive():
                thread.join(3.0)
        self.port.stop()
        self.receiver.close()

    def figures(self) -> dict[str, int]:
        """Counters for ``status``: the link's, the node's and the port's."""
        stats = self.node.stats
        return {
            **self.counters,
            "bytes_in": self.port.bytes_in,
            "bytes_out": self.port.bytes_out,
            "sessions": stats.sessions,
            "handshakes": stats.handshakes,
            "refused_handshakes": stats.refused_handshakes,
            "refused_records": stats.refused_records,
            "frames_bad": self.node.decoder.stats.crc_errors + self.node.decoder.stats.malformed,
            "inbox_dropped": stats.inbox_dropped,
        }

    # -- from the audit writer's thread --------------------------------------------------

    def offer_rows(self, rows: list[tuple[int, AuditEntry]]) -> None:
        """Rows just committed to the trail, as events for the back office. Never waits."""
        if not self.node.session_up:
            return
        for seq, entry in rows:
            if len(self._events) >= EVENTS_QUEUED:
                self.counters["events_dropped"] += 1
                continue
            self._event_id = (self._event_id + 1) & 0xFFFFFFFF
            self._events.append(m.Event(id=self._event_id, row=row_of(seq, entry, evidence=False)))
        self._wake.set()

    # -- the policy's questions and the back office's policy events -----------------------

    def ask_age(
        self, issuer_key_id: bytes, serial: int, age: int, today: date, timeout_s: float
    ) -> m.AgeAnswer | None:
        """Ask the back office whether the holder of (issuer_key_id, serial) is at least
        ``age`` years old on ``today`` (the site's local date); wait at most ``timeout_s``.

        From the card worker thread, never the loop (it blocks). None when no session is
        up, ``MAX_ASKS`` already wait, the age is outside 1..150, or no answer came in time
        (a late one is dropped). Never raises. Only (issuer, serial, age, date) leave.
        """
        return self._asks.ask(issuer_key_id, serial, age, today, timeout_s)

    def _send_query(self, data: bytes) -> bool:
        with self.port.lock:
            try:
                sent = self.node.send(Lane.INTERACTIVE, data)
            except TransportError:  # the lane's queue is full: as good as no session
                return False
        self.port.wake()
        return sent

    def _on_policy_message(self, message: m.Message) -> bool:
        """Handle a host → terminal message that is not a request; False if not ours."""
        if isinstance(message, m.AgeReply):
            self._asks.settle(message)
            return True
        if isinstance(message, m.PresenceRelay | m.Partners):
            deliver(message, self.wall(), self.on_presence, self.on_partner_seen)
            return True
        return False

    # -- the request worker --------------------------------------------------------------

    def _send(self, message: wire.Any, lane: Lane | None = None) -> None:
        try:
            data = wire.pack(message)
        except m.MessageError as exc:
            # A reply or event the catalogue cannot carry is our bug, not the host's: never
            # let it end the drain (the requests after it would go unanswered); a reply
            # becomes an ``internal`` error so the host is not left waiting.
            self.counters["unencodable"] += 1
            logger.error("event=link_unencodable problem=%r", exc.reason)
            if not isinstance(message, m.Message) or message.ROLE is not m.Role.REPLY:
                return
            reason = f"the {message.TYPE} could not be encoded: {exc.reason}"
            message = m.error_reply(message.id, m.INTERNAL, reason)
            data = wire.pack(message)
        if lane is None:
            lane = message.LANE if isinstance(message, m.Message) else Lane.INTERACTIVE
        with self.port.lock:
            try:
                self.node.send(lane, data)
            except TransportError as exc:
                logger.warning("event=link_send_refused problem=%r", str(exc))
        self.port.wake()

    def _work(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(TICK_S)
            self._wake.clear()
            try:
                self._drain()
            except Exception:  # a bug must not end the link
                logger.exception("event=link_worker_failed")

    def _drain(self) -> None:
        with self.port.lock:
            inbox = list(self.node.inbox)
            self.node.inbox.clear()
            frames = list(self.node.broadcasts)
            self.node.broadcasts.clear()
            session = self.node.slot.current
        current = None if session is None else session.id
        if current != self._session:
            self._session = current
            logger.info("event=link_session session=%s", current or "none")
        for frame in frames:
            self._queue_bulk(frame)
        for _lane, data in inbox:
            self._handle(data)
        while self._events:
            self._send(self._events.popleft())
        if self._restart_after is not None:
            why, self._restart_after = self._restart_after, None
            self._flush(RESTART_GRACE_S)
            self.context.operator.restart(why)

    def _handle(self, data: bytes) -> None:
        try:
            message = wire.unpack(data, m.Direction.HOST_TO_TERMINAL)
        except m.MessageError as exc:
            self.counters["bad_messages"] += 1
            logger.info("event=link_bad_message problem=%r", exc.reason)
            if exc.msg_id is not None:
                self._send(m.error_reply(exc.msg_id, m.BAD_MESSAGE, exc.reason))
            return
        except BulkError as exc:
            self.counters["bad_messages"] += 1
            logger.info("event=link_bad_message problem=%r", str(exc))
            return
        if isinstance(message, BulkOffer | BulkStatus | BulkChunk):
            self._queue_bulk(message)
            return
        if not isinstance(message, m.Message) or self._on_policy_message(message):
            return
        if message.ROLE is not m.Role.REQUEST:
            return  # nothing else is for a terminal to answer
        self._send(answer(self.context, message))
        if isinstance(message, m.Restart):
            self._restart_after = "restart asked by the back office"

    def _flush(self, limit: float) -> None:
        """Wait (on this thread) until what was sent is acknowledged, at most ``limit``."""
        deadline = self.clock() + limit
        while self.clock() < deadline:
            with self.port.lock:
                transport = self.node.transport
                if transport is None or transport.idle():
                    return
            time.sleep(0.02)

    # -- the bulk worker -----------------------------------------------------------------

    def _queue_bulk(self, item: BulkOffer | BulkStatus | BulkChunk | Frame) -> None:
        try:
            self._bulk.put_nowait(item)
        except queue.Full:
            self.counters["bulk_dropped"] += 1  # the host's status round repairs it

    def _work_bulk(self) -> None:
        while not self._stop.is_set():
            try:
                item = self._bulk.get(timeout=TICK_S)
            except queue.Empty:
                self.receiver.tick(self.clock())
                continue
            if item is None:
                return
            now = self.clock()
            try:
                if isinstance(item, Frame):
                    replies = self.receiver.on_broadcast(item.header(), item.payload, now)
                else:
                    replies = self.receiver.on_message(item, now)
            except BulkError as exc:
                if isinstance(item, Frame):  # unauthenticated (anyone can forge one): counted
                    self.counters["broadcast_refused"] += 1
                else:
                    logger.info("event=link_bulk_refused problem=%r", str(exc))
                continue
            except Exception:
                logger.exception("event=link_bulk_failed")
                continue
            for reply in replies:
                self._send(reply, Lane.INTERACTIVE)


def _verdict(installer: LinkInstaller) -> Callable[[str, bytes, bytes], InstallVerdict]:
    def install(kind: str, sha256: bytes, data: bytes) -> InstallVerdict:
        try:
            if kind == "revocation":
                outcome = installer.install_revocation(data)
            elif kind == "enrolment":
                outcome = installer.install_enrolment(data)
            elif kind == "config":
                outcome = installer.install_config(data)
            else:
                return InstallVerdict(False, f"unknown kind {kind}")
        except Exception as exc:  # a bug: a verdict all the same, or the receiver stays busy
            logger.exception("event=link_install_failed kind=%s", kind)
            return InstallVerdict(False, f"internal error: {type(exc).__name__}")
        logger.info(
            "event=link_install kind=%s installed=%s code=%s sha256=%s",
            kind,
            outcome.installed,
            outcome.code or "-",
            sha256.hex()[:16],
        )
        reason = outcome.text() if outcome.installed else f"{outcome.code}: {outcome.text()}"
        return InstallVerdict(outcome.installed, reason[:200])

    return install


def link_for(daemon: Daemon, operator: Operator, audit: AuditLog | None) -> LinkService | None:
    """The link configured in ``[link]`` for ``daemon``, not started; None without a port or
    when this terminal has no usable key (logged: ``terminald keys init`` makes one)."""
    from terminald.store.link_keys import LinkKeyFileError, load_link_key

    config = daemon.config
    section = config.link
    if section.port is None or section.host_key is None or section.key_file is None:
        return None
    try:
        private = load_link_key(section.key_file)
    except LinkKeyFileError as exc:
        logger.error("event=link_disabled problem=%r fix=%r", str(exc), "terminald keys init")
        return None
    slot = hello.SessionSlot(private, section.host_key, config.terminal.id, address=section.address)
    node = TerminalNode(
        section.address,
        slot,
        transport_config(section.baud, initiator=False, half_duplex=section.rs485),
    )
    rts = section.rs485 and section.rs485_rts
    port = LinkPort(serial_opener(section.port, section.baud, rs485=rts), node)
    installer = LinkInstaller(
        config=lambda: daemon.config,
        config_path=lambda: daemon.config.source,
        store=lambda: daemon.runtime.revocation,
        enrolment=lambda: daemon.runtime.enrolment_store,
        reload=daemon.request_reload,
        trusted_time=daemon.trusted_time,
        extra_checks=lambda c: relay_wiring_mismatches(
            c, active_high=daemon.pinmap.relay.active_high, lock=daemon.pinmap.relay.lock
        ),
    )
    spool = Spool(config.state.dir / SPOOL_NAME, max_bytes=2 * section.max_transfer)
    receiver = BulkReceiver(spool, _verdict(installer), max_size=section.max_transfer)
    service: LinkService

    def figures() -> dict[str, int]:
        return service.figures()

    context = LinkContext(config.terminal.id, operator, installer, audit, figures, lambda _: None)
    service = LinkService(node, port, context, receiver, spool=spool)
    if audit is not None:
        audit.on_written = service.offer_rows
    return service
