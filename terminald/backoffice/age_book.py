"""The back office's stand-in for the J-LIS age service: answers "is the holder of
(issuer, serial) at least N years old on date D?" with yes/no and the certificate's state.

The real service (J-LIS, for registered verifiers) holds the holders' birth dates and
answers yes/no; this file simulates it, so it holds birth dates too. They stay on the
back office: only ``valid|invalid|unknown`` and yes/no/nil leave this module (the
``age.answer`` message has no field that could carry a date), and a terminal keeps only
"at least N as of D".

Format (TOML)::

    [[holder]]
    issuer = "1ac1…"          # the issuing root's key id, hex
    serial = 4660             # the certificate's serial (an integer; any size)
    certificate = "valid"     # valid (default) | invalid | unknown
    birth_date = 2006-12-01   # a TOML date; omitted: the age is not known (over = nil)

A holder that is not in the file: certificate "unknown", over nil. An "invalid" or
"unknown" certificate never gets a yes/no either.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Final

from terminald.files import describe_error, read_limited
from terminald.link.messages import AgeAnswer

MAX_BOOK_SIZE: Final = 64 * 1024 * 1024  # ~100 bytes a holder: ~600,000 holders
MAX_SERIAL: Final = 2**160  # RFC 5280: serials are at most 20 bytes
STATES: Final = ("valid", "invalid", "unknown")
UNKNOWN: Final = AgeAnswer("unknown", None)


class AgeBookError(Exception):
    """The file cannot be read or a holder is malformed; the message names which."""


@dataclass(frozen=True)
class Holder:
    certificate: str
    birth_date: date | None  # back office only; never sent


def attained(birth: date, years: int) -> date:
    """The first day on which someone born on ``birth`` is ``years`` old.

    Japanese law counts age from the day of birth (年齢計算ニ関スル法律) and ends the
    period at the end of the day before the anniversary, or at the end of the month when
    that month has no such day (民法 第143条): so one is N on the anniversary, and someone
    born on 29 February is N on 1 March of a common year.
    """
    try:
        return birth.replace(year=birth.year + years)
    except ValueError:  # 29 February in a common year
        return date(birth.year + years, 3, 1)


# A terminal's local date is the UTC date or the day either side (zones UTC-12..UTC+14).
MAX_DAY_SKEW: Final = timedelta(days=1)


class AgeBook:
    """Holders by (issuer key id, serial); ``answer`` is the only way out."""

    def __init__(self, holders: dict[tuple[bytes, int], Holder]) -> None:
        self._holders = holders

    def __len__(self) -> int:
        return len(self._holders)

    @classmethod
    def load(cls, path: Path) -> AgeBook:
        try:
            data = read_limited(path, MAX_BOOK_SIZE)
        except OSError as exc:
            raise AgeBookError(f"{path}: {describe_error(exc)}") from None
        try:
            doc = tomllib.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise AgeBookError(f"{path}: not TOML: {exc}") from None
        return cls.from_document(doc, str(path))

    @classmethod
    def from_document(cls, doc: dict[str, Any], where: str = "age book") -> AgeBook:
        extra = set(doc) - {"holder"}
        if extra:
            raise AgeBookError(f"{where}: unknown table(s) {', '.join(sorted(extra))}")
        items = doc.get("holder", [])
        if not isinstance(items, list):
            raise AgeBookError(f"{where}: holder must be an array of tables ([[holder]])")
        holders: dict[tuple[bytes, int], Holder] = {}
        for number, item in enumerate(items, 1):
            here = f"{where}: holder {number}"
            key, holder = _holder(item, here)
            if key in holders:
                raise AgeBookError(f"{here}: issuer {key[0].hex()} serial {key[1]} twice")
            holders[key] = holder
        return cls(holders)

    def answer(
        self, issuer: bytes, serial: int, age: int, on: date, *, today: date | None = None
    ) -> AgeAnswer:
        """Whether the holder is at least ``age`` on ``on`` (the terminal's local date),
        with the certificate's state; yes/no only for a valid certificate with a known
        birth date. With ``today`` (the back office's own UTC date), ``on`` more than
        MAX_DAY_SKEW from it gets no yes/no: questions about other days would let the
        asker bisect the birth date, which never leaves the back office."""
        holder = self._holders.get((issuer, serial))
        if holder is None:
            return UNKNOWN
        if holder.certificate != "valid" or holder.birth_date is None:
            return AgeAnswer(holder.certificate, None)
        if today is not None and abs(on - today) > MAX_DAY_SKEW:
            return AgeAnswer("valid", None)
        return AgeAnswer("valid", on >= attained(holder.birth_date, age))


def _holder(item: object, here: str) -> tuple[tuple[bytes, int], Holder]:
    if not isinstance(item, dict):
        raise AgeBookError(f"{here}: must be a table")
    extra = set(item) - {"issuer", "serial", "certificate", "birth_date"}
    if extra:
        raise AgeBookError(f"{here}: unknown key(s) {', '.join(sorted(extra))}")
    issuer_hex = item.get("issuer")
    try:
        if not isinstance(issuer_hex, str):
            raise ValueError
        issuer = bytes.fromhex(issuer_hex)
        if not 1 <= len(issuer) <= 64:
            raise ValueError
    except ValueError:
        raise AgeBookError(f"{here}: issuer must be the key id in hex (1-64 bytes)") from None
    serial = item.get("serial")
    if type(serial) is not int or not 0 <= serial < MAX_SERIAL:
        raise AgeBookError(f"{here}: serial must be a non-negative integer below 2**160")
    state = item.get("certificate", "valid")
    if state not in STATES:
        raise AgeBookError(f"{here}: certificate must be one of {', '.join(STATES)}")
    birth = item.get("birth_date")
    if birth is not None and (type(birth) is not date):
        raise AgeBookError(f"{here}: birth_date must be a TOML date (YYYY-MM-DD)")
    return (issuer, serial), Holder(state, birth)
