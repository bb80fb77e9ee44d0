"""When a console port may try a password again: delays that grow, then a lockout.

Pure; ``now`` is wall-clock seconds (``time.time()``), because the counts must survive a
restart of the daemon and a monotonic clock restarts with the machine. A clock set back
cannot stretch a lockout: a lock or a failure in the future is taken as happening now.

Model: AIX's per-tty ``logindelay`` (the delay grows with each failure) and Linux's
``pam_faillock`` (lock after ``deny`` failures within ``fail_interval``, for
``unlock_time``); figures as in serial-link.md §5: 5 failures in 15 min lock for 15 min.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class LockoutPolicy:
    max_failures: int = 5  # failures within window_s that lock the port
    window_s: float = 900.0
    lockout_s: float = 900.0
    first_delay_s: float = 1.0  # after the first failure; doubles with each one
    max_delay_s: float = 16.0

    def __post_init__(self) -> None:
        if self.max_failures < 1 or min(self.window_s, self.lockout_s) <= 0:
            raise ValueError("max_failures >= 1 and positive window and lockout are needed")


@dataclass(frozen=True, slots=True)
class PortRecord:
    """One port's recent failures (wall-clock seconds, oldest first) and its lock."""

    failures: tuple[float, ...] = ()
    locked_until: float = 0.0


@dataclass(frozen=True, slots=True)
class Failed:
    """What a failure led to: the new record, how long to wait before the next prompt,
    and whether this failure locked the port."""

    record: PortRecord
    delay_s: float
    locked: bool


def _sane(policy: LockoutPolicy, record: PortRecord, now: float) -> PortRecord:
    failures = tuple(min(t, now) for t in record.failures if now - min(t, now) < policy.window_s)
    locked = min(record.locked_until, now + policy.lockout_s)
    return PortRecord(failures[-policy.max_failures :], locked if locked > now else 0.0)


def locked_for(policy: LockoutPolicy, record: PortRecord, now: float) -> float:
    """Seconds the port stays locked (0.0 when a password may be tried)."""
    return max(0.0, _sane(policy, record, now).locked_until - now)


def delay_for(policy: LockoutPolicy, failures: int) -> float:
    """The wait after the ``failures``-th failure in a row: 1, 2, 4, ... s, capped."""
    if failures <= 0:
        return 0.0
    return float(min(policy.first_delay_s * 2 ** min(failures - 1, 30), policy.max_delay_s))


def failed(policy: LockoutPolicy, record: PortRecord, now: float) -> Failed:
    """A wrong password at ``now``."""
    current = _sane(policy, record, now)
    failures = (*current.failures, now)[-policy.max_failures :]
    if len(failures) >= policy.max_failures:
        # Locked: the count starts again when the lock ends.
        return Failed(PortRecord((), now + policy.lockout_s), delay_for(policy, 1), True)
    return Failed(PortRecord(failures), delay_for(policy, len(failures)), False)


def succeeded() -> PortRecord:
    """A right password clears the port's record."""
    return PortRecord()
