"""Typed failures of the enrolment core.

A decoder fed arbitrary bytes or a source file with mistakes raises only
:class:`EnrolmentFormatError` (naming the field); a well-formed set the terminal must not
take raises :class:`EnrolmentRejected` with a stable :class:`RejectReason`.
"""

from __future__ import annotations

from enum import Enum


class EnrolmentError(Exception):
    """Base of every error raised by ``terminald.enrolment``."""


class EnrolmentFormatError(EnrolmentError):
    """The bytes (or the source) are not a well-formed enrolment set; ``problems`` lists
    every fault found, each starting with the field it concerns."""

    def __init__(self, problems: str | list[str]) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("; ".join(self.problems))


class RejectReason(Enum):
    """Why a set is refused; the values are stable (logs, ``install.result`` codes)."""

    MALFORMED = "malformed"
    TOO_LARGE = "too_large"
    UNKNOWN_KEY = "unknown_key"
    BAD_SIGNATURE = "bad_signature"
    EXPIRED = "expired"
    ISSUED_IN_FUTURE = "issued_in_future"
    ROLLBACK = "rollback"
    NO_BASE = "no_base"
    WRONG_BASE = "wrong_base"
    INCONSISTENT_DELTA = "inconsistent_delta"
    DIGEST_MISMATCH = "digest_mismatch"


class EnrolmentRejected(EnrolmentError):
    """A set the terminal must not install (nothing was changed)."""

    def __init__(self, reason: RejectReason, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail
