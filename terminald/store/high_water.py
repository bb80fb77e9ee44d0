"""The newest revocation data a terminal has installed, kept beside its state file.

The state file says which version is installed, but a state file can be lost, replaced
by an older copy, or written by an ``apply`` that was given other keys and so could not
read what was there. Each of those would let an older, still-valid snapshot (one that
does not yet revoke a stolen card) back in. This mark only moves up, and is checked by
every install and every load: version and issue time may never go below it.

``<state>.high``: ``{"version": N, "issued_at": "ISO 8601"}``, replaced atomically. A
back office that really starts its versions over must have this file removed, on
purpose, by someone with access to the state directory.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from terminald.files import read_limited
from terminald.revocation.bundle import BundleHeader
from terminald.revocation.errors import BundleRejected, RejectReason
from terminald.store.atomic_file import atomic_write

log = logging.getLogger(__name__)

_MAX_SIZE = 4096


@dataclass(frozen=True)
class HighWater:
    version: int
    issued_at: datetime


def high_water_path(state_path: Path) -> Path:
    return state_path.with_name(state_path.name + ".high")


def read_high_water(path: Path) -> HighWater | None:
    """None when there is none yet; an unreadable mark is reported and taken as none (the
    state file's own checks still stand, and the next install writes it again)."""
    try:
        data = read_limited(path, _MAX_SIZE)
    except FileNotFoundError:
        return None
    except OSError as exc:
        log.error("cannot read %s (%s): no rollback mark until the next install", path, exc)
        return None
    try:
        raw = json.loads(data)
        mark = HighWater(int(raw["version"]), datetime.fromisoformat(raw["issued_at"]))
    except (ValueError, TypeError, KeyError) as exc:
        log.error("%s is not a rollback mark (%s): none until the next install", path, exc)
        return None
    if mark.issued_at.tzinfo is None:
        log.error("%s has a time without a zone: no rollback mark until the next install", path)
        return None
    return mark


def write_high_water(path: Path, mark: HighWater, owner: tuple[int, int] | None) -> None:
    record = {"version": mark.version, "issued_at": mark.issued_at.isoformat()}
    atomic_write(path, json.dumps(record).encode() + b"\n", owner)


def _again(path: Path) -> str:
    return f"if the back office really started over, remove {path}"


def rollback_problem(
    latest: BundleHeader,
    digest: bytes,
    held: tuple[BundleHeader, bytes] | None,
    high: HighWater | None,
    high_path: Path,
) -> str:
    """Why data ending at ``latest`` (chain ``digest``) would take a terminal back from
    what it holds (``held``: latest header and chain digest) or ever held (``high``);
    "" when it would not."""
    if held is not None:
        current, current_digest = held
        if latest.version < current.version:
            return f"holds version {latest.version}, older than installed {current.version}"
        if latest.version == current.version and digest != current_digest:
            return f"holds another version {latest.version} than the one installed"
        if latest.issued_at < current.issued_at:
            return f"was issued before the installed data ({current.issued_at.isoformat()})"
    if high is not None:
        if latest.version < high.version:
            return (
                f"holds version {latest.version}, older than version {high.version} "
                f"installed before (a rollback; {_again(high_path)})"
            )
        if latest.issued_at < high.issued_at:
            return (
                f"was issued before data installed before ({high.issued_at.isoformat()}; "
                f"a rollback; {_again(high_path)})"
            )
    return ""


def check_mark(header: BundleHeader, high: HighWater | None, high_path: Path) -> None:
    """Raise ROLLBACK unless ``header`` is newer than anything installed before."""
    if high is None:
        return
    if header.version <= high.version or header.issued_at < high.issued_at:
        raise BundleRejected(
            RejectReason.ROLLBACK,
            f"version {header.version} issued {header.issued_at.isoformat()} is not newer "
            f"than version {high.version} installed before ({_again(high_path)})",
        )
