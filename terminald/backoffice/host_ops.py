"""What the back office does over a :class:`HostLink`, one function a command:
sign and send the time, sign and push a configuration, push a signed enrolment set or
revocation bundle, pull the audit trail. ``terminald host`` is a thin shell around these;
a gateway calls them directly.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from terminald.backoffice.host_link import HostError, HostLink, Progress
from terminald.link import messages as m
from terminald.link.bulk_sender import Outcome
from terminald.link.signed import sign_object, time_body

# The signed-object kinds pushed as files (revocation bundles and enrolment sets carry
# their own signature: push_revocation, push_enrolment).
SIGNED_PUSH = ("config",)


@dataclass(frozen=True)
class Pulled:
    rows: list[m.AuditRow]
    cursor: int  # the last sequence number received (the next --since)
    gaps: list[m.Gap]
    acknowledged: int | None  # the mark after the ack, None when not acknowledged


def send_time(
    link: HostLink, address: int, *, force: bool = False, clock: Callable[[], float] = time.time
) -> m.TimeReply:
    """Ask the terminal for a nonce, sign our clock's time with it, send it."""
    hello = link.connect(address)
    nonce = link.request(address, m.TimeNonce(id=0), m.TimeNonceReply)
    now = clock()
    signed = sign_object(
        "time",
        time_body(now),
        version=int(now),
        issued=int(now),
        signing_key=link.keys.signing_private,
        terminal=hello.terminal,
        nonce=nonce.nonce,
    )
    return link.request(address, m.TimeSet(id=0, object=signed, force=force), m.TimeReply)


def push_signed(
    link: HostLink,
    address: int,
    kind: str,
    body: bytes,
    *,
    version: int | None = None,
    progress: Progress | None = None,
    clock: Callable[[], float] = time.time,
) -> Outcome:
    """Sign ``body`` (a configuration file) for this terminal and push it.

    ``version`` must grow with every push of a kind; by default the current Unix time,
    which does as long as the back office's clock is not set back.
    """
    if kind not in SIGNED_PUSH:
        raise ValueError(f"unknown kind {kind}")
    hello = link.connect(address)
    now = int(clock())
    signed = sign_object(
        kind,
        body,
        version=version if version is not None else now,
        issued=now,
        signing_key=link.keys.signing_private,
        terminal=hello.terminal,
    )
    return link.push(address, kind, signed, progress=progress)


def push_revocation(
    link: HostLink, address: int, bundle: bytes, *, progress: Progress | None = None
) -> Outcome:
    link.connect(address)
    return link.push(address, "revocation", bundle, progress=progress)


def push_enrolment(
    link: HostLink, address: int, signed_set: bytes, *, progress: Progress | None = None
) -> Outcome:
    """Push a signed enrolment set (``terminald enrolment build``) as a bulk transfer; the
    terminal installs it with ``EnrolmentStore.install`` and answers with the transfer's
    ``bulk.result``."""
    link.connect(address)
    return link.push(address, "enrolment", signed_set, progress=progress)


def pull_audit(link: HostLink, address: int, since: int, *, ack: bool) -> Pulled:
    """Every row after ``since``, page by page; acknowledged at the end when ``ack``."""
    link.connect(address)
    rows: list[m.AuditRow] = []
    gaps: list[m.Gap] = []
    cursor = since
    while True:
        page = link.request(address, m.AuditPull(id=0, cursor=cursor, max_rows=256), m.AuditRows)
        rows.extend(page.rows)
        if page.gap is not None:
            gaps.append(page.gap)
        if page.next <= cursor and not page.rows:
            break
        cursor = page.next
        if not page.more:
            break
    mark = None
    if ack and cursor > since:
        reply = link.request(address, m.AuditAck(id=0, cursor=cursor), m.Ack)
        mark = cursor if reply else None
    return Pulled(rows, cursor, gaps, mark)


__all__ = [
    "HostError",
    "Pulled",
    "pull_audit",
    "push_enrolment",
    "push_revocation",
    "push_signed",
    "send_time",
]
