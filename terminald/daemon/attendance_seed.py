"""The attendance toggle's memory at start, from the audit log (docs/policy.md).

The toggle clocks a person out when their last event today was an in or a break; that
memory (core/policy/attendance.py) lives in the process. Without it a restart at noon
(a power cut, an update) would clock everyone in again at their evening tap. So at start
the daemon reads the recent ``attendance`` records back, off the event loop (before it
runs), and hands each to :meth:`Policy.seed_attendance`.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from pathlib import Path
from typing import Final

from terminald.core.policy import Policy
from terminald.store.audit import AuditError, AuditReader

log = logging.getLogger(__name__)

# The toggle looks at the same local day only; 36 h covers that day in any time zone.
SEED_WINDOW: Final = timedelta(hours=36)


def seed_attendance(policy: Policy, audit_path: Path, now: datetime) -> int:
    """Feed the ``attendance`` records of the last SEED_WINDOW before ``now`` (aware) to
    ``policy``; returns how many. Never raises: a missing or unreadable log seeds nothing
    (logged), and the terminal starts as before."""
    if not audit_path.exists():
        return 0
    count = 0
    try:
        reader = AuditReader(audit_path)
        try:
            for record in reader.records(since=now - SEED_WINDOW, kind="attendance"):
                entry = record.entry
                event = dict(entry.attrs).get("attendance")
                if entry.subject is None or event is None:
                    continue
                try:
                    policy.seed_attendance(entry.subject, event, entry.at)
                except ValueError:  # an event type this version does not know
                    continue
                count += 1
        finally:
            reader.close()
    except AuditError as exc:
        log.warning("event=attendance_not_seeded problem=%r", str(exc))
        return count
    log.info("event=attendance_seeded records=%d", count)
    return count
