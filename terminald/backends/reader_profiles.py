"""Reader profiles (``hw/readers.toml``): what may be assumed about a PC/SC reader by name.

Two decisions come from here: whether the reader passes extended APDUs (one READ BINARY
for the whole certificate instead of seven), and ``max_response``, the most data bytes
one response may carry through it (every READ asks for no more). Unknown readers and
readers whose support is "unknown" get short APDUs, which every reader passes, and no
cap beyond the card's own ``6Cxx`` answers.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from terminald.backends.pinmap import default_hw_dir
from terminald.card.connection import ReaderLimits

# A smaller cap would take a 1.6 KB certificate past 50 READ BINARY round trips.
MIN_MAX_RESPONSE = 32
MAX_MAX_RESPONSE = 65536  # the largest extended Le (ISO 7816-4)


class ReaderProfileError(ValueError):
    """An unusable readers.toml; the message names the entry and the key."""


@dataclass(frozen=True, slots=True)
class ReaderProfile:
    name: str
    match: tuple[str, ...]
    extended_apdus: bool | None  # None: unknown
    quirks: tuple[str, ...]
    sources: tuple[str, ...]
    max_response: int | None = None  # None: not known

    def matches(self, reader_name: str) -> bool:
        return any(reader_name.startswith(prefix) for prefix in self.match)


@dataclass(frozen=True, slots=True)
class ReaderProfiles:
    profiles: tuple[ReaderProfile, ...]

    def lookup(self, reader_name: str) -> ReaderProfile | None:
        """The profile with the longest matching prefix, or None."""
        best: tuple[int, ReaderProfile] | None = None
        for p in self.profiles:
            for prefix in p.match:
                if reader_name.startswith(prefix) and (best is None or len(prefix) > best[0]):
                    best = (len(prefix), p)
        return best[1] if best else None

    def extended_apdus(self, reader_name: str) -> bool:
        """True only for a reader whose profile says extended APDUs pass."""
        profile = self.lookup(reader_name)
        return bool(profile and profile.extended_apdus)

    def limits(self, reader_name: str) -> ReaderLimits:
        """What a connection through ``reader_name`` may assume (see card.connection)."""
        profile = self.lookup(reader_name)
        if profile is None or profile.max_response is None:
            where = "no profile matches it" if profile is None else f"profile {profile.name!r}"
            return ReaderLimits(reader_name, None, f"hw/readers.toml: {where}")
        return ReaderLimits(
            reader_name, profile.max_response, f"hw/readers.toml: profile {profile.name!r}"
        )


def load_reader_profiles(path: Path | None = None) -> ReaderProfiles:
    path = path or default_hw_dir() / "readers.toml"
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise ReaderProfileError(f"{path}: cannot read: {e}") from e
    except tomllib.TOMLDecodeError as e:
        raise ReaderProfileError(f"{path}: not valid TOML: {e}") from e
    return parse_reader_profiles(data, str(path))


def parse_reader_profiles(data: dict[str, Any], source: str = "<readers>") -> ReaderProfiles:
    entries = data.get("reader", [])
    if not isinstance(entries, list):
        raise ReaderProfileError(f"{source}: reader: must be an array of tables ([[reader]])")
    profiles: list[ReaderProfile] = []
    names: set[str] = set()
    for i, entry in enumerate(entries):
        where = f"{source}: reader[{i}]"
        if not isinstance(entry, dict):
            raise ReaderProfileError(f"{where}: must be a table")
        unknown = set(entry) - {
            "name",
            "match",
            "extended_apdus",
            "max_response",
            "quirks",
            "sources",
        }
        if unknown:
            raise ReaderProfileError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
        name = entry.get("name")
        if not isinstance(name, str) or not name:
            raise ReaderProfileError(f"{where}.name: must be a non-empty string")
        if name in names:
            raise ReaderProfileError(f"{where}.name: {name!r} appears twice")
        names.add(name)
        profiles.append(
            ReaderProfile(
                name=name,
                match=_strings(entry, "match", f"{where}.match", non_empty=True),
                extended_apdus=_tristate(entry.get("extended_apdus"), f"{where}.extended_apdus"),
                quirks=_strings(entry, "quirks", f"{where}.quirks"),
                sources=_strings(entry, "sources", f"{where}.sources"),
                max_response=_max_response(entry.get("max_response"), f"{where}.max_response"),
            )
        )
    return ReaderProfiles(tuple(profiles))


def _strings(
    entry: dict[str, Any], key: str, where: str, non_empty: bool = False
) -> tuple[str, ...]:
    v = entry.get(key, [])
    if not isinstance(v, list) or not all(isinstance(s, str) and s for s in v):
        raise ReaderProfileError(f"{where}: must be a list of non-empty strings")
    if non_empty and not v:
        raise ReaderProfileError(f"{where}: needs at least one name prefix")
    return tuple(v)


def _tristate(v: Any, where: str) -> bool | None:
    if isinstance(v, bool):
        return v
    if v == "unknown":
        return None
    raise ReaderProfileError(f'{where}: must be true, false or "unknown", got {v!r}')


def _max_response(v: Any, where: str) -> int | None:
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int):
        raise ReaderProfileError(f"{where}: must be a whole number of bytes, got {v!r}")
    if not MIN_MAX_RESPONSE <= v <= MAX_MAX_RESPONSE:
        raise ReaderProfileError(
            f"{where}: must be {MIN_MAX_RESPONSE}..{MAX_MAX_RESPONSE} bytes, got {v}"
        )
    return v
