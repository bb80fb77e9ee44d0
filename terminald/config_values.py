"""Reading one section of the configuration: typed values, every problem named by key.

``terminald.config`` builds each section from a ``Section``: it takes a key with its
default, checks its type and range, and adds one message per problem (``relay.open_ms:
must be between 100 and 60000, got 0``) instead of raising, so a file's every problem is
reported at once. Unknown keys are errors, with the nearest known key suggested.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final, Literal, TypeAlias

ExtendedReads: TypeAlias = bool | Literal["auto"]

_MISSING: Final = object()


def describe(value: object) -> str:
    kinds = {
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        str: "a string",
        list: "an array",
        dict: "a table",
    }
    kind = kinds.get(type(value), type(value).__name__)
    if isinstance(value, dict | list):
        return kind
    # JSON-quoted: a value holding a newline stays on its one line.
    shown = json.dumps(value, ensure_ascii=False) if isinstance(value, str) else str(value).lower()
    return f"{shown} ({kind})"


class Section:
    """Reads one table's keys, recording problems instead of stopping at the first."""

    def __init__(self, name: str, data: Mapping[str, Any], base: Path, errors: list[str]):
        self.name, self._data, self._base, self._errors = name, data, base, errors
        self._known: list[str] = []
        self._failed: set[str] = set()

    def _error(self, key: str, problem: str) -> None:
        self._failed.add(key.split("[", 1)[0])
        self._errors.append(f"{self.name}.{show_key(key)}: {problem}")

    def failed(self, key: str) -> bool:
        return key in self._failed

    def _take(self, key: str, default: object) -> object:
        self._known.append(key)
        value = self._data.get(key, _MISSING)
        if value is _MISSING and default is _MISSING:
            self._error(key, "missing (required)")
        return value

    def raw(self, key: str, default: object) -> object:
        """The value as TOML gave it (arrays of tables, lists): the caller checks it."""
        value = self._take(key, default)
        return default if value is _MISSING else value

    def string(self, key: str, default: object = _MISSING, choices: tuple[str, ...] = ()) -> str:
        value = self._take(key, default)
        if isinstance(value, str) and (not choices or value in choices):
            return value
        if value is not _MISSING:
            expected = f"one of {', '.join(choices)}" if choices else "a string"
            self._error(key, f"must be {expected}, got {describe(value)}")
        return default if isinstance(default, str) else ""

    def boolean(self, key: str, default: bool) -> bool:
        value = self.optional_boolean(key)
        return default if value is None else value

    def optional_boolean(self, key: str) -> bool | None:
        value = self._take(key, None)
        if value is _MISSING:
            return None
        if not isinstance(value, bool):
            self._error(key, f"must be true or false, got {describe(value)}")
            return None
        return value

    def integer(self, key: str, default: int, low: int, high: int) -> int:
        value = self._take(key, default)
        if value is _MISSING:
            return default
        if not isinstance(value, int) or isinstance(value, bool):
            self._error(key, f"must be an integer, got {describe(value)}")
            return default
        if not low <= value <= high:
            self._error(key, f"must be between {low} and {high}, got {value}")
            return default
        return value

    def number(self, key: str, default: float, low: float, high: float) -> float:
        value = self._take(key, default)
        if value is _MISSING:
            return default
        if not isinstance(value, int | float) or isinstance(value, bool):
            self._error(key, f"must be a number, got {describe(value)}")
            return default
        if not low <= value <= high:
            self._error(key, f"must be between {low:g} and {high:g}, got {value:g}")
            return default
        return float(value)

    def _to_path(self, key: str, value: object) -> Path | None:
        if not isinstance(value, str):
            self._error(key, f"must be a path (a string), got {describe(value)}")
            return None
        if not value:
            self._error(key, "must not be empty")
            return None
        if "\0" in value:  # the OS refuses such a path at the first open or stat
            self._error(key, "must not contain a NUL byte")
            return None
        return self._base / Path(value)

    def path(self, key: str, default: Path | None) -> Path | None:
        value = self._take(key, default)
        return default if value is _MISSING else self._to_path(key, value)

    def paths(self, key: str) -> tuple[Path, ...]:
        value = self._take(key, ())
        if value is _MISSING:
            return ()
        if not isinstance(value, list):
            self._error(key, f"must be an array of paths, got {describe(value)}")
            return ()
        result = []
        for index, item in enumerate(value):
            path = self._to_path(f"{key}[{index}]", item)
            if path is not None:
                result.append(path)
        return tuple(result)

    def extended_reads(self) -> ExtendedReads:
        value = self._take("extended_reads", "auto")
        if value is _MISSING or value == "auto":
            return "auto"
        if isinstance(value, bool):
            return value
        self._error("extended_reads", f'must be "auto", true or false, got {describe(value)}')
        return "auto"

    def finish(self) -> None:
        for key in self._data:
            if key not in self._known:
                self._error(key, unknown_name("key", key, self._known))


def show_key(name: str) -> str:
    """A key as TOML would quote it when it is not plain: a key holding a newline or
    a control character must not break the one-line-per-problem output."""
    return name if re.fullmatch(r"[A-Za-z0-9_\-\[\]]+", name) else json.dumps(name)


def unknown_name(what: str, name: str, known: Sequence[str]) -> str:
    close = difflib.get_close_matches(name, known, n=1)
    hint = f"did you mean {close[0]}? " if close else ""
    return f"unknown {what} ({hint}known: {', '.join(known)})"
