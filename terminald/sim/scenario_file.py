"""The scenario file (docs/scenarios.md): parsed and checked before anything runs.

Checking is in two passes, both before any command or the daemon runs: ``parse_scenario``
needs only the file (structure, types, actions, reason codes, modes, placeholder syntax);
``check_names`` needs the test PKI (card names in ``enrol``, ``tap`` and placeholders).
Every problem names where it is (``step 3: key `tapp```), and all are reported at once,
so a file is fixed in one go. Steps and setup entries are counted from 1, as a person
reading the file counts them.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from terminald.config import SECTIONS
from terminald.sim.scenario_actions import (
    ACTIONS,
    OPTIONS,
    action_value,
    args,
    describe,
    files_table,
    number,
    record_attrs,
    strings,
    verdict_kind,
)
from terminald.sim.scenario_places import (
    PER_CARD,
    card_value,
    placeholder_problems,
    placeholders,
)
from terminald.sim.testpki import TestPkiManifest

WITHIN_S = 15.0
INTERVAL_MS = 150
MIN_INTERVAL_MS = 140  # a key down and up, each over three keypad debounce periods
_TOP = ("link", "enrol", "files", "config", "setup", "step")
# With ``link = true`` the runner sets these itself (the line's terminal end, the back
# office's key it made), as it sets state.dir.
LINK_SET_BY_RUNNER = {
    "port": "it is the terminal's end of the test line",
    "host_key": "it is the public key of the back office in {hostkeys}",
}


class ScenarioError(Exception):
    """A bad scenario file (exit 2): every problem, each naming where it is."""

    def __init__(self, path: Path, problems: list[str]) -> None:
        super().__init__(f"{path}: " + "; ".join(problems))
        self.path = path
        self.problems = problems


@dataclass(frozen=True)
class Setup:
    index: int
    args: tuple[str, ...]
    exit: int = 0


@dataclass(frozen=True)
class Step:
    index: int
    action: str
    value: str | bool | float | tuple[str, ...]
    within_s: float = WITHIN_S
    exit: int = 0
    interval_ms: int = INTERVAL_MS
    # ``expect`` / ``expect_record``: the Record's kind and "key=value" attributes.
    kind: str | None = None
    attrs: tuple[str, ...] = ()

    def describe(self) -> str:
        """The step as written, e.g. ``tap card-001`` or ``cli audit --json``."""
        value = self.value
        if isinstance(value, tuple):
            return f"{self.action} {' '.join(value)}"
        if value is True and self.action not in ("tamper",):
            return self.action
        if isinstance(value, bool):
            return f"{self.action} {str(value).lower()}"
        if isinstance(value, float):
            return f"{self.action} {value:g}"
        wanted = ([f"kind={self.kind}"] if self.kind else []) + list(self.attrs)
        return f"{self.action} {value}" + (f" ({', '.join(wanted)})" if wanted else "")


@dataclass(frozen=True)
class Scenario:
    path: Path
    enrol: tuple[str, ...] = ()
    config: dict[str, dict[str, Any]] = field(default_factory=dict)
    setup: tuple[Setup, ...] = ()
    steps: tuple[Step, ...] = ()
    # A test line to a back office (``link = true``): keys for both sides, ``{link}``.
    link: bool = False
    # ``[files]``: (plain file name, text) written into {work} before [[setup]] runs.
    files: tuple[tuple[str, str], ...] = ()


def is_profile_path(name: str) -> bool:
    """``tap`` takes a test-PKI card name, or a card profile file (a path or ``*.json``)."""
    return "/" in name or name.endswith(".json")


# -- pass one: the file alone ------------------------------------------------------------------


def load_scenario(path: Path) -> Scenario:
    try:
        with path.open("rb") as file:
            data = tomllib.load(file)
    except OSError as exc:
        raise ScenarioError(path, [f"cannot read: {exc.strerror or exc}"]) from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ScenarioError(path, [f"not valid TOML: {exc}"]) from exc
    return parse_scenario(data, path)


def parse_scenario(data: dict[str, Any], path: Path) -> Scenario:
    problems: list[str] = []
    for key in data:
        if key not in _TOP:
            problems.append(f"top level: key `{key}`: unknown (known: {', '.join(_TOP)})")
    link = data.get("link", False)
    if not isinstance(link, bool):
        problems.append(f"top level: key `link`: must be true or false, got {link!r}")
        link = False
    enrol = strings(data.get("enrol", []), "top level: key `enrol`", problems)
    files = files_table(data.get("files", {}), link, problems)
    config = _config(data.get("config", {}), problems)
    if link:
        for key, what in LINK_SET_BY_RUNNER.items():
            if key in config.get("link", {}):
                problems.append(
                    f"config.link.{key}: set by the runner with `link = true` ({what}), "
                    "not the file"
                )
    setup = [_setup(i, raw, problems) for i, raw in _tables(data, "setup", problems)]
    steps = [_step(i, raw, problems) for i, raw in _tables(data, "step", problems)]
    if data.get("step") in (None, []):
        problems.append("top level: key `step`: a scenario needs at least one [[step]]")
    for where, text in _all_strings(config, setup, steps, files):
        problems += [f"{where}: {p}" for p in placeholder_problems(text, link=link)]
    if problems:
        raise ScenarioError(path, problems)
    return Scenario(
        path,
        tuple(enrol),
        config,
        tuple(s for s in setup if s is not None),
        tuple(s for s in steps if s is not None),
        link,
        files,
    )


def _tables(data: dict[str, Any], key: str, problems: list[str]) -> Iterator[tuple[int, Any]]:
    entries = data.get(key, [])
    if not isinstance(entries, list):
        problems.append(f"top level: key `{key}`: must be an array of tables ([[{key}]])")
        return
    for index, raw in enumerate(entries, 1):
        if not isinstance(raw, dict):
            problems.append(f"{key} {index}: must be a table ([[{key}]])")
            continue
        yield index, raw


def _config(value: object, problems: list[str]) -> dict[str, dict[str, Any]]:
    if not isinstance(value, dict):
        problems.append(f"top level: key `config`: must be a table, got {describe(value)}")
        return {}
    config: dict[str, dict[str, Any]] = {}
    for section, table in value.items():
        where = f"config.{section}"
        if section not in SECTIONS:
            problems.append(f"{where}: unknown section (known: {', '.join(SECTIONS)})")
        elif not isinstance(table, dict):
            problems.append(f"{where}: must be a table ([config.{section}])")
        else:
            for key, item in table.items():
                problems += [f"{where}.{key}: {p}" for p in _config_value_problems(item)]
            if section == "state" and "dir" in table:
                problems.append(f"{where}.dir: set by the runner (it is {{state}}), not the file")
            config[section] = dict(table)
    return config


def _config_value_problems(value: object, *, in_array: bool = False) -> list[str]:
    if isinstance(value, dict):
        if not in_array:  # an array of tables ([[vending.product]]) is fine, not a sub-table
            return ["must be a value, not a table"]
        return [p for item in value.values() for p in _config_value_problems(item)]
    if isinstance(value, list):
        return [p for item in value for p in _config_value_problems(item, in_array=True)]
    if isinstance(value, float) and not math.isfinite(value):
        return ["must be a finite number"]
    if not isinstance(value, str | bool | int | float):
        return [f"{describe(value)} is not supported here"]
    return []


def _setup(index: int, raw: dict[str, Any], problems: list[str]) -> Setup | None:
    where = f"setup {index}"
    bad = len(problems)
    for key in raw:
        if key not in ("cli", "exit"):
            problems.append(f"{where}: key `{key}`: unknown (a [[setup]] has cli and exit)")
    if "cli" not in raw:
        problems.append(f"{where}: key `cli`: missing")
    found = args(raw.get("cli", []), f"{where}: key `cli`", problems)
    code = _exit(raw.get("exit", 0), f"{where}: key `exit`", problems)
    return Setup(index, tuple(found), code) if len(problems) == bad else None


def _exit(value: object, where: str, problems: list[str]) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 255:
        problems.append(f"{where}: must be an exit status 0-255, got {value!r}")
        return 0
    return value


def _step(index: int, raw: dict[str, Any], problems: list[str]) -> Step | None:
    where = f"step {index}"
    bad = len(problems)
    for key in raw:
        if key not in ACTIONS and key not in OPTIONS:
            problems.append(f"{where}: key `{key}`: unknown (actions: {', '.join(ACTIONS)})")
    actions = [key for key in raw if key in ACTIONS]
    if len(actions) != 1:
        found = ", ".join(f"`{a}`" for a in actions) or "none"
        problems.append(f"{where}: needs exactly one action, found {found}")
        return None
    action = actions[0]
    for key, owners in OPTIONS.items():
        if key in raw and action not in owners:
            names = " or ".join(f"`{o}`" for o in owners)
            problems.append(f"{where}: key `{key}`: only for a {names} step, not `{action}`")
    value = action_value(action, raw[action], f"{where}: key `{action}`", problems)
    within = number(raw.get("within_s", WITHIN_S), f"{where}: key `within_s`", 0.1, 600, problems)
    kind = verdict_kind(raw["kind"], f"{where}: key `kind`", problems) if "kind" in raw else None
    attrs = record_attrs(raw.get("attrs", []), f"{where}: key `attrs`", problems)
    code = _exit(raw.get("exit", 0), f"{where}: key `exit`", problems)
    interval = raw.get("interval_ms", INTERVAL_MS)
    if not isinstance(interval, int) or isinstance(interval, bool) or interval < MIN_INTERVAL_MS:
        problems.append(
            f"{where}: key `interval_ms`: must be an integer of at least {MIN_INTERVAL_MS} "
            f"(the keypad debounces each key), got {interval!r}"
        )
        interval = INTERVAL_MS
    if len(problems) != bad or value is None:
        return None
    return Step(index, action, value, within, code, interval, kind, attrs)


# -- every string the runner expands --------------------------------------------------------


def _all_strings(
    config: dict[str, dict[str, Any]],
    setup: list[Setup | None],
    steps: list[Step | None],
    files: tuple[tuple[str, str], ...] = (),
) -> Iterator[tuple[str, str]]:
    """Every string the runner expands, with where it is."""

    def flatten(value: object) -> Iterator[str]:
        if isinstance(value, str):
            yield value
        elif isinstance(value, list | tuple):
            for item in value:
                yield from flatten(item)
        elif isinstance(value, dict):
            for item in value.values():
                yield from flatten(item)

    for section, table in config.items():
        for key, value in table.items():
            for text in flatten(value):
                yield f"config.{section}.{key}", text
    for entry in setup:
        if entry is not None:
            for text in entry.args:
                yield f"setup {entry.index}: key `cli`", text
    for step in steps:
        if step is not None:
            for text in flatten(step.value):
                yield f"step {step.index}: key `{step.action}`", text
            for text in step.attrs:
                yield f"step {step.index}: key `attrs`", text
    for name, text in files:
        yield f"files.{name!r}", text


# -- pass two: against the test PKI ------------------------------------------------------------


def check_names(scenario: Scenario, manifest: TestPkiManifest) -> None:
    """Card names in ``enrol``, ``tap`` and placeholders exist and have what is asked."""
    cards = {c.name: c for c in manifest.cards}
    problems: list[str] = []

    def unknown(name: str) -> str:
        return f"no card {name!r} in the test PKI {manifest.directory}"

    for name in scenario.enrol:
        card = cards.get(name)
        if card is None:
            problems.append(f"top level: key `enrol`: {unknown(name)}")
        elif card.serial is None or card.issuer_key_id is None:
            problems.append(f"top level: key `enrol`: {name} has no certificate to enrol")
    for step in scenario.steps:
        tapped = step.value if step.action == "tap" else None
        if isinstance(tapped, str) and not is_profile_path(tapped) and tapped not in cards:
            problems.append(f"step {step.index}: key `tap`: {unknown(tapped)}")
    everything = _all_strings(
        scenario.config, list(scenario.setup), list(scenario.steps), scenario.files
    )
    for where, text in everything:
        for token in placeholders(text):
            kind, _, name = token[1:-1].partition(":")
            if kind not in PER_CARD:
                continue
            card = cards.get(name)
            if card is None:
                problems.append(f"{where}: {token}: {unknown(name)}")
            elif card_value(card.serial, card.issuer_key_id, card.pin, kind) is None:
                problems.append(f"{where}: {token}: {name} has no {kind}")
    if problems:
        raise ScenarioError(scenario.path, problems)
