"""An enrolment install's acceptance and its rollback mark (``enrolment.sqlite.high``).

The database holds the installed set's version; the mark beside it (store/high_water.py)
outlives the database, so deleting or damaging ``enrolment.sqlite`` cannot open the door
to an older, signed set (docs/enrolment.md, "Rollback").
"""

from __future__ import annotations

import logging
import os
from contextlib import suppress
from datetime import datetime, timedelta
from pathlib import Path

from terminald.enrolment.acceptance import Installed, check_acceptable, check_floor
from terminald.enrolment.bundle import SetHeader
from terminald.enrolment.model import SetInfo
from terminald.store.high_water import HighWater, read_high_water, write_high_water
from terminald.store.revocation_types import owner_for

log = logging.getLogger("terminald.store.enrolment_db")  # the store's own log name


def check_install(
    current: SetInfo | None,
    header: SetHeader,
    now: datetime,
    max_clock_skew: timedelta,
    high_path: Path,
) -> None:
    """Raise EnrolmentRejected unless ``header`` may replace or extend ``current``."""
    installed = None if current is None else Installed(
        current.version, current.issued_at, current.digest
    )  # fmt: skip
    check_acceptable(installed, header, now, max_clock_skew)
    mark = read_high_water(high_path)
    if mark is not None and not (
        # The database was lost (moved aside when damaged): the very set the mark
        # records — same version, same issue time — is not older, and taking it
        # back is how a technician recovers without a new version from the back
        # office. Anything older, or that version issued at another time, still is.
        current is None and header.version == mark.version and header.issued_at == mark.issued_at
    ):
        check_floor(
            Installed(mark.version, mark.issued_at, b""),
            header,
            f"installed before (the mark {high_path}: remove it only if the back "
            "office really started its versions over)",
        )


def after_install(path: Path, high_path: Path, header: SetHeader) -> None:
    """Raise the mark to the installed set; give a root-run apply's files to the daemon."""
    owner = owner_for(path.parent)
    try:
        write_high_water(high_path, HighWater(header.version, header.issued_at), owner)
    except OSError as exc:  # the database holds the version; only a deleted one is exposed
        log.warning("enrolment: rollback mark %s not written (%s)", high_path, exc)
    if owner is not None:  # a root-run apply must leave files the daemon can open
        for suffix in ("", "-wal", "-shm"):
            with suppress(OSError):
                os.chown(f"{path}{suffix}", *owner)
