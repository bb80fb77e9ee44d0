"""The link's messages but the audit trail's: hello, status, time, mode, test, restart,
and the generic replies (ack, error, install.result). Fields: docs/protocol.md §4."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from terminald.config import TERMINAL_ID_PATTERN
from terminald.core.terminal import Mode
from terminald.link.messages_base import Direction, Message, Role, message
from terminald.link.messages_schema import (
    U16,
    U64,
    Bool,
    Bytes,
    Choice,
    Counters,
    Float,
    Int,
    List,
    Optional,
    Text,
    spec,
)

H2T, T2H = Direction.HOST_TO_TERMINAL, Direction.TERMINAL_TO_HOST
REQUEST, REPLY = Role.REQUEST, Role.REPLY

NAME = Text(32, pattern="[a-z0-9_.]+")  # codes, capabilities, alarm names
TERMINAL_ID = Text(64, pattern=TERMINAL_ID_PATTERN.pattern)
MODE = Choice(*(m.value for m in Mode))
REASON = Text(4096, printable=False)  # a validator's messages span lines
NONCE_SIZE = 16  # the terminal's time challenge (terminald.link.signed checks it too)
MAX_TIME_OBJECT = 1024  # a signed time object is ~200 bytes
MAX_TEST_MS = 10_000
OFFSET_LIMIT = 1e10  # seconds: ~300 years, beyond any clock a terminal can show
# Unix seconds up to 9999-12-31 (the revocation bundle's own limit), never negative.
UNIX_TIME = Int(0, 253_402_300_799)

# --- replies every request may get --------------------------------------------------------


@message
@dataclass(frozen=True, kw_only=True)
class Error(Message):
    """The one reply to a request that is refused or cannot be served."""

    TYPE = "error"
    DIRECTION, ROLE = T2H, REPLY
    SPEC = spec(code=NAME, reason=REASON)
    SUMMARY = "refusal of any request: a stable code and a sentence"
    code: str
    reason: str


@message
@dataclass(frozen=True, kw_only=True)
class Ack(Message):
    TYPE = "ack"
    DIRECTION, ROLE = T2H, REPLY
    SPEC = spec(detail=Text(256))
    SUMMARY = "done (restart, audit.ack)"
    detail: str = ""


@message
@dataclass(frozen=True, kw_only=True)
class InstallResult(Message):
    """What an installer did with a pushed object (revocation, config, enrolment)."""

    TYPE = "install.result"
    DIRECTION, ROLE = T2H, REPLY
    SPEC = spec(
        kind=Choice("revocation", "config", "enrolment", "time"),
        installed=Bool(),
        version=Optional(U64),
        code=Optional(NAME),
        reason=REASON,
    )
    SUMMARY = "outcome of installing a pushed signed object (after its bulk transfer)"
    kind: str
    installed: bool
    version: int | None
    code: str | None
    reason: str


# --- hello --------------------------------------------------------------------------------


@message
@dataclass(frozen=True, kw_only=True)
class Hello(Message):
    TYPE = "hello"
    DIRECTION, ROLE = H2T, REQUEST
    REPLIES = ("hello.reply",)
    SPEC = spec(protocol=Int(1, 0xFFFF), software=Text(64))
    SUMMARY = "the host's protocol and software versions; asks for the terminal's"
    protocol: int
    software: str


@message
@dataclass(frozen=True, kw_only=True)
class HelloReply(Message):
    TYPE = "hello.reply"
    DIRECTION, ROLE = T2H, REPLY
    SPEC = spec(
        terminal=TERMINAL_ID,
        software=Text(64),
        protocol=U16,
        revocation_version=Optional(U64),
        revocation_issued=Optional(UNIX_TIME),
        enrolment_version=U64,
        config_version=U64,
        config_digest=Bytes(32, 32),
        capabilities=List(NAME, 32),
    )
    SUMMARY = "who the terminal is and what it holds (versions 0: never pushed)"
    terminal: str
    software: str
    protocol: int
    revocation_version: int | None
    revocation_issued: int | None
    enrolment_version: int
    config_version: int
    config_digest: bytes  # SHA-256 of the running configuration file
    capabilities: tuple[str, ...]


# --- status -------------------------------------------------------------------------------


@message
@dataclass(frozen=True, kw_only=True)
class Status(Message):
    TYPE = "status"
    DIRECTION, ROLE = H2T, REQUEST
    REPLIES = ("status.reply",)
    SUMMARY = "asks for the terminal's state"


@message
@dataclass(frozen=True, kw_only=True)
class StatusReply(Message):
    TYPE = "status.reply"
    DIRECTION, ROLE = T2H, REPLY
    SPEC = spec(
        mode=MODE,
        door=Choice("closed", "open", "unknown", "not_wired"),
        reader=Choice("ready", "card", "absent", "problem"),
        reader_problem=Optional(Text(256)),
        alarms=List(NAME, 16),
        clock=Float(0, 253_402_300_799),
        trusted_time=UNIX_TIME,
        clock_problem=Optional(Text(256)),
        revocation=Choice("fresh", "grace", "stale", "none"),
        revocation_version=Optional(U64),
        revocation_valid_until=Optional(UNIX_TIME),
        link=Counters(32),
    )
    SUMMARY = "mode, door, reader, alarms, clocks, revocation freshness, link counters"
    mode: str
    door: str
    reader: str
    reader_problem: str | None
    alarms: tuple[str, ...]
    clock: float  # the terminal's system clock, Unix seconds
    trusted_time: int  # the newest signed time it holds, Unix seconds
    clock_problem: str | None
    revocation: str
    revocation_version: int | None
    revocation_valid_until: int | None
    link: tuple[tuple[str, int], ...]  # counter name → value, sorted by name


# --- time ---------------------------------------------------------------------------------


@message
@dataclass(frozen=True, kw_only=True)
class TimeNonce(Message):
    TYPE = "time.nonce"
    DIRECTION, ROLE = H2T, REQUEST
    REPLIES = ("time.nonce.reply",)
    SUMMARY = "asks for a fresh challenge to put in a signed time object"


@message
@dataclass(frozen=True, kw_only=True)
class TimeNonceReply(Message):
    TYPE = "time.nonce.reply"
    DIRECTION, ROLE = T2H, REPLY
    SPEC = spec(nonce=Bytes(NONCE_SIZE, NONCE_SIZE), expires_s=Float(0, 3600))
    SUMMARY = "the challenge, single use, valid for expires_s seconds"
    nonce: bytes
    expires_s: float


@message
@dataclass(frozen=True, kw_only=True)
class TimeSet(Message):
    TYPE = "time"
    DIRECTION, ROLE = H2T, REQUEST
    REPLIES = ("time.reply",)
    CHANGES_STATE = True
    SPEC = spec(object=Bytes(MAX_TIME_OBJECT), force=Bool())
    SUMMARY = "a signed time object (kind time, with the challenge); force allows going back"
    object: bytes  # terminald.link.signed envelope, kind "time"
    force: bool = False


@message
@dataclass(frozen=True, kw_only=True)
class TimeReply(Message):
    TYPE = "time.reply"
    DIRECTION, ROLE = T2H, REPLY
    SPEC = spec(
        applied=Bool(),
        clock_set=Bool(),
        offset=Float(-OFFSET_LIMIT, OFFSET_LIMIT),
        code=Optional(NAME),
        reason=REASON,
    )
    SUMMARY = "applied or refused (code, reason); offset = signed time − terminal clock, s"
    applied: bool
    clock_set: bool
    offset: float
    code: str | None
    reason: str


# --- mode, test, restart --------------------------------------------------------------------


@message
@dataclass(frozen=True, kw_only=True)
class SetMode(Message):
    TYPE = "mode"
    DIRECTION, ROLE = H2T, REQUEST
    REPLIES = ("mode.reply",)
    CHANGES_STATE = True
    SPEC = spec(mode=MODE)
    SUMMARY = "sets the terminal's mode"
    mode: str


@message
@dataclass(frozen=True, kw_only=True)
class ModeReply(Message):
    TYPE = "mode.reply"
    DIRECTION, ROLE = T2H, REPLY
    SPEC = spec(mode=MODE)
    SUMMARY = "the mode now in force"
    mode: str


@message
@dataclass(frozen=True, kw_only=True)
class Test(Message):
    TYPE = "test"
    DIRECTION, ROLE = H2T, REQUEST
    REPLIES = ("test.result",)
    CHANGES_STATE = True  # it drives the outputs: the relay releases the lock
    SPEC = spec(output=Choice("relay", "leds", "buzzer"), duration_ms=Int(1, MAX_TEST_MS))
    SUMMARY = "drives one output for duration_ms"
    __test__: ClassVar[bool] = False  # not a pytest test class
    output: str
    duration_ms: int


@message
@dataclass(frozen=True, kw_only=True)
class TestResult(Message):
    TYPE = "test.result"
    DIRECTION, ROLE = T2H, REPLY
    SPEC = spec(output=Choice("relay", "leds", "buzzer"), done=Bool(), detail=Text(256))
    SUMMARY = "whether the output was driven, and why not"
    __test__: ClassVar[bool] = False
    output: str
    done: bool
    detail: str = ""


@message
@dataclass(frozen=True, kw_only=True)
class Restart(Message):
    TYPE = "restart"
    DIRECTION, ROLE = H2T, REQUEST
    REPLIES = ("ack",)
    CHANGES_STATE = True
    SUMMARY = "restarts the daemon (the ack goes out first)"


__all__ = [
    "Ack",
    "Error",
    "Hello",
    "HelloReply",
    "InstallResult",
    "ModeReply",
    "Restart",
    "SetMode",
    "Status",
    "StatusReply",
    "Test",
    "TestResult",
    "TimeNonce",
    "TimeNonceReply",
    "TimeReply",
    "TimeSet",
]
