"""What the link's installers share: their outcome, the time challenge, the version marks,
and the clock they read and set (replaceable in tests)."""

from __future__ import annotations

import hmac
import json
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Protocol

from terminald.files import describe_error, read_limited
from terminald.link import messages
from terminald.link.signed import NONCE_SIZE
from terminald.store.atomic_file import atomic_write

VERSIONS_NAME: Final = "link-versions"  # in [state] dir
MARKED: Final = ("config", "enrolment")
_MAX_MARK_SIZE: Final = 4096
NONCE_LIFETIME_S: Final = 60.0  # enough for a host to sign and send; short for a replay
MAX_NONCES: Final = 8  # outstanding challenges; the oldest is dropped past this
CAP_SYS_TIME_NOTE: Final = (
    "clock not set: needs CAP_SYS_TIME (AmbientCapabilities=CAP_SYS_TIME in the unit)"
)


@dataclass(frozen=True)
class InstallOutcome:
    """What an installer did. Never half: ``installed`` means the new object is durable
    (and a reload was requested where one is needed); otherwise nothing was written.

    ``code`` is stable for programs ("" when installed): a :class:`SignedReason` or
    revocation ``RejectReason`` value, or ``nonce``, ``backward_jump``,
    ``behind_trusted_time``, ``invalid``, ``write_failed``, ``no_keys``, ``no_store``,
    ``no_config_file``, ``mark_unreadable``, ``malformed``. ``notes`` tell what went
    only partly (the clock not set, the mark not kept, the reload not requested).
    """

    kind: str  # "time" | "config" | "enrolment" | "revocation"
    installed: bool
    code: str
    reason: str
    version: int | None = None
    notes: tuple[str, ...] = ()
    offset: float | None = None  # time only: signed time − terminal clock, seconds
    clock_set: bool = False

    def text(self) -> str:
        return "; ".join([self.reason, *self.notes])

    def as_message(self, request_id: int) -> messages.Message:
        """The reply: ``time.reply`` for a time, ``install.result`` otherwise."""
        code = self.code or None
        if self.kind == "time":
            return messages.TimeReply(
                id=request_id,
                applied=self.installed,
                clock_set=self.clock_set,
                offset=max(-1e10, min(1e10, self.offset or 0.0)),
                code=code,
                reason=self.text()[:4096],
            )
        return messages.InstallResult(
            id=request_id,
            kind=self.kind,
            installed=self.installed,
            version=self.version,
            code=code,
            reason=self.text()[:4096],
        )


def refused(kind: str, code: str, reason: str, **extra: float | None) -> InstallOutcome:
    return InstallOutcome(kind, False, code, reason, offset=extra.get("offset"))


class Clock(Protocol):
    def wall(self) -> float: ...  # Unix seconds (CLOCK_REALTIME)
    def monotonic(self) -> float: ...
    def set_wall(self, at: float) -> None: ...  # PermissionError without CAP_SYS_TIME


class SystemClock:
    def wall(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    def set_wall(self, at: float) -> None:
        time.clock_settime(time.CLOCK_REALTIME, at)


class NonceIssuer:
    """Single-use time challenges, each valid for ``lifetime_s`` (monotonic seconds).

    Bounded: at most ``max_outstanding`` are held; issuing past that forgets the oldest.
    Any thread (a lock; issuing and consuming are microseconds).
    """

    def __init__(
        self,
        lifetime_s: float = NONCE_LIFETIME_S,
        max_outstanding: int = MAX_NONCES,
        random: Callable[[int], bytes] = os.urandom,
    ) -> None:
        self.lifetime_s = lifetime_s
        self._max = max_outstanding
        self._random = random
        self._lock = threading.Lock()
        self._issued: dict[bytes, float] = {}  # nonce → monotonic expiry, oldest first

    def issue(self, now: float) -> bytes:
        nonce = self._random(NONCE_SIZE)
        with self._lock:
            self._expire(now)
            while len(self._issued) >= self._max:
                del self._issued[next(iter(self._issued))]
            self._issued[nonce] = now + self.lifetime_s
        return nonce

    def problem(self, nonce: bytes | None, now: float) -> str:
        """ "" if ``nonce`` was issued, is unexpired and unused; else why not."""
        with self._lock:
            self._expire(now)
            if nonce is not None and self._find(nonce) is not None:
                return ""
        if nonce is None:
            return "the time object carries no challenge"
        return (
            "the time object's challenge was not issued by this terminal, was used already "
            f"or is older than {self.lifetime_s:g} s: ask for a new one (time.nonce)"
        )

    def consume(self, nonce: bytes, now: float) -> bool:
        """Use ``nonce`` up; False when it was not valid (see :meth:`problem`)."""
        with self._lock:
            self._expire(now)
            found = self._find(nonce)
            if found is None:
                return False
            del self._issued[found]
            return True

    def _find(self, nonce: bytes) -> bytes | None:
        # Constant time per comparison: a challenge is not a secret, but costs nothing.
        return next((n for n in self._issued if hmac.compare_digest(n, nonce)), None)

    def _expire(self, now: float) -> None:
        for nonce, expiry in list(self._issued.items()):
            if expiry <= now:
                del self._issued[nonce]


class MarkError(Exception):
    """The version marks cannot be read: refuse rather than risk a rollback."""


class VersionMarks:
    """The newest config and enrolment versions installed, ``{"config": N, "enrolment": M}``
    in ``<state>/link-versions``, replaced atomically. A missing file is a terminal that
    never had a push (0); a damaged one refuses every push until it is repaired."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def read(self) -> dict[str, int]:
        try:
            raw = json.loads(read_limited(self.path, _MAX_MARK_SIZE))
        except FileNotFoundError:
            return dict.fromkeys(MARKED, 0)
        except OSError as exc:
            raise MarkError(f"cannot read {self.path}: {describe_error(exc)}") from exc
        except ValueError as exc:
            raise MarkError(f"{self.path} is not a version mark ({exc})") from exc
        if not isinstance(raw, dict):
            raise MarkError(f"{self.path} is not a version mark (not an object)")
        marks = {}
        for kind in MARKED:
            value = raw.get(kind, 0)
            if type(value) is not int or value < 0:
                raise MarkError(f"{self.path}: {kind} is not a version")
            marks[kind] = value
        return marks

    def write(self, marks: dict[str, int]) -> None:
        atomic_write(self.path, json.dumps(marks, sort_keys=True).encode() + b"\n")
