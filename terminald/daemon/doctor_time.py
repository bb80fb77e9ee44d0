"""``terminald doctor``'s clock checks: is the clock plausible and kept right, and is it
behind a time the terminal holds a signature for?

The daemon refuses every card with ``clock_untrusted`` while the clock reads earlier
than the newest signed time it holds (``terminald.core.trusted_time``): the time kept
in the state directory, or the installed revocation data's issue time. This check says
so before a person at the door finds out.
"""

from __future__ import annotations

from datetime import datetime

from terminald.config import Config
from terminald.core.trusted_time import EPOCH, SignedTime, clock_problem, newest
from terminald.daemon.doctor_env import Environment, Finding, iso
from terminald.store.trusted_time import TRUSTED_TIME_NAME, TrustedTimeFile


def check_trusted_time(config: Config, now: datetime, revocation: SignedTime | None) -> Finding:
    """``revocation``: the installed data's issue time, as the revocation check verified it."""
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


# --------------------------------------------------------------------------- clock


def check_clock(env: Environment) -> list[Finding]:
    """The clock is not before the earliest trusted time, and something keeps it right."""
    from terminald.core.auth import DEFAULT_EARLIEST_TRUSTED_TIME

    now = env.now()
    earliest = DEFAULT_EARLIEST_TRUSTED_TIME
    if now < earliest:
        clock = Finding(
            "clock",
            "fail",
            f"the system clock says {iso(now)}, before {iso(earliest)}: the terminal "
            "refuses every card until the time is set",
            "set the time: connect a network with NTP (`timedatectl set-ntp true`), or let "
            "the back office push it, or `sudo date -s 'YYYY-MM-DD HH:MM:SS'`",
        )
    else:
        clock = Finding("clock", "ok", f"{iso(now)} (not before {iso(earliest)})")
    if env.timesync_flag.exists():
        sync = Finding("time-sync", "ok", f"synchronised ({env.timesync_flag} exists)")
    else:
        answer = env.ntp_synchronized()
        if answer == "yes":
            sync = Finding("time-sync", "ok", "synchronised (timedatectl: NTPSynchronized=yes)")
        else:
            said = "unknown" if answer is None else f"NTPSynchronized={answer}"
            sync = Finding(
                "time-sync",
                "warn",
                f"the clock is not known to be synchronised ({said}); a Pi has no "
                "real-time clock, so after a power cut it starts at the last saved time",
                "enable time sync where there is a network (`sudo timedatectl set-ntp true`), "
                "or fit an RTC, or have the back office push the time",
            )
    return [clock, sync]
