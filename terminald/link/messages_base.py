"""The base of every link message: envelope fields, direction, lane, role, registry.

A message class is a frozen, keyword-only dataclass whose ``SPEC`` maps each field (bar
the envelope's ``id``) to its :mod:`messages_schema` spec; :func:`message` checks that
at import and registers the class under its ``TYPE``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import ClassVar, TypeVar

from terminald.link.messages_schema import Spec, check_spec

# The transport's lanes: a message names the lane it travels on (docs/protocol.md §3).
from terminald.link.transport_wire import Lane as Lane

ENVELOPE = ("v", "t", "id")


class Direction(Enum):
    HOST_TO_TERMINAL = "host→terminal"
    TERMINAL_TO_HOST = "terminal→host"


class Role(Enum):
    REQUEST = "request"  # answered by exactly one reply (one of REPLIES, or error)
    REPLY = "reply"  # carries the id of the request it answers
    EVENT = "event"  # unsolicited; its id is the sender's own counter; never answered


@dataclass(frozen=True, kw_only=True)
class Message:
    """``id``: u32; a request's number, echoed by its reply (see docs/protocol.md §4)."""

    TYPE: ClassVar[str]
    DIRECTION: ClassVar[Direction]
    ROLE: ClassVar[Role]
    LANE: ClassVar[Lane] = Lane.INTERACTIVE
    # Whether handling it changes the terminal's state (mode, files, clock, outputs,
    # the audit trail's retention): such a request is only served inside the session.
    CHANGES_STATE: ClassVar[bool] = False
    # A request's reply types besides ``error``.
    REPLIES: ClassVar[tuple[str, ...]] = ()
    SPEC: ClassVar[Mapping[str, Spec]] = {}
    # One line for docs/protocol.md's table.
    SUMMARY: ClassVar[str] = ""

    id: int


REGISTRY: dict[str, type[Message]] = {}

M = TypeVar("M", bound=type[Message])


def message(cls: M) -> M:
    """Class decorator: check ``SPEC`` against the fields and register ``TYPE``.

    Other layers (bulk transfer) may register their own ``bulk.*`` types the same way.
    """
    check_spec(cls, skip=("id",))
    if set(cls.SPEC) & set(ENVELOPE):
        raise TypeError(f"{cls.__name__}: a field may not be named v, t or id")
    if cls.TYPE in REGISTRY:
        raise TypeError(f"message type {cls.TYPE} registered twice")
    if (cls.ROLE is Role.REQUEST) != bool(cls.REPLIES):
        raise TypeError(f"{cls.__name__}: requests, and only requests, name their replies")
    REGISTRY[cls.TYPE] = cls
    return cls
