"""What the daemon records of each decision and event: a log line, an audit row, and the
listeners (the demo screen, the scenario runner, tests). Runs on the loop; never waits on
I/O (the audit trail only queues the row, ``store/audit.py``)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from terminald.core.commands import AlarmChanged, Record
from terminald.core.reasons import DESCRIPTIONS
from terminald.daemon.card_worker import CardTiming
from terminald.daemon.live_revocation import RevocationPicked
from terminald.daemon.logfmt import log_event
from terminald.store.audit import AuditEntry, AuditLog

logger = logging.getLogger("terminald.daemon")

Listener = Callable[[Record | AlarmChanged], None]


# The policy's attribute that names the person for people (the audit log's label column).
LABEL_ATTR = "label"


class Recorder:
    """``terminal_id``, ``location``, ``clock_trusted`` and ``timing`` are read at each
    record: a reload changes the first two, the signed times the third, each card the last."""

    def __init__(
        self,
        *,
        terminal_id: Callable[[], str],
        location: Callable[[], str],
        clock_trusted: Callable[[], bool],
        timing: Callable[[], CardTiming],
        clock: Callable[[], datetime],
        audit: AuditLog | None,
    ) -> None:
        self._terminal_id = terminal_id
        self._location = location
        self._clock_trusted = clock_trusted
        self._timing = timing
        self._clock = clock
        self.audit = audit
        self.listeners: list[Listener] = []

    def record(self, record: Record) -> None:
        values: dict[str, object] = {}
        label = dict(record.attrs).get(LABEL_ATTR, "")
        attrs = tuple(item for item in record.attrs if item[0] != LABEL_ATTR)
        if record.reason is not None:
            values["reason"] = record.reason.value
            if record.serial is not None:  # a certificate is its issuer and serial
                issuer = record.issuer_key_id
                values["issuer"] = issuer.hex() if issuer is not None else "unknown"
            values["serial"] = record.serial
            if record.subject is not None:
                values["subject"] = record.subject
            if label:
                values["label"] = label
            values["detail"] = record.detail or DESCRIPTIONS[record.reason]
            timing = self._timing()
            values["card_ms"] = round(timing.elapsed_ms, 1)
            values["apdus"] = timing.apdus
        else:
            if record.serial is not None:  # a vend's end names the card it was for
                issuer = record.issuer_key_id
                values["issuer"] = issuer.hex() if issuer is not None else "unknown"
                values["serial"] = record.serial
            if record.subject is not None:
                values["subject"] = record.subject
            values["detail"] = record.detail
        values.update(attrs)
        if record.kind in ("granted", "attendance") and not record.pin_verified:
            values["pin"] = "not_verified"  # a PIN-less product (docs/policy.md)
        level = logging.INFO if record.kind != "refused" else logging.WARNING
        log_event(logger, level, record.kind, **values)
        evidence = record.evidence
        self.row(
            record.kind,
            record.reason.value if record.reason else None,
            record.serial,
            label or None,
            str(values["detail"]),
            (evidence.message, evidence.signature, evidence.certificate) if evidence else None,
            record.issuer_key_id,
            subject=record.subject,
            attrs=attrs,
            pin_verified=record.pin_verified,
        )
        self.tell(record)

    def alarm(self, command: AlarmChanged) -> None:
        level = logging.WARNING if command.active else logging.INFO
        log_event(logger, level, "alarm", alarm=command.alarm, active=command.active)
        state = "raised" if command.active else "cleared"
        self.row("alarm", None, None, None, f"{command.alarm} {state}")
        self.tell(command)

    def revocation_picked(self, event: RevocationPicked) -> None:
        header = event.outcome.installed
        if header is None:
            problem = event.outcome.problem
            log_event(logger, logging.ERROR, "revocation_not_installed", problem=problem)
            self.row("revocation", None, None, None, problem)
            return
        log_event(
            logger,
            logging.INFO,
            "revocation_installed",
            kind=header.kind.label,
            version=header.version,
            valid_until=header.valid_until.isoformat(),
        )
        detail = (
            f"{header.kind.label} version {header.version} issued "
            f"{header.issued_at.isoformat()} valid until {header.valid_until.isoformat()}"
        )
        self.row("revocation", None, None, None, detail)

    def row(
        self,
        kind: str,
        reason: str | None,
        serial: int | None,
        label: str | None,
        detail: str,
        evidence: tuple[bytes, bytes, bytes] | None = None,
        issuer: bytes | None = None,
        *,
        subject: str | None = None,
        attrs: tuple[tuple[str, str], ...] = (),
        pin_verified: bool = False,
    ) -> None:
        """A record in the audit log; a failing log never stops a door, nor waits the loop."""
        if self.audit is None:
            return
        entry = AuditEntry(
            self._clock(),
            self._terminal_id(),
            kind,
            reason,
            serial,
            label,
            detail,
            evidence,
            issuer,
            location=self._location(),
            clock_trusted=self._clock_trusted(),
            subject=subject,
            attrs=attrs,
            pin_verified=pin_verified,
        )
        # Only queues the row: the audit writer thread owns the file, so the loop never
        # waits on it; it logs audit_waiting / audit_recovered itself (store/audit.py).
        self.audit.append(entry)

    def tell(self, item: Record | AlarmChanged) -> None:
        for listener in self.listeners:
            try:
                listener(item)
            except Exception:
                logger.exception("event=listener_failed")
