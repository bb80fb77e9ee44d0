"""Reliable, ordered delivery of messages per lane over a lossy segment channel.

Pure (time passed in as ``now``, seconds, monotonic). Below it the session carries each
segment in one authenticated record, so a segment arrives intact or not at all, never
reordered; it may be lost, and duplicates are tolerated. Wire format in
:mod:`terminald.link.transport_wire`, contract in docs/protocol.md §3.

- Two lanes, each its own sequence space (u32, never wraps: ``send`` refuses past 2^32-1
  segments, which at 115200 baud is years of traffic): a lost bulk segment never holds
  up an interactive message, and ``poll`` always emits interactive segments first.
- Window = the peer's advertised credit, never assumed: before its first ACK block only
  one segment per lane is outstanding.
- Cumulative + selective ACK. Because the line never reorders, a segment sent before one
  that is acknowledged, and not acknowledged itself, is lost and is resent at once.
- RTO per RFC 6298 with Karn's rule and exponential backoff (transport_rto).
- Full duplex: ACK after ``ack_every`` in-order segments, at once for a hole, a duplicate
  or POLL, else after ``ack_delay``. The last segment before the sender runs out of data
  or window carries POLL, so its ACK comes at once.
- Half duplex: the line is a turn. The holder sends a burst (≤ ``max_burst`` data
  segments, window permitting), the last marked POLL, which hands the turn over; the other
  side answers with one ACK (ahead of, or riding on, its own burst) that again ends with
  POLL. The ``initiator`` (the host) holds the turn first, takes it back after a timeout,
  and, when it has nothing to send, hands the line to the peer every ``poll_interval``
  so the peer can speak; the other side speaks only when handed the turn (multi-drop).
"""

from __future__ import annotations

from terminald.link.transport_config import (
    LANES,
    MIN_SEGMENT,
    TransportConfig,
    TransportError,
    TransportExhausted,
    TransportFull,
    TransportStats,
)
from terminald.link.transport_lanes import Outgoing, RecvLane, SendLane
from terminald.link.transport_rto import RttEstimator
from terminald.link.transport_wire import (
    DATA_HEADER_SIZE,
    MAX_SEQ,
    AckBlock,
    Lane,
    Segment,
    SegmentError,
    ack_block_size,
    decode_segment,
    encode_segment,
)

__all__ = [
    "MIN_SEGMENT",
    "Lane",
    "Transport",
    "TransportConfig",
    "TransportError",
    "TransportExhausted",
    "TransportFull",
    "TransportStats",
]


class Transport:
    """One end of the transport. See the module docstring for the behaviour."""

    def __init__(self, config: TransportConfig, now: float) -> None:
        self.config = config
        self.stats = TransportStats()
        # An ACK may wait ack_delay, then behind one of the peer's frames: RTO allows both.
        slack = config.ack_delay + config.max_frame_time
        self._rtt = RttEstimator(config.initial_rto, config.min_rto, config.max_rto, slack)
        self._send = {lane: SendLane() for lane in LANES}
        self._recv = {lane: RecvLane() for lane in LANES}
        self._now = now
        # Half duplex: whether we hold the line, since when, and until when we wait for it.
        self._turn = config.initiator or not config.half_duplex
        self._turn_since = now
        self._turn_deadline: float | None = None
        self._burst = 0
        self._tx = 0  # transmissions of data segments so far, both lanes
        self._handover_tx: int | None = None  # half duplex: self._tx when we handed over
        self._sync_stats()

    # -- the application side ---------------------------------------------------------

    def send(self, lane: Lane, message: bytes) -> None:
        """Queue ``message`` on ``lane``, fragmented into segments.

        Raises ValueError (unknown lane, message above ``max_message``), TransportFull
        (``max_queued`` would be exceeded: retry once ``queued`` drops) or
        TransportExhausted (sequence space used up). Nothing is queued when it raises.
        """
        lane = Lane(lane)
        if len(message) > self.config.max_message:
            raise ValueError(
                f"message of {len(message)} bytes exceeds max_message {self.config.max_message}"
            )
        size = self.config.fragment_size
        chunks = [bytes(message[i : i + size]) for i in range(0, len(message), size)] or [b""]
        state = self._send[lane]
        # An empty message counts as one byte, so empty messages cannot pile up unbounded.
        cost = max(len(message), 1)
        if state.queued + cost > self.config.max_queued:
            raise TransportFull(
                f"{lane.name} lane holds {state.queued} bytes; "
                f"{len(message)} more exceed max_queued {self.config.max_queued}"
            )
        if state.next_seq + len(chunks) - 1 > MAX_SEQ:
            raise TransportExhausted(f"{lane.name} lane used its 2^32 sequence numbers")
        for index, chunk in enumerate(chunks):
            first, last = index == 0, index == len(chunks) - 1
            state.segments.append(Outgoing(state.next_seq, first, last, chunk))
            state.next_seq += 1
        state.queued += cost
        self.stats.messages_sent += 1

    def queued(self, lane: Lane) -> int:
        """Bytes of messages on ``lane`` not yet acknowledged (for backpressure).

        An empty message counts as one byte.
        """
        return self._send[Lane(lane)].queued

    def in_flight(self, lane: Lane) -> int:
        """Segments of ``lane`` sent and not cumulatively acknowledged (≤ the peer's credit)."""
        return self._send[Lane(lane)].in_flight()

    def holds_turn(self, now: float) -> bool:
        """Half duplex: whether this side may talk now (it holds the turn, or, as the
        initiator, the peer's turn has run out). Always True in full duplex. A host with
        several terminals on one pair talks to one at a time by it (link/host_node.py)."""
        if not self.config.half_duplex or self._turn:
            return True
        deadline = self._turn_deadline
        return self.config.initiator and deadline is not None and now >= deadline

    def has_data(self) -> bool:
        """Whether data segments wait to be sent (new, or marked lost): not an ACK, not an
        idle line handed over. A host lets idle terminals wait while it broadcasts."""
        return any(state.next_to_send() is not None for state in self._send.values())

    def idle(self) -> bool:
        """Nothing queued or unacknowledged on either lane."""
        return all(not state.segments for state in self._send.values())

    # -- the line side -------------------------------------------------------------

    def on_segment(self, segment: bytes, now: float) -> list[tuple[Lane, bytes]]:
        """Take one segment from the peer; the messages it completes, in order per lane.

        A malformed segment (bad format, longer than ``max_segment``, or acknowledging
        data never sent) is counted in ``stats.malformed`` and changes nothing.
        """
        try:
            if len(segment) > self.config.max_segment:
                raise SegmentError(f"segment of {len(segment)} bytes above max_segment")
            seg = decode_segment(segment)
            for lane, block in zip(LANES, seg.acks, strict=True):
                if block is not None and block.cum > self._send[lane].nxt:
                    raise SegmentError(f"ACK of {lane.name} seq {block.cum - 1} never sent")
        except SegmentError:
            self.stats.malformed += 1
            return []
        self._now = now
        self.stats.segments_received += 1
        for lane, block in zip(LANES, seg.acks, strict=True):
            if block is not None:
                self._on_ack(lane, block, now)
        messages: list[tuple[Lane, bytes]] = []
        if seg.lane is not None:
            messages = self._on_data(seg, now)
        if self.config.half_duplex:
            self._on_turn(seg.poll, now)
        elif seg.poll:
            self._ack_now(now)
        self._sync_stats()
        return messages

    def poll(self, now: float, limit: int | None = None) -> list[bytes]:
        """Segments to send now, at most ``limit``: ACKs due, interactive, then bulk.

        The driver asks for one (or a few) at a time as the line frees, so an interactive
        message never waits behind more than the one bulk segment already on the wire.
        """
        self._now = now
        self._expire(now)
        out: list[bytes] = []
        while limit is None or len(out) < limit:
            segment = self._emit(now)
            if segment is None:
                break
            out.append(segment)
        self._sync_stats()
        return out

    def next_deadline(self) -> float | None:
        """When ``poll`` must next be called absent input (≤ the last ``now``: at once)."""
        if self._plan(self._now) is not None:
            return self._now
        times = [s.rto_deadline for s in self._send.values() if s.rto_deadline is not None]
        half = self.config.half_duplex
        if not half:
            times += [r.ack_due for r in self._recv.values() if r.ack_due is not None]
        elif not self.config.initiator and self._turn:
            times.append(self._turn_since + self.config.reply_wait)
        elif self.config.initiator:
            if self._turn:
                times.append(self._turn_since + self.config.poll_interval)
            elif self._turn_deadline is not None:
                times.append(self._turn_deadline)
        return min(times) if times else None

    # -- receiving --------------------------------------------------------------------

    def _on_ack(self, lane: Lane, block: AckBlock, now: float) -> None:
        self.stats.acks_received += 1
        state = self._send[lane]
        handover = self._handover_tx
        if handover is None:
            result = state.apply_ack(block, now)
            sample = result.rtt_sample
        else:
            # Half duplex, the peer's answer to our POLL: it reflects our whole burst, and
            # only the POLL segment itself gives an RTT sample (an earlier one's ACK would
            # include the wait for the rest of the burst).
            result = state.apply_ack(block, now, before_tx=handover)
            sample = result.rtt_sample if result.sampled_tx == handover - 1 else None
        self.stats.fast_retransmits += result.newly_lost
        if sample is not None:
            self._rtt.sample(sample)
        if result.advanced:
            # RFC 6298 §5.3: restart the timer when new data is acknowledged.
            state.rto_deadline = now + self._rtt.rto if state.in_flight() else None

    def _on_data(self, seg: Segment, now: float) -> list[tuple[Lane, bytes]]:
        assert seg.lane is not None
        recv = self._recv[seg.lane]
        before = recv.broken_messages
        status, messages = recv.accept(
            seg.seq, seg.first, seg.last, seg.data, self.config.credit, self.config.max_message
        )
        self.stats.broken_messages += recv.broken_messages - before
        self.stats.messages_received += len(messages)
        self.stats.duplicates += status == "duplicate"
        self.stats.out_of_window += status == "window"
        recv.ack_pending = True
        if not self.config.half_duplex:
            recv.since_ack += status == "new"
            if status != "new" or recv.since_ack >= self.config.ack_every:
                recv.ack_due = now
            elif recv.ack_due is None:
                recv.ack_due = now + self.config.ack_delay
        return [(seg.lane, message) for message in messages]

    def _ack_now(self, now: float) -> None:
        for recv in self._recv.values():
            recv.ack_due = now

    def _on_turn(self, poll: bool, now: float) -> None:
        # The peer holds the line until its POLL; while it talks our timers wait.
        wait = self._rtt.rto + self.config.max_frame_time
        for state in self._send.values():
            if state.rto_deadline is not None:
                state.rto_deadline = max(state.rto_deadline, now + self._rtt.rto)
        if poll:
            self._turn, self._turn_since, self._burst = True, now, 0
            self._turn_deadline = self._handover_tx = None
        else:
            self._turn, self._turn_deadline = False, now + wait

    # -- sending ----------------------------------------------------------------------

    def _expire(self, now: float) -> None:
        for state in self._send.values():
            if state.rto_deadline is not None and now >= state.rto_deadline:
                state.rto_deadline = None  # restarted by the retransmission
                if state.mark_oldest_lost():
                    self.stats.timeouts += 1
                    self._rtt.backoff()
        half = self.config.half_duplex
        deadline = self._turn_deadline
        late = deadline is not None and now >= deadline
        if half and self.config.initiator and not self._turn and late:
            self._turn, self._turn_since, self._burst = True, now, 0
            self._turn_deadline = self._handover_tx = None

    def _choose(self) -> tuple[Lane, Outgoing] | None:
        if self.config.half_duplex and (not self._turn or self._burst >= self.config.max_burst):
            return None
        for lane in LANES:
            seg = self._send[lane].next_to_send()
            if seg is not None:
                return lane, seg
        return None

    def _plan(self, now: float) -> tuple[Lane, Outgoing] | str | None:
        """What ``_emit`` would send at ``now``: a data segment, "ack", "handover" or None."""
        choice = self._choose()
        if choice is not None:
            return choice
        if not self.config.half_duplex:
            due = any(r.ack_due is not None and r.ack_due <= now for r in self._recv.values())
            return "ack" if due else None
        if not self._turn:
            return None
        # Holding the turn with nothing to send: answer (the peer handed us the line) or,
        # as the initiator, hand the idle line over every poll_interval.
        if not self.config.initiator:
            # The responder keeps the line up to reply_wait after it was handed over, so a
            # reply its application is composing rides on this turn instead of waiting a
            # whole poll interval for the next.
            if now < self._turn_since + self.config.reply_wait:
                return None
            return "handover"
        if any(r.ack_pending for r in self._recv.values()):
            return "handover"
        if now >= self._turn_since + self.config.poll_interval:
            return "handover"
        return None

    def _emit(self, now: float) -> bytes | None:
        plan = self._plan(now)
        if plan is None:
            return None
        if isinstance(plan, str):
            handover = plan == "handover"
            return self._send_segment(Segment(acks=self._ack_blocks(), poll=handover), now)
        lane, out = plan
        state = self._send[lane]
        again = state.mark_sent(out, now, self._tx)
        self._tx += 1
        self.stats.retransmits += again
        self.stats.data_sent += 1
        self._burst += 1
        # Start the timer if idle; restart it on a retransmission (RFC 6675 §6) so the
        # resent segment gets a full RTO; in half duplex on every send (the turn's end).
        if self.config.half_duplex or again or state.rto_deadline is None:
            state.rto_deadline = now + self._rtt.rto
        acks: tuple[AckBlock | None, AckBlock | None] = (None, None)
        if any(r.ack_pending or r.ack_due is not None for r in self._recv.values()):
            blocks = self._ack_blocks()
            room = self.config.max_segment - DATA_HEADER_SIZE - len(out.data)
            if sum(ack_block_size(b) for b in blocks if b is not None) <= room:
                acks = blocks
        last_of_burst = self._choose() is None
        segment = Segment(
            acks=acks,
            poll=last_of_burst,
            lane=lane,
            seq=out.seq,
            first=out.first,
            last=out.last,
            data=out.data,
        )
        return self._send_segment(segment, now)

    def _ack_blocks(self) -> tuple[AckBlock | None, AckBlock | None]:
        credit = self.config.credit
        return (self._recv[Lane.INTERACTIVE].block(credit), self._recv[Lane.BULK].block(credit))

    def _send_segment(self, segment: Segment, now: float) -> bytes:
        self.stats.segments_sent += 1
        if segment.acks != (None, None):
            self.stats.acks_sent += 1
            for recv in self._recv.values():
                recv.ack_due, recv.ack_pending, recv.since_ack = None, False, 0
        if segment.poll:
            self.stats.polls_sent += 1
            if self.config.half_duplex:
                self._turn, self._burst = False, 0
                self._turn_deadline = now + self._rtt.rto + self.config.max_frame_time
                self._handover_tx = self._tx
        return encode_segment(segment)

    def _sync_stats(self) -> None:
        stats = self.stats
        stats.srtt, stats.rttvar, stats.rto = self._rtt.srtt, self._rtt.rttvar, self._rtt.rto
        for lane in LANES:
            stats.peer_credit[lane] = self._send[lane].peer_credit
