"""An enrolment set held in memory: the :class:`Enrolment` protocol for tests and the
simulator (the daemon uses the SQLite store, ``store/enrolment_db.py``)."""

from __future__ import annotations

import threading
from datetime import datetime

from terminald.enrolment.model import (
    AgeAttestation,
    Calendar,
    EnrolmentContent,
    Person,
    SetInfo,
    WeeklySchedule,
)

MAX_AGE_YES = 16  # kept yeses per certificate (one per threshold is all that matters)


class MemoryEnrolment:
    """Safe from any thread. ``install`` replaces the content at once (a relink: the new
    credential arrives with the next set); the kept age yeses survive it, as in the store."""

    def __init__(
        self, content: EnrolmentContent | None = None, info: SetInfo | None = None
    ) -> None:
        self._lock = threading.Lock()
        self._content = content if content is not None else EnrolmentContent()
        self._info = info
        self._yes: dict[tuple[bytes, int], tuple[AgeAttestation, ...]] = {}

    @classmethod
    def installed(
        cls,
        content: EnrolmentContent,
        issued_at: datetime,
        valid_until: datetime,
        version: int = 1,
    ) -> MemoryEnrolment:
        """A set as if installed: its :class:`SetInfo` built from the content (no digest:
        the codec's canonical digest belongs to ``enrolment/codec.py``)."""
        return cls(content, _info(content, issued_at, valid_until, version))

    def install(
        self, content: EnrolmentContent, issued_at: datetime, valid_until: datetime, version: int
    ) -> None:
        info = _info(content, issued_at, valid_until, version)
        with self._lock:
            self._content, self._info = content, info

    def content(self) -> EnrolmentContent:
        with self._lock:
            return self._content

    def info(self) -> SetInfo | None:
        with self._lock:
            return self._info

    def lookup(self, issuer_key_id: bytes, serial: int) -> Person | None:
        with self._lock:
            credential = self._content.credentials.get((issuer_key_id, serial))
            return None if credential is None else self._content.people.get(credential.subject)

    def schedule(self, name: str) -> WeeklySchedule | None:
        with self._lock:
            return self._content.schedules.get(name)

    def calendar(self) -> Calendar:
        with self._lock:
            return self._content.calendar

    def age_yes(self, issuer_key_id: bytes, serial: int) -> tuple[AgeAttestation, ...]:
        with self._lock:
            return self._yes.get((issuer_key_id, serial), ())

    def remember_age_yes(self, issuer_key_id: bytes, serial: int, yes: AgeAttestation) -> None:
        with self._lock:
            kept = self._yes.get((issuer_key_id, serial), ())
            if yes not in kept:
                self._yes[(issuer_key_id, serial)] = (*kept, yes)[-MAX_AGE_YES:]


def _info(
    content: EnrolmentContent, issued_at: datetime, valid_until: datetime, version: int
) -> SetInfo:
    return SetInfo(
        version=version,
        issued_at=issued_at,
        valid_until=valid_until,
        digest=b"",
        people=len(content.people),
        credentials=len(content.credentials),
    )
