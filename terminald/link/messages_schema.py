"""Field specifications for link messages: what a value may be, checked on both ends.

Each spec turns a value read from msgpack into the Python value a message holds
(``check``), naming where it failed, and turns it back into msgpack-ready data
(``dump``). msgpack already bounds lengths while unpacking (``messages.UNPACK_LIMITS``);
these bounds are per field and tighter. ``bool`` is never taken for an integer (Python
says ``True`` is an ``int``; the wire format does not).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields, is_dataclass
from datetime import datetime
from types import MappingProxyType
from typing import Any, Protocol

U16_MAX = 2**16 - 1
U32_MAX = 2**32 - 1
U64_MAX = 2**64 - 1
I64_MIN, I64_MAX = -(2**63), 2**63 - 1


class MessageError(Exception):
    """A message that cannot be decoded or encoded; ``reason`` says what was wrong.

    ``msg_id`` and ``msg_type`` are filled in when they could be read, so the receiver
    can answer the request with an ``error`` of the same id.
    """

    def __init__(self, reason: str, msg_id: int | None = None, msg_type: str | None = None):
        super().__init__(reason)
        self.reason = reason
        self.msg_id = msg_id
        self.msg_type = msg_type


def describe(value: object) -> str:
    """A short name of a wrong value's type, never the value itself (it may be large)."""
    if value is None:
        return "nil"
    return {bool: "a boolean", int: "an integer", float: "a float", str: "a string"}.get(
        type(value), f"a {type(value).__name__}"
    )


class Spec(Protocol):
    def check(self, value: object, where: str) -> Any: ...
    def dump(self, value: Any) -> Any: ...
    def describe(self) -> str: ...


@dataclass(frozen=True)
class Int:
    """An integer in ``[low, high]`` (msgpack int; never a boolean or a float)."""

    low: int
    high: int

    def check(self, value: object, where: str) -> int:
        if type(value) is not int:
            raise MessageError(f"{where}: must be an integer, got {describe(value)}")
        if not self.low <= value <= self.high:
            raise MessageError(f"{where}: must be {self.low}..{self.high}, got {value}")
        return value

    def dump(self, value: Any) -> Any:
        return value

    def describe(self) -> str:
        names = {(0, U16_MAX): "u16", (0, U32_MAX): "u32", (0, U64_MAX): "u64"}
        return names.get((self.low, self.high), f"int {self.low}..{self.high}")


U16 = Int(0, U16_MAX)
U32 = Int(0, U32_MAX)
U64 = Int(0, U64_MAX)
I64 = Int(I64_MIN, I64_MAX)


@dataclass(frozen=True)
class Float:
    """A finite float in ``[low, high]``; an integer is accepted (msgpack writers differ)."""

    low: float
    high: float

    def check(self, value: object, where: str) -> float:
        if type(value) is int and abs(value) <= 2**53:
            value = float(value)
        if type(value) is not float or not math.isfinite(value):
            raise MessageError(f"{where}: must be a finite float, got {describe(value)}")
        if not self.low <= value <= self.high:
            raise MessageError(f"{where}: must be {self.low:g}..{self.high:g}, got {value:g}")
        return value

    def dump(self, value: Any) -> Any:
        return float(value)

    def describe(self) -> str:
        return f"float {self.low:g}..{self.high:g}"


@dataclass(frozen=True)
class Bool:
    def check(self, value: object, where: str) -> bool:
        if type(value) is not bool:
            raise MessageError(f"{where}: must be a boolean, got {describe(value)}")
        return value

    def dump(self, value: Any) -> Any:
        return value

    def describe(self) -> str:
        return "bool"


@dataclass(frozen=True)
class Text:
    """UTF-8 text of at most ``max_len`` characters; printable unless ``printable=False``,
    one of ``choices`` or matching ``pattern`` when given."""

    max_len: int
    choices: tuple[str, ...] = ()
    pattern: str = ""
    printable: bool = True

    def check(self, value: object, where: str) -> str:
        if type(value) is not str:
            raise MessageError(f"{where}: must be a string, got {describe(value)}")
        if self.choices and value not in self.choices:
            shown = value[:40] if value.isprintable() else repr(value[:40])
            raise MessageError(f"{where}: must be one of {', '.join(self.choices)}, got {shown}")
        if len(value) > self.max_len:
            raise MessageError(f"{where}: at most {self.max_len} characters, got {len(value)}")
        if self.printable and not value.isprintable():
            raise MessageError(f"{where}: must be printable text (no control characters)")
        if self.pattern and not re.fullmatch(self.pattern, value):
            raise MessageError(f"{where}: does not match {self.pattern}")
        return value

    def dump(self, value: Any) -> Any:
        return value

    def describe(self) -> str:
        if self.choices:
            return " \\| ".join(f"`{c}`" for c in self.choices)
        return f"str ≤{self.max_len}" + (f" `{self.pattern}`" if self.pattern else "")


def Choice(*choices: str) -> Text:  # reads like a type in the catalogue
    return Text(max(len(c) for c in choices), choices)


@dataclass(frozen=True)
class Time:
    """A moment as ISO 8601 text with its zone (as the audit trail stores it)."""

    def check(self, value: object, where: str) -> str:
        text = Text(40).check(value, where)
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise MessageError(f"{where}: not an ISO 8601 time") from None
        if moment.tzinfo is None:
            raise MessageError(f"{where}: an ISO 8601 time needs its zone")
        return text

    def dump(self, value: Any) -> Any:
        return value

    def describe(self) -> str:
        return "ISO 8601 str"


@dataclass(frozen=True)
class Bytes:
    """msgpack bin of ``min_len``..``max_len`` bytes (never a string)."""

    max_len: int
    min_len: int = 0

    def check(self, value: object, where: str) -> bytes:
        if type(value) is not bytes:
            raise MessageError(f"{where}: must be binary (msgpack bin), got {describe(value)}")
        if not self.min_len <= len(value) <= self.max_len:
            size = f"{self.min_len}..{self.max_len}" if self.min_len else f"at most {self.max_len}"
            raise MessageError(f"{where}: must be {size} bytes, got {len(value)}")
        return value

    def dump(self, value: Any) -> Any:
        return value

    def describe(self) -> str:
        if self.min_len == self.max_len:
            return f"bin {self.max_len}"
        return f"bin ≤{self.max_len}"


@dataclass(frozen=True)
class Optional:
    """``spec`` or nil."""

    spec: Spec

    def check(self, value: object, where: str) -> Any:
        return None if value is None else self.spec.check(value, where)

    def dump(self, value: Any) -> Any:
        return None if value is None else self.spec.dump(value)

    def describe(self) -> str:
        return f"{self.spec.describe()} or nil"


@dataclass(frozen=True)
class List:
    """An array of at most ``max_items`` values of ``spec`` (a tuple in Python)."""

    spec: Spec
    max_items: int

    def check(self, value: object, where: str) -> tuple[Any, ...]:
        if type(value) is not list:
            raise MessageError(f"{where}: must be an array, got {describe(value)}")
        if len(value) > self.max_items:
            raise MessageError(f"{where}: at most {self.max_items} items, got {len(value)}")
        return tuple(self.spec.check(item, f"{where}[{i}]") for i, item in enumerate(value))

    def dump(self, value: Any) -> Any:
        return [self.spec.dump(item) for item in value]

    def describe(self) -> str:
        return f"[{self.spec.describe()}] ≤{self.max_items}"


@dataclass(frozen=True)
class Counters:
    """A map of at most ``max_items`` names (``[a-z0-9_]``, ≤32) to u64 counters; a tuple of
    pairs in Python (sorted, so equal maps compare equal and the dataclass stays frozen)."""

    max_items: int

    def check(self, value: object, where: str) -> tuple[tuple[str, int], ...]:
        if type(value) is not dict:
            raise MessageError(f"{where}: must be a map, got {describe(value)}")
        if len(value) > self.max_items:
            raise MessageError(f"{where}: at most {self.max_items} entries, got {len(value)}")
        name = Text(32, pattern="[a-z0-9_]+")
        return tuple(
            sorted(
                (name.check(k, f"{where} key"), U64.check(v, f"{where}.{k}"))
                for k, v in value.items()
            )
        )

    def dump(self, value: Any) -> Any:
        return dict(value)

    def describe(self) -> str:
        return f"map str→u64 ≤{self.max_items}"


class Struct:
    """A nested map read into the dataclass ``cls``, whose ``SPEC`` names each field."""

    def __init__(self, cls: type[Any]) -> None:
        check_spec(cls)
        self.cls: type[Any] = cls

    def check(self, value: object, where: str) -> Any:
        return self.cls(**check_fields(self.cls.SPEC, value, where))

    def dump(self, value: Any) -> Any:
        return dump_fields(self.cls.SPEC, value)

    def describe(self) -> str:
        return f"map ({self.cls.__name__})"


def spec(**specs: Spec) -> Mapping[str, Spec]:
    """A class's field specs, in wire order (read-only: shared by every instance)."""
    return MappingProxyType(specs)


def check_spec(cls: type[Any], skip: tuple[str, ...] = ()) -> None:
    """At import: every dataclass field has a spec and every spec a field (a typo in the
    catalogue must not become a field that is never checked)."""
    specs: Mapping[str, Spec] = cls.SPEC
    if not is_dataclass(cls):
        raise TypeError(f"{cls.__name__} is not a dataclass")
    names = {f.name for f in fields(cls)} - set(skip)
    if names != set(specs):
        raise TypeError(f"{cls.__name__}: fields {sorted(names)} != spec {sorted(specs)}")


def check_fields(spec: Mapping[str, Spec], value: object, where: str) -> dict[str, Any]:
    """The checked values of a map that holds exactly the fields of ``spec``."""
    if type(value) is not dict:
        raise MessageError(f"{where}: must be a map, got {describe(value)}")
    missing = [name for name in spec if name not in value]
    if missing:
        raise MessageError(f"{where}: missing field(s) {', '.join(missing)}")
    extra = [k for k in value if k not in spec]
    if extra:
        shown = ", ".join(repr(k)[:40] for k in extra[:5])
        raise MessageError(f"{where}: unknown field(s) {shown}")
    prefix = f"{where}." if where else ""
    return {name: s.check(value[name], f"{prefix}{name}") for name, s in spec.items()}


def dump_fields(spec: Mapping[str, Spec], value: object) -> dict[str, Any]:
    return {name: s.dump(getattr(value, name)) for name, s in spec.items()}
