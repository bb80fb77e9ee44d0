"""Trusted time: the clock may not read earlier than the newest signed time we hold.

A Raspberry Pi has no real-time clock. After a power cut it boots at the last time
fake-hwclock saved, or at 1970, and may run days behind until something sets it. A
clock that runs behind makes an expired certificate look valid and stale revocation
data look fresh, so the terminal checks the clock against times it can trust: the
build's epoch, and every signed time it has seen (a revocation bundle's issue time
today; the back office's signed time message later). Those only move forward, and are
kept across restarts (``terminald.store.trusted_time``).

Pure: no clock is read here; ``now`` comes in.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

# Anything earlier than this build's epoch cannot be the real time.
BUILD_EPOCH = datetime(2026, 1, 1, tzinfo=UTC)

# A signed time may be a little ahead of a clock that is right: the back office's clock
# drifts too, and a bundle issued a minute ago is installed at once. The same tolerance
# the revocation acceptance rules give an issue time in the future
# (terminald.revocation.acceptance.DEFAULT_MAX_CLOCK_SKEW), so a bundle the terminal
# accepted never makes its own clock untrusted.
SIGNED_TIME_TOLERANCE = timedelta(minutes=10)


@dataclass(frozen=True, slots=True)
class SignedTime:
    """A moment someone we trust signed, and where it came from (for messages)."""

    at: datetime
    source: str

    def __post_init__(self) -> None:
        if self.at.tzinfo is None:
            raise ValueError("a signed time must be timezone-aware")


EPOCH = SignedTime(BUILD_EPOCH, "this build's epoch")


def newest(*times: SignedTime | None) -> SignedTime:
    """The latest of ``times`` (None ignored); the build's epoch when there is none."""
    best = EPOCH
    for moment in times:
        if moment is not None and moment.at > best.at:
            best = moment
    return best


def clock_problem(now: datetime, floor: SignedTime, earliest: datetime = BUILD_EPOCH) -> str | None:
    """Why ``now`` cannot be trusted, or None.

    ``earliest`` is a hard floor (the build's epoch); a signed time ``floor`` allows
    :data:`SIGNED_TIME_TOLERANCE` between the signer's clock and ours.
    """
    if now < earliest:
        return (
            f"clock reads {_iso(now)}, before this build's earliest trusted time {_iso(earliest)}"
        )
    if now >= floor.at - SIGNED_TIME_TOLERANCE:
        return None
    return (
        f"clock reads {_iso(now)}, earlier than {floor.source} ({_iso(floor.at)}): "
        "the clock is behind"
    )


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
