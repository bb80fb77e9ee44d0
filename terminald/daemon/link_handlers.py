"""The terminal's answers to the back office's requests (docs/protocol.md §4).

One function per request type, run on the link's worker threads (never the event loop):
reads and changes go through the daemon's :class:`~terminald.daemon.operator.Operator`
(which posts to the loop and waits with a timeout), installs through
:class:`~terminald.daemon.link_install.LinkInstaller`, the audit trail through its cursor.
Every request gets exactly one reply; anything refused is an ``error`` with a code and a
one-line reason, never a traceback.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from terminald.core.terminal import Mode
from terminald.daemon.link_install import LinkInstaller
from terminald.daemon.operator import Operator, OperatorError
from terminald.link import messages as m
from terminald.store.audit import AuditEntry, AuditError, AuditLog

logger = logging.getLogger(__name__)

PROTOCOL = 1
# "policy": it asks age.query and takes presence and partners (docs/protocol.md §4.3).
CAPABILITIES = (
    "audit",
    "broadcast",
    "bulk",
    "config",
    "enrolment",
    "events",
    "policy",
    "revocation",
    "time",
)


@dataclass
class LinkContext:
    """What the handlers reach. ``counters`` gives the link's own figures for status."""

    terminal_id: str
    operator: Operator
    installer: LinkInstaller | None  # None: nothing can be installed (a bench terminal)
    audit: AuditLog | None
    counters: Callable[[], dict[str, int]]
    restart: Callable[[str], None]


def software_version() -> str:
    """The installed package's version, as ``terminald --version`` gives it."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("terminald")
    except PackageNotFoundError:
        return "unknown"


def _unix(moment: datetime | None) -> int | None:
    return None if moment is None else int(moment.timestamp())


def _attrs_of(entry: AuditEntry) -> tuple[tuple[str, str], ...]:
    """The entry's policy attributes that fit the wire (m.ATTRS): an attribute the
    catalogue cannot carry is left out of the event rather than losing the whole event
    (the pulled trail keeps it)."""
    kept: list[tuple[str, str]] = []
    for key, value in entry.attrs:
        try:
            m.ATTRS.check({key: value}, "attrs")
        except m.MessageError:
            continue
        kept.append((key, value))
    return tuple(sorted(kept)[: m.MAX_ATTRS])


def _subject_of(entry: AuditEntry) -> str | None:
    subject = entry.subject
    if subject is None or not subject or len(subject) > 64 or not subject.isprintable():
        return None
    return subject


def row_of(seq: int, entry: AuditEntry, *, evidence: bool) -> m.AuditRow:
    proof = None
    if evidence and entry.evidence is not None:
        challenge, signature, der = entry.evidence
        proof = m.Evidence(challenge=challenge, signature=signature, certificate=der)
    return m.AuditRow(
        seq=seq,
        at=entry.at.isoformat(),
        terminal=entry.terminal,
        kind=entry.kind,
        reason=entry.reason,
        issuer=entry.issuer_key_id,
        serial=None if entry.serial is None else str(entry.serial),
        label=entry.label,
        detail=entry.detail[:4096],
        evidence=proof,
        subject=_subject_of(entry),
        attrs=_attrs_of(entry),
    )


def hello(ctx: LinkContext, request: m.Hello) -> m.Message:
    revocation = ctx.operator.revocation()
    config = ctx.operator.config()
    versions = ctx.installer.installed_versions() if ctx.installer else {}
    digest = bytes.fromhex(config.sha256) if config.sha256 else bytes(32)
    return m.HelloReply(
        id=request.id,
        terminal=ctx.terminal_id,
        software=software_version()[:64],
        protocol=PROTOCOL,
        revocation_version=revocation.version,
        revocation_issued=_unix(revocation.issued_at),
        enrolment_version=versions.get("enrolment", 0),
        config_version=versions.get("config", 0),
        config_digest=digest,
        capabilities=CAPABILITIES,
    )


def _line(text: str | None, limit: int = 256) -> str | None:
    """``text`` as status.reply carries it: one printable line of at most ``limit``
    characters (a reader's or clock's problem is free text from a library)."""
    if text is None:
        return None
    return "".join(c if c.isprintable() else " " for c in text)[:limit]


def _freshness(value: str | None, available: bool) -> str:
    if not available or value is None:
        return "none"
    return value if value in ("fresh", "grace", "stale") else "stale"


def status(ctx: LinkContext, request: m.Status) -> m.Message:
    view = ctx.operator.status()
    revocation = ctx.operator.revocation()
    clock = ctx.operator.time()
    if view.reader_problem:
        reader = "problem"
    elif view.card_present:
        reader = "card"
    else:
        reader = "ready"
    counters = sorted((k, max(0, min(v, 2**63 - 1))) for k, v in ctx.counters().items())
    return m.StatusReply(
        id=request.id,
        mode=view.mode,
        door=view.door,
        reader=reader,
        reader_problem=_line(view.reader_problem),
        alarms=view.alarms,
        clock=clock.system.timestamp(),
        trusted_time=int(clock.trusted.timestamp()),
        clock_problem=_line(clock.clock_problem),
        revocation=_freshness(revocation.freshness, revocation.available),
        revocation_version=revocation.version,
        revocation_valid_until=_unix(revocation.valid_until),
        link=tuple(counters[:32]),
    )


def time_nonce(ctx: LinkContext, request: m.TimeNonce) -> m.Message:
    if ctx.installer is None:
        return m.error_reply(request.id, m.UNSUPPORTED, "this terminal takes no time")
    return m.TimeNonceReply(id=request.id, nonce=ctx.installer.issue_nonce(), expires_s=60.0)


def time_set(ctx: LinkContext, request: m.TimeSet) -> m.Message:
    if ctx.installer is None:
        return m.error_reply(request.id, m.UNSUPPORTED, "this terminal takes no time")
    return ctx.installer.install_time(request.object, request.force).as_message(request.id)


def set_mode(ctx: LinkContext, request: m.SetMode) -> m.Message:
    try:
        mode = Mode(request.mode)
    except ValueError:
        return m.error_reply(request.id, m.BAD_MESSAGE, f"unknown mode {request.mode!r}")
    ctx.operator.set_mode(mode)
    ctx.operator.record("mode", f"mode {mode.value} set by the back office")
    return m.ModeReply(id=request.id, mode=mode.value)


def test(ctx: LinkContext, request: m.Test) -> m.Message:
    done = ctx.operator.test_output(request.output)  # type: ignore[arg-type]
    return m.TestResult(id=request.id, output=request.output, done=True, detail=done[:256])


def audit_pull(ctx: LinkContext, request: m.AuditPull) -> m.Message:
    if ctx.audit is None:
        return m.error_reply(request.id, m.REFUSED, "no audit trail")
    page = ctx.audit.page(request.cursor, request.max_rows)
    rows = [row_of(seq, entry, evidence=True) for seq, entry in page.rows]
    count = m.fit_rows(rows)
    rows = rows[:count]
    last = rows[-1].seq if rows else request.cursor
    gap = None if page.missing is None else m.Gap(first=page.missing[0], last=page.missing[1])
    return m.AuditRows(id=request.id, rows=tuple(rows), next=last, more=last < page.last, gap=gap)


def audit_ack(ctx: LinkContext, request: m.AuditAck) -> m.Message:
    if ctx.audit is None:
        return m.error_reply(request.id, m.REFUSED, "no audit trail")
    mark = ctx.audit.acknowledge(request.cursor)
    return m.Ack(id=request.id, detail=f"acknowledged through {mark}")


def restart(ctx: LinkContext, request: m.Restart) -> m.Message:
    ctx.restart("restart asked by the back office")
    return m.Ack(id=request.id, detail="restarting")


HANDLERS: dict[type[m.Message], Callable[[LinkContext, Any], m.Message]] = {
    m.Hello: hello,
    m.Status: status,
    m.TimeNonce: time_nonce,
    m.TimeSet: time_set,
    m.SetMode: set_mode,
    m.Test: test,
    m.AuditPull: audit_pull,
    m.AuditAck: audit_ack,
    m.Restart: restart,
}


def answer(ctx: LinkContext, request: m.Message) -> m.Message:
    """The reply to ``request``; an ``error`` when it is refused (never raises)."""
    handler = HANDLERS.get(type(request))
    if handler is None:
        return m.error_reply(request.id, m.UNSUPPORTED, f"{request.TYPE} is not served here")
    try:
        return handler(ctx, request)
    except OperatorError as exc:
        return m.error_reply(request.id, m.BUSY, str(exc)[:1024])
    except AuditError as exc:
        return m.error_reply(request.id, m.REFUSED, str(exc)[:1024])
    except Exception as exc:  # a bug: one line to the host, the trace to the journal
        logger.exception("event=link_handler_failed type=%s", request.TYPE)
        return m.error_reply(request.id, m.INTERNAL, f"internal error: {type(exc).__name__}")
