"""``terminald doctor``'s enrolment check: is a signed set installed, readable, in date?

With ``[access] policy = "enrolment"`` a missing, damaged or stale ``enrolment.sqlite``
refuses every card (``enrolment_unavailable`` / ``enrolment_stale``); the daemon keeps
running and only its log says why, so the technician's first tool must say it too.
Doctor only looks: it reads a private copy of the database and its WAL (opening the
live file, even read-only, may create ``-shm`` or wait on the daemon's install).
"""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
from datetime import datetime, timedelta
from pathlib import Path
from typing import Final

from terminald.config import Config
from terminald.daemon.doctor_env import Finding
from terminald.enrolment.errors import EnrolmentError
from terminald.enrolment.model import SetInfo
from terminald.store.enrolment_db import FILE_NAME, SCHEMA
from terminald.store.enrolment_rows import installed_info, meta

ENROLMENT_WARN: Final = timedelta(hours=24)
CHECK: Final = "enrolment"


def _read_copy(path: Path) -> SetInfo | None:
    """The installed set's summary from a copy of ``path`` (and its WAL, where the last
    installs may still be). Raises sqlite3.Error, OSError or EnrolmentError."""
    with tempfile.TemporaryDirectory(prefix="terminald-doctor-") as tmp:
        copy = Path(tmp) / path.name
        shutil.copyfile(path, copy)
        wal = Path(f"{path}-wal")
        if wal.exists():
            shutil.copyfile(wal, Path(f"{copy}-wal"))
        conn = sqlite3.connect(copy, isolation_level=None)
        try:
            row = conn.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
            if row is None or row[0] != SCHEMA:
                found = None if row is None else row[0]
                raise sqlite3.DatabaseError(f"schema {found!r}, this version reads {SCHEMA}")
            meta(conn)  # a set without its schedules or calendar is damaged
            return installed_info(conn)
        finally:
            conn.close()


def check_enrolment(config: Config, now: datetime) -> Finding:
    """With the signed set's policy: the database is there, readable, holds a set, and
    the set is within its valid_until plus ``[access] grace_hours``."""
    policy = config.access.policy
    if policy != "enrolment":
        return Finding(CHECK, "ok", f'not used ([access] policy = "{policy}")')
    path = config.state.dir / FILE_NAME
    apply = "terminald enrolment apply SET (or from the back office: host push-enrolment SET)"
    if not path.exists():
        return Finding(
            CHECK, "fail", f"{path}: no enrolment set installed; every card is refused "
            "(enrolment_unavailable)", apply,
        )  # fmt: skip
    try:
        info = _read_copy(path)
    except (sqlite3.Error, OSError, EnrolmentError, ValueError) as exc:
        return Finding(
            CHECK,
            "fail",
            f"{path} is unusable ({exc}); every card is refused (enrolment_unavailable)",
            f"stop the daemon, move {path} (and its -wal, -shm) aside, start it, then "
            f"{apply}; the rollback mark {path}.high stays",
        )
    if info is None:
        return Finding(
            CHECK, "fail", f"{path}: no enrolment set installed; every card is refused "
            "(enrolment_unavailable)", apply,
        )  # fmt: skip
    summary = (
        f"version {info.version}: {info.people} people, {info.credentials} certificates, "
        f"valid until {info.valid_until.isoformat()}"
    )
    stale_at = info.valid_until + timedelta(hours=config.access.grace_hours)
    if now >= stale_at:
        return Finding(
            CHECK,
            "fail",
            f"{summary}: stale since {stale_at.isoformat()}; every card is refused "
            "(enrolment_stale)",
            "have the back office push a newer set, or " + apply,
        )
    if stale_at - now < ENROLMENT_WARN:
        return Finding(
            CHECK,
            "warn",
            f"{summary}: stale in {stale_at - now} (then every card is refused)",
            "have the back office push a newer set",
        )
    return Finding(CHECK, "ok", summary)
