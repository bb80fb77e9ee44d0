"""Link messages: typed, versioned msgpack maps (docs/protocol.md §4).

Every message is one msgpack map ``{"v": 1, "t": type, "id": u32, ...fields}``. The
catalogue lives in :mod:`messages_catalogue`, :mod:`messages_audit` and
:mod:`messages_policy`; this module
encodes and decodes. Pure: no I/O, no clock.

Requests and replies: every request (``Role.REQUEST``) gets exactly one reply, carrying
the request's ``id``: one of the request's ``REPLIES`` or an ``error`` (code + reason).
The host numbers its requests; an ``event`` is never answered and its ``id`` is the
terminal's own count. A message that cannot be decoded is answered with ``error`` code
``bad_message`` when its ``id`` could be read (:attr:`MessageError.msg_id`), and
otherwise dropped (the transport already delivered it, so there is nothing to resend).

``decode`` unpacks with msgpack's own limits (no buffer, string, bin, array or map larger
than the limits below is ever allocated) and then checks every field: its type, its
bounds, and that no field is missing or unknown. Any failure raises
:class:`MessageError` naming what was wrong, and nothing else.
"""

from __future__ import annotations

from typing import Any, Final

import msgpack

from terminald.link.messages_audit import (
    MAX_AUDIT_ROWS,
    MAX_ROWS_BYTES,
    AuditAck,
    AuditPull,
    AuditRow,
    AuditRows,
    Event,
    Evidence,
    Gap,
    fit_rows,
)
from terminald.link.messages_base import REGISTRY, Direction, Lane, Message, Role, message
from terminald.link.messages_catalogue import (
    Ack,
    Error,
    Hello,
    HelloReply,
    InstallResult,
    ModeReply,
    Restart,
    SetMode,
    Status,
    StatusReply,
    Test,
    TestResult,
    TimeNonce,
    TimeNonceReply,
    TimeReply,
    TimeSet,
)
from terminald.link.messages_policy import (
    ATTRS,
    MAX_ATTRS,
    AgeAnswer,
    AgeQuery,
    AgeReply,
    Partners,
    PresenceRelay,
)
from terminald.link.messages_schema import U32, MessageError, check_fields, describe, dump_fields

VERSION: Final = 1
# The largest message: an audit.rows answer (MAX_ROWS_BYTES) plus its envelope, with room.
MAX_MESSAGE_SIZE: Final = 256 * 1024
UNPACK_LIMITS: Final[dict[str, Any]] = {
    # No max_buffer_size: unpackb's buffer is the message itself, checked against
    # MAX_MESSAGE_SIZE before unpacking (an Unpacker would take it).
    "max_bin_len": MAX_MESSAGE_SIZE,
    "max_str_len": 64 * 1024,
    "max_array_len": 4096,
    "max_map_len": 64,
    "max_ext_len": 0,  # no extension types at all (timestamps included)
    "strict_map_key": True,
    "raw": False,
    "use_list": True,
}

# Error codes (``error.code``); the reason says the rest in words.
BAD_MESSAGE: Final = "bad_message"  # could not be decoded (reason: MessageError's)
UNSUPPORTED: Final = "unsupported"  # a type this terminal does not serve
WRONG_DIRECTION: Final = "wrong_direction"  # a reply or event sent as a request
NOT_AUTHENTICATED: Final = "not_authenticated"  # outside the session
REFUSED: Final = "refused"  # understood and declined (e.g. the mode cannot change now)
BUSY: Final = "busy"  # try again later (e.g. a reload in progress)
INTERNAL: Final = "internal"  # a bug on the terminal; the request changed nothing


def encode(msg: Message) -> bytes:
    """The message as msgpack; MessageError if a field is out of its bounds (the same
    checks ``decode`` makes, so nothing is sent that the other end must refuse)."""
    cls = type(msg)
    if REGISTRY.get(cls.TYPE) is not cls:
        raise MessageError(f"{cls.__name__} is not a registered message type")
    body = dump_fields(cls.SPEC, msg)
    where = cls.TYPE
    U32.check(msg.id, f"{where}.id")
    check_fields(cls.SPEC, body, where)
    data: bytes = msgpack.packb(
        {"v": VERSION, "t": cls.TYPE, "id": msg.id, **body}, use_bin_type=True
    )
    if len(data) > MAX_MESSAGE_SIZE:
        raise MessageError(f"{where}: {len(data)} bytes, more than {MAX_MESSAGE_SIZE}")
    return data


def decode(data: bytes, sender: Direction | None = None) -> Message:
    """One message from ``data``; MessageError with the reason otherwise.

    ``sender``: the direction the message must travel in (a terminal decodes with
    ``HOST_TO_TERMINAL``); a message of the other direction is refused.
    """
    if len(data) > MAX_MESSAGE_SIZE:
        raise MessageError(f"{len(data)} bytes, more than the {MAX_MESSAGE_SIZE} allowed")
    try:
        raw = msgpack.unpackb(data, **UNPACK_LIMITS)
    except (ValueError, msgpack.UnpackException, RecursionError) as exc:
        # ValueError covers ExtraData, FormatError, StackError, limits and bad UTF-8.
        raise MessageError(f"not one msgpack value: {_unpack_problem(exc)}") from None
    if type(raw) is not dict:
        raise MessageError(f"a message is a msgpack map, got {describe(raw)}")
    msg_id = raw.get("id")
    if type(msg_id) is not int or not 0 <= msg_id <= 0xFFFFFFFF:
        if "id" not in raw:
            raise MessageError("missing field id")
        raise MessageError(f"id: must be an integer 0..{0xFFFFFFFF}, got {describe(msg_id)}")
    version = raw.get("v")
    if version != VERSION or type(version) is not int:
        shown = version if type(version) is int else describe(version)
        raise MessageError(f"message version {shown} is not supported (want {VERSION})", msg_id)
    kind = raw.get("t")
    if type(kind) is not str:
        raise MessageError(f"t: must be the type as a string, got {describe(kind)}", msg_id)
    cls = REGISTRY.get(kind)
    if cls is None:
        shown = kind[:40] if kind.isprintable() else repr(kind[:40])
        raise MessageError(f"unknown message type {shown}", msg_id)
    if sender is not None and cls.DIRECTION is not sender:
        raise MessageError(f"{kind} travels {cls.DIRECTION.value}, not {sender.value}", msg_id)
    fields = {k: v for k, v in raw.items() if k not in ("v", "t", "id")}
    try:
        values = check_fields(cls.SPEC, fields, kind)
    except MessageError as exc:
        raise MessageError(exc.reason, msg_id, kind) from None
    return cls(id=msg_id, **values)


def _unpack_problem(exc: BaseException) -> str:
    if isinstance(exc, msgpack.ExtraData):
        return "bytes left over after the message"
    if isinstance(exc, UnicodeDecodeError):
        return "a string is not valid UTF-8"
    if isinstance(exc, RecursionError | msgpack.exceptions.StackError):
        return "nested too deeply"
    if isinstance(exc, msgpack.exceptions.FormatError):
        return "not msgpack (a reserved byte)"
    text = str(exc) or type(exc).__name__
    return text[:120]


def error_reply(request_id: int, code: str, reason: str) -> Error:
    """The ``error`` answering request ``request_id``; the reason is cut to fit."""
    return Error(id=request_id, code=code, reason=reason[:4096])


def replies_to(request: Message, reply: Message) -> bool:
    """Whether ``reply`` is a valid answer to ``request`` (same id, an allowed type)."""
    return (
        request.ROLE is Role.REQUEST
        and reply.id == request.id
        and (reply.TYPE == "error" or reply.TYPE in request.REPLIES)
    )


__all__ = [
    "ATTRS",
    "MAX_ATTRS",
    "MAX_AUDIT_ROWS",
    "MAX_MESSAGE_SIZE",
    "MAX_ROWS_BYTES",
    "REGISTRY",
    "UNPACK_LIMITS",
    "VERSION",
    "Ack",
    "AgeAnswer",
    "AgeQuery",
    "AgeReply",
    "AuditAck",
    "AuditPull",
    "AuditRow",
    "AuditRows",
    "Direction",
    "Error",
    "Event",
    "Evidence",
    "Gap",
    "Hello",
    "HelloReply",
    "InstallResult",
    "Lane",
    "Message",
    "MessageError",
    "ModeReply",
    "Partners",
    "PresenceRelay",
    "Restart",
    "Role",
    "SetMode",
    "Status",
    "StatusReply",
    "Test",
    "TestResult",
    "TimeNonce",
    "TimeNonceReply",
    "TimeReply",
    "TimeSet",
    "decode",
    "encode",
    "error_reply",
    "fit_rows",
    "message",
    "replies_to",
]
