"""Whether a terminal may take a verified enrolment set on top of what it holds.

The revocation rules (``revocation/acceptance.py``; reference revocation-and-serial.md
§B3, after TUF and MCUboot): versions only go up, an expired set is never installed, a
set issued in the future means a wrong clock, a set issued before the installed one is
a rollback, and a delta applies to its exact base: same version *and* same content
digest. That module's functions take a revocation header, so this is their sibling for
the enrolment header, with the same reasons and wording.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from terminald.enrolment.bundle import EnrolmentBundle, SetHeader, SetKind
from terminald.enrolment.codec import EnrolmentDelta, apply_delta, content_digest
from terminald.enrolment.errors import EnrolmentFormatError, EnrolmentRejected, RejectReason
from terminald.enrolment.model import EnrolmentContent
from terminald.revocation.acceptance import DEFAULT_MAX_CLOCK_SKEW


@dataclass(frozen=True)
class Installed:
    """What the terminal holds now (or, for ``floor``, ever held)."""

    version: int
    issued_at: datetime
    digest: bytes


def check_acceptable(
    installed: Installed | None,
    incoming: SetHeader,
    now: datetime,
    max_clock_skew: timedelta = DEFAULT_MAX_CLOCK_SKEW,
) -> None:
    """Raise :class:`EnrolmentRejected` unless ``incoming`` may follow ``installed``."""
    if now >= incoming.valid_until:
        raise EnrolmentRejected(
            RejectReason.EXPIRED,
            f"version {incoming.version} was valid until {incoming.valid_until.isoformat()}",
        )
    if incoming.issued_at > now + max_clock_skew:
        raise EnrolmentRejected(
            RejectReason.ISSUED_IN_FUTURE,
            f"issued at {incoming.issued_at.isoformat()}, after now ({now.isoformat()})",
        )
    check_sequence(installed, incoming)


def check_sequence(installed: Installed | None, incoming: SetHeader) -> None:
    """The time-independent rules."""
    if incoming.kind == SetKind.DELTA:
        if installed is None:
            raise EnrolmentRejected(
                RejectReason.NO_BASE,
                f"delta to version {incoming.version} needs base {incoming.base_version}, "
                "and no enrolment set is installed (apply a full set)",
            )
        if incoming.base_version != installed.version:
            raise EnrolmentRejected(
                RejectReason.WRONG_BASE,
                f"delta applies to version {incoming.base_version}, "
                f"installed is {installed.version}",
            )
        if incoming.base_digest != installed.digest:
            raise EnrolmentRejected(
                RejectReason.WRONG_BASE,
                f"delta applies to another version {incoming.base_version} than the one "
                f"installed (base digest {incoming.base_digest.hex()[:16]}, installed "
                f"{installed.digest.hex()[:16]})",
            )
    check_floor(installed, incoming, "installed")


def check_floor(installed: Installed | None, incoming: SetHeader, what: str) -> None:
    """Version strictly up and issue time not back, against ``what`` (installed, or a
    mark of what was installed before)."""
    if installed is None:
        return
    if incoming.version <= installed.version:
        raise EnrolmentRejected(
            RejectReason.ROLLBACK,
            f"version {incoming.version} is not newer than version {installed.version} {what}",
        )
    if incoming.issued_at < installed.issued_at:
        raise EnrolmentRejected(
            RejectReason.ROLLBACK,
            f"issued {incoming.issued_at.isoformat()}, before version {installed.version} "
            f"{what} (issued {installed.issued_at.isoformat()})",
        )


def resulting_content(
    bundle: EnrolmentBundle, current: EnrolmentContent | None
) -> EnrolmentContent:
    """The content once ``bundle`` is installed over ``current`` (checked acceptable),
    its digest checked against the signed one."""
    if isinstance(bundle.content, EnrolmentDelta):
        if current is None:
            raise EnrolmentRejected(RejectReason.NO_BASE, "no enrolment set is installed")
        try:
            content = apply_delta(current, bundle.content)
        except EnrolmentFormatError as exc:
            raise EnrolmentRejected(RejectReason.INCONSISTENT_DELTA, str(exc)[:1000]) from None
        if content_digest(content, check=False) != bundle.header.content_digest:
            raise EnrolmentRejected(
                RejectReason.DIGEST_MISMATCH,
                "the delta applied does not give the content it was signed for",
            )
        return content
    return bundle.content  # open_set checked a full set's digest
