"""Whether a terminal may accept a verified bundle on top of what it already holds.

Anti-rollback and anti-freeze in the spirit of TUF and MCUboot (reference
revocation-and-serial.md §B3): versions only go up, a delta applies to its exact base,
an expired bundle is never installed, and a bundle "issued" in the future means the
clock or the back office is wrong.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from terminald.revocation.bundle import BundleHeader, BundleKind
from terminald.revocation.errors import BundleRejected, RejectReason

DEFAULT_MAX_CLOCK_SKEW = timedelta(minutes=10)


@dataclass(frozen=True)
class Installed:
    """What the terminal holds now: the newest version and when it was issued."""

    version: int
    issued_at: datetime


def check_acceptable(
    installed: Installed | None,
    incoming: BundleHeader,
    now: datetime,
    max_clock_skew: timedelta = DEFAULT_MAX_CLOCK_SKEW,
) -> None:
    """Raise :class:`BundleRejected` unless ``incoming`` may replace or extend ``installed``."""
    if now >= incoming.valid_until:
        raise BundleRejected(
            RejectReason.EXPIRED,
            f"version {incoming.version} was valid until {incoming.valid_until.isoformat()}",
        )
    if incoming.issued_at > now + max_clock_skew:
        raise BundleRejected(
            RejectReason.ISSUED_IN_FUTURE,
            f"issued at {incoming.issued_at.isoformat()}, after now ({now.isoformat()})",
        )
    check_sequence(installed, incoming)


def check_sequence(installed: Installed | None, incoming: BundleHeader) -> None:
    """The time-independent rules, also re-checked when a stored chain is loaded."""
    if incoming.kind == BundleKind.DELTA:
        if installed is None:
            raise BundleRejected(
                RejectReason.NO_BASE,
                f"delta to version {incoming.version} needs base {incoming.base_version}, "
                "and no revocation data is installed",
            )
        if incoming.base_version != installed.version:
            raise BundleRejected(
                RejectReason.WRONG_BASE,
                f"delta applies to version {incoming.base_version}, "
                f"installed is {installed.version}",
            )
    if installed is None:
        return
    if incoming.version <= installed.version:
        raise BundleRejected(
            RejectReason.ROLLBACK,
            f"version {incoming.version} is not newer than installed {installed.version}",
        )
    if incoming.issued_at < installed.issued_at:
        raise BundleRejected(
            RejectReason.ROLLBACK,
            f"issued {incoming.issued_at.isoformat()}, before the installed data "
            f"({installed.issued_at.isoformat()})",
        )
