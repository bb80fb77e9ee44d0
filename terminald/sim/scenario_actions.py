"""Pass one for a step's action and options, and for the top-level ``[files]`` table.

Split from ``scenario_file`` (which walks the file and says where): each function here
takes a value and where it is, appends the problems it finds (each naming ``where``) and
returns the checked value, or None when there were problems.
"""

from __future__ import annotations

import re

from terminald.core.reasons import Reason
from terminald.core.terminal import Mode
from terminald.sim.sim_clock import parse_clock

ACTIONS = (
    "tap",
    "remove",
    "keys",
    "pin",
    "expect",
    "expect_record",
    "cli",
    "reload",
    "rex",
    "vend_complete",
    "door",
    "tamper",
    "mode",
    "clock",
    "wait_s",
)
# Options and the actions each belongs to (defaults in scenario_file).
OPTIONS: dict[str, tuple[str, ...]] = {
    "within_s": ("expect", "expect_record"),
    "kind": ("expect",),
    "attrs": ("expect", "expect_record"),
    "exit": ("cli",),
    "interval_ms": ("keys",),
}
# The Records ``expect`` reads: a card's decision (rig.is_verdict).
VERDICT_KINDS = ("granted", "refused", "attendance")
MAX_WAIT_S = 3600.0
KEYPAD_KEYS = frozenset("0123456789*#ABCD")
_PIN_PLACEHOLDER = re.compile(r"\{pin:[^{}]*\}")  # a card's PIN, typed by `keys`
_RECORD_KIND = re.compile(r"[a-z][a-z_]{0,39}")
_ATTR_KEY = re.compile(r"[a-z][a-z0-9_]{0,39}")
# ``files`` with ``link = true``: the runner's own directory in {work}.
LINK_WORK_NAMES = ("hostkeys",)


def describe(value: object) -> str:
    kinds = {bool: "a boolean", int: "an integer", float: "a number", str: "a string"}
    kinds |= {list: "an array", dict: "a table"}
    return kinds.get(type(value), type(value).__name__)


def strings(value: object, where: str, problems: list[str]) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        problems.append(f"{where}: must be an array of strings, got {describe(value)}")
        return []
    return list(value)


def args(value: object, where: str, problems: list[str]) -> list[str]:
    found = strings(value, where, problems)
    if isinstance(value, list) and not value:
        problems.append(f'{where}: must name a command, e.g. ["audit", "--json"]')
    return found


def number(value: object, where: str, low: float, high: float, problems: list[str]) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool) or not low <= value <= high:
        problems.append(f"{where}: must be a number from {low:g} to {high:g}, got {value!r}")
        return low
    return float(value)


def action_value(
    action: str, value: object, where: str, problems: list[str]
) -> str | bool | float | tuple[str, ...] | None:
    """The checked value of ``action`` (``where`` is ``step N: key `ACTION```)."""

    def problem(text: str) -> None:
        problems.append(f"{where}: {text}, got {value!r}")

    if action in ("remove", "pin", "reload", "rex", "vend_complete"):
        if value is not True:
            problem("must be true")
            return None
        return True
    if action == "tamper":
        if not isinstance(value, bool):
            problem("must be true or false")
            return None
        return value
    if action == "cli":
        bad = len(problems)
        found = args(value, where, problems)
        return tuple(found) if len(problems) == bad else None
    if action == "wait_s":
        bad = len(problems)
        seconds = number(value, where, 0, MAX_WAIT_S, problems)
        return seconds if len(problems) == bad else None
    if not isinstance(value, str) or not value:
        problem("must be a non-empty string")
        return None
    if action == "clock":
        try:
            parse_clock(value)
        except ValueError as exc:
            problems.append(f"{where}: {exc}")
            return None
        return value
    if action == "expect_record" and not _RECORD_KIND.fullmatch(value):
        problem("must be a record kind, e.g. vend_complete")
        return None
    choices: tuple[str, ...] = ()
    if action == "expect":
        choices = tuple(r.value for r in Reason)
    elif action == "mode":
        choices = tuple(m.value for m in Mode)
    elif action == "door":
        choices = ("open", "closed")
    if choices and value not in choices:
        problem(f"must be one of {', '.join(choices)}")
        return None
    typed = "".join(_PIN_PLACEHOLDER.split(value)) if action == "keys" else ""
    if action == "keys" and not set(typed) <= KEYPAD_KEYS:
        problem("must be keypad keys (0-9, *, #, and A-D on a 4x4 keypad) or {pin:NAME}")
        return None
    return value


def verdict_kind(value: object, where: str, problems: list[str]) -> str | None:
    """``kind``: the kind of Record an ``expect`` reads."""
    if value not in VERDICT_KINDS:
        problems.append(f"{where}: must be one of {', '.join(VERDICT_KINDS)}, got {value!r}")
        return None
    assert isinstance(value, str)
    return value


def record_attrs(value: object, where: str, problems: list[str]) -> tuple[str, ...]:
    """``attrs``: ``"key=value"`` strings; ``pin`` takes true or false."""
    bad = len(problems)
    found = strings(value, where, problems)
    for item in found:
        key, equals, wanted = item.partition("=")
        if not equals or not _ATTR_KEY.fullmatch(key):
            problems.append(f'{where}: {item!r} must be "key=value" (a lower-case key)')
        elif key == "pin" and wanted not in ("true", "false"):
            problems.append(f"{where}: {item!r}: pin is true or false")
    return tuple(found) if len(problems) == bad else ()


def files_table(value: object, link: bool, problems: list[str]) -> tuple[tuple[str, str], ...]:
    """``[files]``: plain file names (written into {work}) and their text."""
    if not isinstance(value, dict):
        problems.append(f"top level: key `files`: must be a table, got {describe(value)}")
        return ()
    files = []
    for name, text in value.items():
        where = f"files.{name!r}"
        if not name or "/" in name or ".." in name or name == "." or "\0" in name:
            problems.append(f"{where}: must be a plain file name (no / or ..), written in {{work}}")
        elif link and name in LINK_WORK_NAMES:
            problems.append(f"{where}: with `link = true` {{work}}/{name} is the runner's")
        elif not isinstance(text, str):
            problems.append(f"{where}: must be a string (the file's text), got {describe(text)}")
        else:
            files.append((name, text))
    return tuple(files)
