"""Per-lane state of the transport: the sending side and the receiving side of one lane.

Pure bookkeeping for :mod:`terminald.link.transport`; every structure is bounded by the
peer's credit (sending), our credit (receiving) and ``max_message`` (reassembly).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from terminald.link.transport_wire import AckBlock


@dataclass(slots=True)
class Outgoing:
    """One fragment waiting for its acknowledgement (sent or not yet)."""

    seq: int
    first: bool
    last: bool
    data: bytes
    tx_id: int = -1  # order of its latest transmission (both lanes); -1: never sent
    sent_at: float = 0.0
    retransmitted: bool = False  # Karn's rule: no RTT sample from it
    sacked: bool = False
    lost: bool = False  # to be retransmitted


@dataclass(slots=True)
class AckResult:
    """What one ACK block did to a send lane."""

    acked_bytes: int = 0
    advanced: bool = False
    rtt_sample: float | None = None
    sampled_tx: int = -1  # the transmission the sample was measured on
    newly_lost: int = 0


@dataclass
class SendLane:
    """The sending side of a lane: segments from ``una`` (oldest unacknowledged) on."""

    segments: deque[Outgoing] = field(default_factory=deque)
    una: int = 0  # oldest seq not cumulatively acknowledged
    nxt: int = 0  # next seq never sent
    next_seq: int = 0  # next seq to assign to a new fragment
    peer_credit: int | None = None  # None until the peer's first ACK block
    queued: int = 0  # data bytes not yet acknowledged
    rto_deadline: float | None = None
    lost_count: int = 0
    _delivered_tx: int = -1  # latest transmission known to have arrived

    def window(self) -> int:
        """Segments that may be outstanding: the peer's credit, or 1 before it is heard."""
        return self.peer_credit if self.peer_credit is not None else 1

    def in_flight(self) -> int:
        """Segments sent and not cumulatively acknowledged."""
        return self.nxt - self.una

    def next_to_send(self) -> Outgoing | None:
        """A lost segment first (oldest), else the next new one the window allows."""
        if self.lost_count:
            for index in range(self.nxt - self.una):
                if self.segments[index].lost:
                    return self.segments[index]
        if self.nxt < self.next_seq and self.nxt < self.una + self.window():
            return self.segments[self.nxt - self.una]
        return None

    def mark_sent(self, seg: Outgoing, now: float, tx_id: int) -> bool:
        """Record transmission number ``tx_id`` of ``seg``; True if it was a retransmission."""
        again = seg.tx_id >= 0
        seg.retransmitted |= again
        if seg.lost:
            seg.lost = False
            self.lost_count -= 1
        seg.tx_id = tx_id
        seg.sent_at = now
        if seg.seq == self.nxt:
            self.nxt += 1
        return again

    def mark_oldest_lost(self) -> bool:
        """After a timeout: the oldest unacknowledged segment is lost (RFC 6298 §5.4).

        False when that was already known (it waits for its retransmission): the timer
        found nothing new, so there is no reason to back off.
        """
        if self.nxt == self.una or self.segments[0].lost:
            return False
        self.segments[0].lost = True
        self.lost_count += 1
        return True

    def apply_ack(self, block: AckBlock, now: float, before_tx: int = -1) -> AckResult:
        """Fold in an ACK block whose ``cum`` is already known to be ≤ ``nxt``.

        ``before_tx``: the sender knows the block reflects every transmission numbered
        below it (half duplex: the peer answers only after our whole burst), so any of
        those not reported is lost.
        """
        result = AckResult()
        if block.cum < self.una:
            return result  # older than what we know (a duplicate); nothing new in it
        self.peer_credit = block.credit
        newest = -1

        def delivered(seg: Outgoing) -> None:
            nonlocal newest
            if seg.retransmitted:
                return  # which transmission arrived is ambiguous (Karn): infer nothing
            self._delivered_tx = max(self._delivered_tx, seg.tx_id)
            if seg.tx_id > newest:
                newest = result.sampled_tx = seg.tx_id
                result.rtt_sample = now - seg.sent_at

        while self.una < block.cum:
            seg = self.segments.popleft()
            self.una += 1
            cost = max(len(seg.data), 1) if seg.first and seg.last else len(seg.data)
            self.queued -= cost
            result.acked_bytes += cost
            result.advanced = True
            if seg.lost:
                self.lost_count -= 1
            if not seg.sacked:
                delivered(seg)
        for index in range(self.nxt - self.una):
            seg = self.segments[index]
            if not seg.sacked and block.received(seg.seq):
                seg.sacked = True
                if seg.lost:
                    seg.lost = False
                    self.lost_count -= 1
                delivered(seg)
        # A serial line never reorders: a segment sent before one that arrived, and not
        # itself reported, was lost (also a retransmission that was lost again).
        for index in range(self.nxt - self.una):
            seg = self.segments[index]
            horizon = max(self._delivered_tx, before_tx)
            if not seg.sacked and not seg.lost and 0 <= seg.tx_id < horizon:
                seg.lost = True
                self.lost_count += 1
                result.newly_lost += 1
        return result


@dataclass
class RecvLane:
    """The receiving side of a lane: in-order cursor, out-of-order buffer, reassembly."""

    cum: int = 0  # next seq expected
    ooo: dict[int, tuple[bool, bool, bytes]] = field(default_factory=dict)
    partial: bytearray | None = None
    since_ack: int = 0
    ack_due: float | None = None
    ack_pending: bool = False
    broken_messages: int = 0

    def block(self, credit: int) -> AckBlock:
        """This lane's ACK block: cum, our credit, and the SACK bitmap of ``ooo``."""
        sack = 0
        for seq in self.ooo:
            sack |= 1 << (seq - self.cum - 1)
        return AckBlock(self.cum, credit, sack)

    def accept(
        self, seq: int, first: bool, last: bool, data: bytes, credit: int, max_message: int
    ) -> tuple[str, list[bytes]]:
        """Take one data segment: ``("new" | "hole" | "duplicate" | "window", messages)``."""
        if seq < self.cum or seq in self.ooo:
            return "duplicate", []
        if seq >= self.cum + credit:
            return "window", []
        status = "new" if seq == self.cum else "hole"
        self.ooo[seq] = (first, last, data)
        messages: list[bytes] = []
        while self.cum in self.ooo:
            first_, last_, data_ = self.ooo.pop(self.cum)
            self.cum += 1
            message = self._reassemble(first_, last_, data_, max_message)
            if message is not None:
                messages.append(message)
        return status, messages

    def _reassemble(self, first: bool, last: bool, data: bytes, max_message: int) -> bytes | None:
        if first:
            if self.partial is not None:
                self.broken_messages += 1  # a message that never got its LAST fragment
            self.partial = bytearray()
        elif self.partial is None:
            return None  # the rest of a message already dropped
        self.partial += data
        if len(self.partial) > max_message:
            self.broken_messages += 1
            self.partial = None
            return None
        if last:
            message = bytes(self.partial)
            self.partial = None
            return message
        return None
