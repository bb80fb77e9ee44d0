"""Transport configuration, statistics and errors (see :mod:`terminald.link.transport`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from terminald.link.transport_wire import (
    ACK_BLOCK_SIZE,
    DATA_HEADER_SIZE,
    MAX_CREDIT,
    MAX_SACK_BYTES,
    PIGGYBACK_ROOM,
    Lane,
)

LANES = (Lane.INTERACTIVE, Lane.BULK)
# Flags byte plus both ACK blocks with the largest SACK bitmaps: an ACK-only segment.
MIN_SEGMENT = 1 + 2 * (ACK_BLOCK_SIZE + MAX_SACK_BYTES)


class TransportError(Exception):
    """The transport refused a message; the text says why."""


class TransportFull(TransportError):
    """``send`` would queue more than ``max_queued`` bytes on that lane: back off."""


class TransportExhausted(TransportError):
    """The lane's 32-bit sequence space is used up: start a new session."""


@dataclass(frozen=True)
class TransportConfig:
    """Transport parameters; both ends of a link use the same ``max_segment``.

    ``max_segment``: bytes of one segment including its header (MIN_SEGMENT-65535).
    ``credit``: segments we accept per lane from the next expected one on (1-255), our
    advertised window. Times in seconds. ``min_rto`` should exceed the time one maximal
    segment takes on the line (2 KB ≈ 0.18 s at 115200 baud). ``max_frame_time``: that
    time; an ACK may wait that long behind one of the peer's frames, so RTO is never below
    SRTT + ``ack_delay`` + ``max_frame_time``, and in half duplex a turn is taken back only
    after RTO + ``max_frame_time`` without hearing the peer.
    Raises ValueError on a value out of range.
    """

    max_segment: int
    credit: int
    half_duplex: bool = False
    initial_rto: float = 1.0
    min_rto: float = 0.2
    max_rto: float = 30.0
    max_message: int = 64 * 1024
    max_queued: int = 256 * 1024
    ack_every: int = 4
    ack_delay: float = 0.1
    initiator: bool = True
    poll_interval: float = 0.1
    max_burst: int = 8
    max_frame_time: float = 0.2
    # Half duplex, the responder: how long it may keep the line, with nothing to send, for
    # a reply its application is composing (must stay well below the initiator's RTO).
    reply_wait: float = 0.0

    def __post_init__(self) -> None:
        checks = (
            (MIN_SEGMENT <= self.max_segment <= 0xFFFF, f"max_segment {self.max_segment}"),
            (1 <= self.credit <= MAX_CREDIT, f"credit {self.credit} (1-{MAX_CREDIT})"),
            (0 < self.min_rto <= self.max_rto, f"min_rto {self.min_rto}/max_rto {self.max_rto}"),
            (self.initial_rto > 0, f"initial_rto {self.initial_rto}"),
            (1 <= self.max_message <= self.max_queued, f"max_message {self.max_message}"),
            (self.ack_every >= 1 and self.ack_delay >= 0, f"ack_every/ack_delay {self.ack_every}"),
            (self.poll_interval > 0 and self.max_frame_time >= 0, "poll_interval/max_frame_time"),
            (self.max_burst >= 1, f"max_burst {self.max_burst}"),
        )
        for ok, what in checks:
            if not ok:
                raise ValueError(f"transport config: {what} out of range")

    @property
    def fragment_size(self) -> int:
        """Data bytes per segment: room is kept for ACK blocks to ride along."""
        return self.max_segment - DATA_HEADER_SIZE - PIGGYBACK_ROOM


@dataclass
class TransportStats:
    """Counters since the transport was made, plus the current estimates."""

    segments_sent: int = 0
    segments_received: int = 0
    data_sent: int = 0  # data segments, retransmissions included
    retransmits: int = 0
    fast_retransmits: int = 0  # segments found lost by a later one being acknowledged
    timeouts: int = 0
    acks_sent: int = 0  # segments carrying ACK blocks (alone or riding on data)
    acks_received: int = 0
    polls_sent: int = 0
    malformed: int = 0
    duplicates: int = 0
    out_of_window: int = 0
    broken_messages: int = 0  # reassembly given up: missing LAST or above max_message
    messages_sent: int = 0
    messages_received: int = 0
    srtt: float | None = None
    rttvar: float | None = None
    rto: float = 0.0
    peer_credit: dict[Lane, int | None] = field(default_factory=lambda: dict.fromkeys(LANES))
