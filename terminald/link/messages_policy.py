"""The policy's messages (docs/protocol.md §4.3): the online age question and its answer,
anti-passback presence relayed between partner terminals, and the partners' heartbeat.

``age.query`` is the one request a terminal makes: "is the holder of (issuer, serial) at
least ``age`` years old on ``date``?". It carries that and nothing else, never a birth
date; the back office answers yes/no (``over``) with the certificate's state as the age
service knows it. The back office sends ``presence`` (a partner terminal admitted
``subject`` as an entry or exit) and ``partners`` (how long ago it last heard each
partner) as events. Pure: no I/O, no clock.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Final

from terminald.core.policy.vending import AgeAnswer  # the answer, as the policy uses it
from terminald.link.messages_base import Direction, Message, Role, message
from terminald.link.messages_catalogue import TERMINAL_ID
from terminald.link.messages_schema import (
    Bool,
    Bytes,
    Choice,
    Float,
    Int,
    MessageError,
    Optional,
    Text,
    describe,
    spec,
)

H2T, T2H = Direction.HOST_TO_TERMINAL, Direction.TERMINAL_TO_HOST

MAX_ISSUER: Final = 64  # a key id is 20 bytes (SHA-1 of the key); room for another scheme
# 2**160 has 49 digits: RFC 5280 serials are at most 20 bytes (as messages_audit).
MAX_SERIAL_DIGITS: Final = 49
MAX_AGE: Final = 150
MAX_PARTNERS: Final = 32  # msgpack maps are limited to 64 entries on unpacking anyway
MAX_SEEN_S: Final = 1e10  # seconds: ~300 years; anything longer is "never"
# Unix microseconds up to 9999-12-31T23:59:59.999999Z.
MAX_UNIX_US: Final = 253_402_300_799_999_999
CERTIFICATE_STATES: Final = ("valid", "invalid", "unknown")
DIRECTIONS: Final = ("entry", "exit")
SUBJECT: Final = Text(64, pattern=r".+")  # the enrolment's subject id: 1-64 printable
ATTR_KEY: Final = Text(32, pattern="[a-z0-9_]+")
ATTR_VALUE: Final = Text(64)
MAX_ATTRS: Final = 16


# --- specs this module adds ---------------------------------------------------------------


@dataclass(frozen=True)
class Serial:
    """A certificate serial as canonical decimal text (msgpack ints stop at 64 bits); an
    ``int`` in Python, never negative."""

    def check(self, value: object, where: str) -> int:
        text = Text(MAX_SERIAL_DIGITS, pattern="0|[1-9][0-9]*").check(value, where)
        return int(text)

    def dump(self, value: Any) -> Any:
        if type(value) is not int or value < 0:
            raise MessageError(f"serial: must be a non-negative integer, got {describe(value)}")
        return str(value)

    def describe(self) -> str:
        return f"decimal str ≤{MAX_SERIAL_DIGITS}"


@dataclass(frozen=True)
class Day:
    """A calendar date as ``YYYY-MM-DD`` text; a :class:`datetime.date` in Python."""

    def check(self, value: object, where: str) -> dt.date:
        text = Text(10, pattern=r"[0-9]{4}-[0-9]{2}-[0-9]{2}").check(value, where)
        try:
            return dt.date.fromisoformat(text)
        except ValueError:
            raise MessageError(f"{where}: not a calendar date") from None

    def dump(self, value: Any) -> Any:
        if not isinstance(value, dt.date) or isinstance(value, dt.datetime):
            raise MessageError(f"date: must be a date, got {describe(value)}")
        return value.isoformat()

    def describe(self) -> str:
        return "str YYYY-MM-DD"


@dataclass(frozen=True)
class TextMap:
    """A map of at most ``max_items`` ``key`` strings to values of ``value``; a tuple of
    pairs sorted by key in Python (so the dataclass stays frozen and equal maps compare
    equal)."""

    key: Text
    value: Any  # a Spec
    max_items: int

    def check(self, value: object, where: str) -> tuple[tuple[str, Any], ...]:
        if type(value) is not dict:
            raise MessageError(f"{where}: must be a map, got {describe(value)}")
        if len(value) > self.max_items:
            raise MessageError(f"{where}: at most {self.max_items} entries, got {len(value)}")
        return tuple(
            sorted(
                (self.key.check(k, f"{where} key"), self.value.check(v, f"{where}.{k}"))
                for k, v in value.items()
            )
        )

    def dump(self, value: Any) -> Any:
        return {k: self.value.dump(v) for k, v in value}

    def describe(self) -> str:
        return f"map {self.key.describe()}→{self.value.describe()} ≤{self.max_items}"


# An audit row's attributes (("passback", "entry"), ("product", "A"), ...).
ATTRS: Final = TextMap(ATTR_KEY, ATTR_VALUE, MAX_ATTRS)


# --- age ------------------------------------------------------------------------------------


@message
@dataclass(frozen=True, kw_only=True)
class AgeQuery(Message):
    """Terminal → host. The only identity is the certificate's (issuer key id, serial);
    no name, no birth date, no PIN."""

    TYPE = "age.query"
    DIRECTION, ROLE = T2H, Role.REQUEST
    REPLIES = ("age.answer",)
    SPEC = spec(
        issuer=Bytes(MAX_ISSUER, 1),
        serial=Serial(),
        age=Int(1, MAX_AGE),
        date=Day(),
    )
    SUMMARY = "is the holder of (issuer, serial) at least age years old on date (local)?"
    issuer: bytes  # the issuing root's key id
    serial: int
    age: int  # years
    date: dt.date  # the terminal's local date


@message
@dataclass(frozen=True, kw_only=True)
class AgeReply(Message):
    """Host → terminal, the answer to ``age.query`` of the same id."""

    TYPE = "age.answer"
    DIRECTION, ROLE = H2T, Role.REPLY
    SPEC = spec(certificate=Choice(*CERTIFICATE_STATES), over=Optional(Bool()))
    SUMMARY = "the certificate's state (valid, invalid, unknown) and yes/no/nil for the age"
    certificate: str
    over: bool | None

    def answer(self) -> AgeAnswer:
        return AgeAnswer(self.certificate, self.over)


# --- anti-passback ----------------------------------------------------------------------------


@message
@dataclass(frozen=True, kw_only=True)
class PresenceRelay(Message):
    """Host → terminal: the partner terminal ``terminal`` admitted ``subject`` as an
    ``entry`` or ``exit`` at ``at`` (Unix microseconds, UTC)."""

    TYPE = "presence"
    DIRECTION, ROLE = H2T, Role.EVENT
    SPEC = spec(
        subject=SUBJECT,
        direction=Choice(*DIRECTIONS),
        at=Int(0, MAX_UNIX_US),
        terminal=TERMINAL_ID,
    )
    SUMMARY = "a partner terminal's anti-passback passage (subject, entry/exit, when, where)"
    subject: str
    direction: str
    at: int  # Unix µs
    terminal: str  # the terminal that admitted the subject


@message
@dataclass(frozen=True, kw_only=True)
class Partners(Message):
    """Host → terminal heartbeat: for each partner terminal, the seconds since the back
    office last heard it (its session's last authenticated record)."""

    TYPE = "partners"
    DIRECTION, ROLE = H2T, Role.EVENT
    SPEC = spec(seen=TextMap(TERMINAL_ID, Float(0, MAX_SEEN_S), MAX_PARTNERS))
    SUMMARY = "seconds since the back office last heard each partner terminal"
    seen: tuple[tuple[str, float], ...]  # terminal id → seconds, sorted by id


__all__ = [
    "ATTRS",
    "AgeAnswer",
    "AgeQuery",
    "AgeReply",
    "Day",
    "Partners",
    "PresenceRelay",
    "Serial",
    "TextMap",
]
