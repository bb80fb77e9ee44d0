"""What the daemon records of each decision and event: a log line, an audit row, and the
listeners (the demo screen, the scenario runner, tests). Runs on the loop; never waits on
I/O (the audit trail only queues the row, ``store/audit.py``)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from terminald.core.access import AccessPolicy
from terminald.core.auth import CardIdentity
from terminald.core.commands import AlarmChanged, Record
from terminald.core.reasons import DESCRIPTIONS
from terminald.daemon.card_worker import CardTiming
from terminald.daemon.live_revocation import RevocationPicked
from terminald.daemon.logfmt import log_event
from terminald.store.audit import AuditEntry, AuditLog

logger = logging.getLogger("terminald.daemon")

Listener = Callable[[Record | AlarmChanged], None]


class Recorder:
    """``terminal_id``, ``access`` and ``timing`` are read at each record: a reload
    changes the first two, each card the last."""

    def __init__(
        self,
        *,
        terminal_id: Callable[[], str],
        access: Callable[[], AccessPolicy],
        timing: Callable[[], CardTiming],
        clock: Callable[[], datetime],
        audit: AuditLog | None,
    ) -> None:
        self._terminal_id = terminal_id
        self._access = access
        self._timing = timing
        self._clock = clock
        self.audit = audit
        self.listeners: list[Listener] = []

    def record(self, record: Record) -> None:
        values: dict[str, object] = {}
        label = ""
        if record.reason is not None:
            values["reason"] = record.reason.value
            if record.serial is not None:  # a certificate is its issuer and serial
                issuer = record.issuer_key_id
                values["issuer"] = issuer.hex() if issuer is not None else "unknown"
            values["serial"] = record.serial
            label = self._label(record.serial, record.issuer_key_id)
            if label:
                values["label"] = label
            values["detail"] = record.detail or DESCRIPTIONS[record.reason]
            timing = self._timing()
            values["card_ms"] = round(timing.elapsed_ms, 1)
            values["apdus"] = timing.apdus
        else:
            values["detail"] = record.detail
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
    ) -> None:
        """A row in the audit trail; a failing trail never stops a door, nor waits the loop."""
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
        )
        # Only queues the row: the audit writer thread owns the file, so the loop never
        # waits on it; it logs audit_waiting / audit_recovered itself (store/audit.py).
        self.audit.append(entry)

    def _label(self, serial: int | None, issuer: bytes | None) -> str:
        # The enrolled label of this very certificate, by the record's own pair: the
        # serial alone could name the same-serial holder of another root.
        if serial is None or issuer is None:
            return ""
        match = getattr(self._access(), "match", None)
        card = match(CardIdentity(serial, issuer)) if callable(match) else None
        return str(getattr(card, "label", "") or "")

    def tell(self, item: Record | AlarmChanged) -> None:
        for listener in self.listeners:
            try:
                listener(item)
            except Exception:
                logger.exception("event=listener_failed")
