"""The transport's parameters for a line of a given speed (both ends compute the same)."""

from __future__ import annotations

from typing import Final

from terminald.link.frame import MAX_PAYLOAD, max_encoded_size
from terminald.link.messages import MAX_MESSAGE_SIZE
from terminald.link.session import RECORD_OVERHEAD
from terminald.link.transport import TransportConfig

# Segments each side buffers per lane: 16 × 2 KB frames is ~2.9 s of line at 115200, more
# than a round trip through a USB adapter, so the window never starves the line.
CREDIT: Final = 16
MAX_SEGMENT: Final = MAX_PAYLOAD - RECORD_OVERHEAD
IDLE_POLL_HALF_S: Final = 1.0
HALF_MIN_RTO_S: Final = 1.0
# Half duplex: a terminal handed the line keeps it this long for a reply being composed
# (a status answered through the daemon's loop, a spool fsync before bulk.missing).
REPLY_WAIT_S: Final = 0.1


def frame_time(baud: int) -> float:
    """Seconds one maximal frame takes on the line (8N1: 10 bits a byte)."""
    return max_encoded_size(MAX_PAYLOAD) * 10 / baud


def transport_config(baud: int, *, initiator: bool, half_duplex: bool) -> TransportConfig:
    """The back office is the initiator (it holds the line first on half-duplex RS-485)."""
    frame = frame_time(baud)
    return TransportConfig(
        max_segment=MAX_SEGMENT,
        credit=CREDIT,
        half_duplex=half_duplex,
        initial_rto=max(1.0, 4 * frame),
        # Half duplex: a turn handed over is taken back after RTO; a terminal answering
        # late (a busy Pi, a USB adapter's buffer) would then collide with us, so the floor
        # is higher than on a full-duplex line, where a late ACK costs only a resend.
        min_rto=max(HALF_MIN_RTO_S, 4 * frame) if half_duplex else max(0.2, 2 * frame),
        max_rto=max(30.0, 20 * frame),
        max_message=MAX_MESSAGE_SIZE,
        max_queued=4 * MAX_MESSAGE_SIZE,
        initiator=initiator,
        # Half duplex: an idle terminal is handed the line once a second (for its events);
        # several on one pair at 10 a second each would fill the line with turnarounds.
        poll_interval=IDLE_POLL_HALF_S if half_duplex else 0.1,
        max_frame_time=frame,
        reply_wait=REPLY_WAIT_S if half_duplex and not initiator else 0.0,
    )
