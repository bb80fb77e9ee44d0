"""Typed failures of the revocation core.

A decoder fed arbitrary bytes raises only :class:`RevocationFormatError`; policy refusals
(signature, rollback, freeze, base mismatch) raise :class:`BundleRejected` with a reason a
caller can act on and log.
"""

from __future__ import annotations

from enum import Enum


class RevocationError(Exception):
    """Base of every error raised by ``terminald.revocation``."""


class RevocationFormatError(RevocationError):
    """The bytes are not a well-formed revocation bundle, set or state file."""


class RejectReason(Enum):
    UNKNOWN_KEY = "unknown_key"
    BAD_SIGNATURE = "bad_signature"
    ROLLBACK = "rollback"
    EXPIRED = "expired"
    ISSUED_IN_FUTURE = "issued_in_future"
    NO_BASE = "no_base"
    WRONG_BASE = "wrong_base"
    INCONSISTENT_DELTA = "inconsistent_delta"
    TOO_LARGE = "too_large"


class BundleRejected(RevocationError):
    """A well-formed bundle that the terminal must not accept."""

    def __init__(self, reason: RejectReason, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail
