"""``terminald doctor``'s trusted-time check: is the clock behind a time we signed for?

The daemon refuses every card with ``clock_untrusted`` while the clock reads earlier
than the newest signed time it holds (``terminald.core.trusted_time``): the time kept
in the state directory, or the installed revocation data's issue time. This check says
so before a person at the door finds out.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from terminald.config import Config
from terminald.core.trusted_time import EPOCH, SignedTime, clock_problem, newest
from terminald.store.trusted_time import TRUSTED_TIME_NAME, TrustedTimeFile

if TYPE_CHECKING:  # doctor imports this module from run_checks
    from terminald.daemon.doctor import Finding


def check_trusted_time(config: Config, now: datetime, revocation: SignedTime | None) -> Finding:
    """``revocation``: the installed data's issue time, as the revocation check verified it."""
    from terminald.daemon.doctor import Finding

    kept = TrustedTimeFile(config.state.dir / TRUSTED_TIME_NAME)
    floor = newest(kept.floor, revocation)
    problem = clock_problem(now, floor)
    if problem is not None:
        return Finding(
            "trusted-time",
            "fail",
            f"{problem}: every card is refused (clock_untrusted)",
            "set the clock (`timedatectl set-ntp true` where there is a network, or "
            "`sudo date -s 'YYYY-MM-DD HH:MM:SS'` in UTC), or have the back office push the "
            f"time. If the clock is right and the kept time is wrong (set by hand, or by a "
            f"clock that ran ahead), remove {kept.path}: the daemon keeps the next signed "
            "time again",
        )
    if kept.problem:
        return Finding(
            "trusted-time",
            "warn",
            f"{kept.problem}; the newest signed time is {_describe(floor)}",
            f"remove {kept.path}: the daemon writes it again from the next signed data",
        )
    return Finding("trusted-time", "ok", f"clock not behind {_describe(floor)}")


def _describe(floor: SignedTime) -> str:
    if floor is EPOCH:
        return "this build's epoch (no signed time held yet)"
    at = floor.at.isoformat(timespec="seconds").replace("+00:00", "Z")
    return f"{floor.source} ({at})"
