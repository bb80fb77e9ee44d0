"""Retransmission timeout from measured round trips: RFC 6298 (SRTT, RTTVAR, backoff).

The caller applies Karn's rule (no sample from a retransmitted segment). Times in seconds.
"""

from __future__ import annotations

from typing import Final

# RFC 6298 §2: alpha = 1/8, beta = 1/4, K = 4; G is the clock granularity (monotonic
# clocks on Linux give far better than 1 ms).
_ALPHA: Final = 1 / 8
_BETA: Final = 1 / 4
_K: Final = 4
_GRANULARITY: Final = 0.001


class RttEstimator:
    """SRTT/RTTVAR/RTO of RFC 6298, with RTO clamped to ``[min_rto, max_rto]``.

    RFC 6298 asks for a 1 s minimum on the Internet; a serial line has no queues beyond
    one frame, so the minimum is configurable (TransportConfig.min_rto). ``slack`` is a
    floor under the variance term for delays the samples may not have shown yet (a delayed
    ACK, an ACK waiting behind one of the peer's frames): the part of Linux's 200 ms
    minimum RTO that is not about the clock.
    """

    def __init__(
        self, initial_rto: float, min_rto: float, max_rto: float, slack: float = 0.0
    ) -> None:
        self.min_rto = min_rto
        self.slack = slack
        self.max_rto = max_rto
        self.srtt: float | None = None
        self.rttvar: float | None = None
        self.rto = self._clamp(initial_rto)
        self.samples = 0

    def _clamp(self, rto: float) -> float:
        return min(max(rto, self.min_rto), self.max_rto)

    def sample(self, rtt: float) -> None:
        """Fold in one measured round trip (seconds, ≥ 0); clears any backoff (§5.7)."""
        rtt = max(rtt, 0.0)
        if self.srtt is None or self.rttvar is None:
            self.srtt, self.rttvar = rtt, rtt / 2  # §2.2
        else:
            self.rttvar = (1 - _BETA) * self.rttvar + _BETA * abs(self.srtt - rtt)  # §2.3
            self.srtt = (1 - _ALPHA) * self.srtt + _ALPHA * rtt
        self.rto = self._clamp(self.srtt + max(_GRANULARITY, _K * self.rttvar, self.slack))
        self.samples += 1

    def backoff(self) -> None:
        """Double the RTO after a timeout (§5.5), up to ``max_rto``."""
        self.rto = self._clamp(self.rto * 2)
