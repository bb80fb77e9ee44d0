"""The bounds and the delta shape shared by the encoder (``codec.py``) and the decoder
(``codec_decode.py``) of enrolment bodies."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Final

from terminald.enrolment.model import Calendar, Credential, Person, WeeklySchedule

FORMAT: Final = 1
MAX_PEOPLE: Final = 2_000_000
MAX_ISSUERS: Final = 4096
MAX_GROUP_NAMES: Final = 65_536
MAX_NAME: Final = 64  # a group or schedule name, a country code
MAX_CARDS: Final = 16  # certificates per person (renewals are removed as they go)
MAX_AGES: Final = 8
MAX_SCHEDULES: Final = 1024
MAX_DATES: Final = 20_000  # calendar dates (a holiday list of a few decades)
MAX_KEY_ID: Final = 64  # bytes; J-LIS roots' key ids are 20 (SHA-1, RFC 5280 method 1)
MAX_SERIAL_BYTES: Final = 20  # RFC 5280 §4.1.2.2
MAX_BODY: Final = 256 * 1024 * 1024  # inflated; 100,000 synthetic people take 4.5 MB
U64: Final = 2**64
MAX_TIME: Final = int(datetime(9999, 12, 31, tzinfo=UTC).timestamp())
MIN_ORDINAL: Final = date(1900, 1, 1).toordinal()
MAX_ORDINAL: Final = date(9999, 12, 31).toordinal()
DIGEST_SIZE: Final = 32


@dataclass(frozen=True)
class EnrolmentDelta:
    """What turns one set's content into the next. Removing a subject removes its
    certificates too; ``schedules`` and ``calendar`` (None: unchanged) replace whole."""

    removed_subjects: frozenset[str] = frozenset()
    upserted_people: tuple[Person, ...] = ()
    removed_credentials: frozenset[tuple[bytes, int]] = frozenset()
    added_credentials: tuple[Credential, ...] = ()
    schedules: dict[str, WeeklySchedule] | None = field(default=None)
    calendar: Calendar | None = None
