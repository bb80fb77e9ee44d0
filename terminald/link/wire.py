"""One entry point for everything a session carries: the catalogue's messages
(:mod:`terminald.link.messages`) and the bulk transfer's (:mod:`terminald.link.bulk_messages`).

A bulk chunk is a msgpack array (12 bytes of overhead, not a map's ~40) and the other bulk
messages are maps whose type starts with ``bulk.``; everything else is the catalogue's.
"""

from __future__ import annotations

import msgpack

from terminald.link import messages
from terminald.link.bulk_messages import BulkMessage, bulk_from_wire
from terminald.link.messages import (
    MAX_MESSAGE_SIZE,
    UNPACK_LIMITS,
    Direction,
    Message,
    MessageError,
)

Any = Message | BulkMessage


def pack(message: Any) -> bytes:
    """The bytes of ``message``. Raises MessageError for a catalogue message out of bounds."""
    if isinstance(message, Message):
        return messages.encode(message)
    return bytes(msgpack.packb(message.to_wire(), use_bin_type=True))


def unpack(data: bytes, sender: Direction) -> Any:
    """The message in ``data`` as ``sender`` sent it.

    Raises MessageError (the catalogue's, with the request id when it could be read) or
    BulkError, each naming what was wrong; never anything else.
    """
    if len(data) > MAX_MESSAGE_SIZE:
        raise MessageError(f"{len(data)} bytes, more than the {MAX_MESSAGE_SIZE} allowed")
    try:
        raw = msgpack.unpackb(data, **UNPACK_LIMITS)
    except (ValueError, msgpack.UnpackException, RecursionError):
        raw = None  # messages.decode names the problem
    if isinstance(raw, list):
        return bulk_from_wire(raw)
    if isinstance(raw, dict) and isinstance(raw.get("t"), str) and raw["t"].startswith("bulk."):
        return bulk_from_wire(raw)
    return messages.decode(data, sender)
