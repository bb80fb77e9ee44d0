"""``terminald sim scenario``: the real gate daemon driven from a file (docs/scenarios.md).

In order: the file is checked (``scenario_file``; a bad one stops here, exit 2); a
scratch directory gets the test PKI (or ``--pki`` is used), ``{work}``, the daemon's
``{state}`` directory, the demo configuration with the file's ``[config.*]`` tables
merged over it (checked like ``terminald run`` checks it) and an enrolled-cards file
from ``enrol`` (serial and issuer of each), after the ``[files]`` were written into
``{work}``; the ``[[setup]]`` commands run; then the shared rig (``rig.SimRig``: pcscd +
vpcd, the daemon on gpiozero's MockFactory, its wall clock a ``SimClock``) starts and
``scenario_play`` plays every step, even after one failed, so a report shows all of
them. A failed setup command leaves every step "not run". With ``link = true`` a test
line and both sides' keys are made first (``scenario_link``) and the line is closed after
the run.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from terminald.config import Config, ConfigError, config_from_dict
from terminald.sim.demo_rig import TOUR_TIMINGS, demo_config_text, enrolled_toml
from terminald.sim.rig import SimRig
from terminald.sim.scenario_file import (
    Scenario,
    ScenarioError,
    check_names,
    load_scenario,
)
from terminald.sim.scenario_link import LinkSetupError, ScenarioLink, line_baud, open_link
from terminald.sim.scenario_places import Places
from terminald.sim.scenario_play import Player, StepReport, load_card, run_cli
from terminald.sim.sim_clock import SimClock
from terminald.sim.testpki import TestPkiManifest, build_test_pki

# The tour's timings: a grant's pulse and a PIN timeout take a second or a few, not 30.
SCENARIO_TIMINGS = TOUR_TIMINGS


class ScenarioSandboxError(RuntimeError):
    """Outside scripts/sandbox: say how to run it, as ``sim demo`` does."""

    def __init__(self, path: Path) -> None:
        super().__init__(
            "a scenario runs the real pcscd with its vpcd reader, which needs the test "
            "sandbox (TERMINALD_SANDBOX=1 is not set): run it as root under scripts/sandbox, "
            f"e.g. `scripts/sandbox .venv/bin/terminald sim scenario {path}` "
            "(after scripts/bootstrap), as scripts/run does for `sim demo`",
        )


@dataclass(frozen=True)
class ScenarioReport:
    steps: tuple[StepReport, ...]

    @property
    def passed(self) -> bool:
        return all(step.ok for step in self.steps)

    def to_dict(self) -> dict[str, object]:
        return {"passed": self.passed, "steps": [step.to_dict() for step in self.steps]}


# -- the files a run needs -----------------------------------------------------------------------


def _toml_string(text: str) -> str:
    """A TOML basic string: backslash, quote and control characters escaped."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    chars = (c if c >= " " and c != "\x7f" else f"\\u{ord(c):04x}" for c in escaped)
    return '"' + "".join(chars) + '"'


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):  # an inline table, in an array of tables
        return "{ " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"no TOML form for {type(value).__name__}")


def toml_text(config: dict[str, dict[str, Any]]) -> str:
    """A configuration of flat sections as TOML (all the daemon's configuration is)."""
    blocks = []
    for section, table in config.items():
        lines = [f"[{section}]", *(f"{k} = {_toml_value(v)}" for k, v in table.items())]
        blocks.append("\n".join(lines))
    return "# Written by terminald sim scenario.\n\n" + "\n\n".join(blocks) + "\n"


def write_terminal(scenario: Scenario, places: Places, link: ScenarioLink | None = None) -> Config:
    """The merged configuration and the enrolled cards (and with ``link`` the terminal's
    link key); the configuration as the daemon will read it. ScenarioError if it does not
    load or the key cannot be made."""
    manifest = places.manifest
    config: dict[str, dict[str, Any]] = tomllib.loads(demo_config_text(manifest, SCENARIO_TIMINGS))
    for section, table in scenario.config.items():
        merged = config.setdefault(section, {})
        merged.update({key: places.expand_value(value) for key, value in table.items()})
    config.setdefault("state", {})["dir"] = str(places.state)
    if link is not None:
        link.merge_into(config)
    try:
        loaded = config_from_dict(config, places.config.parent, places.config)
    except ConfigError as exc:
        raise ScenarioError(scenario.path, [f"config: {m}" for m in exc.messages]) from exc
    places.state.mkdir(parents=True, exist_ok=True)
    if link is not None:
        try:
            link.provision_terminal(loaded)
        except LinkSetupError as exc:
            raise ScenarioError(scenario.path, [f"config.link.key_file: {exc}"]) from exc
    header = f"The cards `enrol` names in {scenario.path.name}: serial and issuer of each."
    enrolled = enrolled_toml(manifest, list(scenario.enrol), header)
    (places.config.parent / "enrolled.toml").write_text(enrolled)
    places.config.write_text(toml_text(config))
    return loaded


def write_files(scenario: Scenario, places: Places) -> None:
    """``[files]``: each text, placeholders expanded, as ``{work}/NAME`` (the names are plain
    file names, checked in pass one). ScenarioError if one cannot be written."""
    for name, text in scenario.files:
        path = places.work / name
        try:
            path.write_text(places.expand(text), encoding="utf-8")
        except OSError as exc:
            problem = f"files.{name!r}: cannot write {path}: {exc.strerror or exc}"
            raise ScenarioError(scenario.path, [problem]) from exc


# -- the run -------------------------------------------------------------------------------------


def _say(out: TextIO, text: str) -> None:
    print(text, file=out, flush=True)


def run_scenario(path: Path, *, pki_dir: Path | None, out: TextIO = sys.stdout) -> ScenarioReport:
    """Check, prepare and play ``path``; progress and one line per step go to ``out``.

    Raises ScenarioError for a bad file (checked whole first, also outside the sandbox),
    ScenarioSandboxError outside the sandbox, and what the rig raises when the daemon
    or pcscd does not start (StartupError, PcscdError).
    """
    scenario = load_scenario(path)
    # The stack (the test line) unwinds before the scratch directory goes.
    with (
        tempfile.TemporaryDirectory(prefix="terminald-scenario-") as tmp,
        contextlib.ExitStack() as stack,
    ):
        root = Path(tmp)
        if pki_dir is None:
            _say(out, "Building a test PKI: three root generations, virtual cards ...")
            manifest = build_test_pki(root / "pki", cards=3)
        else:
            manifest = _load_pki(path, pki_dir)
        check_names(scenario, manifest)
        work = root / "work"
        work.mkdir()
        link = _open_link(scenario, stack, work) if scenario.link else None
        if link is not None:
            _say(
                out,
                f"A test line to the back office: the daemon's end {link.terminal_port}, "
                f"{{link}} {link.host_port}, {{hostkeys}} {link.hostkeys}",
            )
        places = Places(
            pki=manifest.directory.absolute(),
            work=work,
            state=root / "terminal" / "state",
            config=root / "terminal" / "terminald.toml",
            manifest=manifest,
            link=None if link is None else link.host_port,
            hostkeys=None if link is None else link.hostkeys,
        )
        write_files(scenario, places)  # first: the configuration may name them
        write_terminal(scenario, places, link)
        # Only now: a file is checked whole, wherever it is run.
        if os.environ.get("TERMINALD_SANDBOX") != "1":
            raise ScenarioSandboxError(path)
        failed = _run_setup(scenario, places, out)
        if failed is not None:
            return ScenarioReport(
                tuple(StepReport(s.index, s.action, False, failed) for s in scenario.steps)
            )
        return _play(scenario, places, out)


def _open_link(scenario: Scenario, stack: contextlib.ExitStack, work: Path) -> ScenarioLink:
    try:
        return open_link(stack, work / "hostkeys", line_baud(scenario.config))
    except LinkSetupError as exc:  # not the file's fault, but nothing has run: say so
        raise ScenarioError(scenario.path, [f"top level: key `link`: {exc}"]) from exc


def _load_pki(path: Path, pki_dir: Path) -> TestPkiManifest:
    try:
        return TestPkiManifest.load(pki_dir)
    except (OSError, ValueError, KeyError) as exc:
        raise ScenarioError(path, [f"--pki {pki_dir}: not a test PKI (`sim pki`): {exc}"]) from exc


def _run_setup(scenario: Scenario, places: Places, out: TextIO) -> str | None:
    """Each [[setup]] command; what went wrong with the first that failed, or None."""
    for entry in scenario.setup:
        args = [places.expand(a) for a in entry.args]
        code, gist = run_cli(args, places.work)
        ok = code == entry.exit
        _say(out, f"setup {entry.index:>2} {'ok  ' if ok else 'FAIL'} terminald {' '.join(args)}")
        _say(out, f"         saw exit {code}" + (f": {gist}" if gist else ""))
        if not ok:
            return f"not run: setup {entry.index} exited {code}, expected {entry.exit}"
    return None


def _play(scenario: Scenario, places: Places, out: TextIO) -> ScenarioReport:
    # The slot holds some card, not inserted, until the first tap.
    _label, card = load_card(places, places.manifest.cards[0].name)
    _say(out, "Starting pcscd with the vpcd reader, and the gate daemon on mock GPIO ...")
    reports = []
    # The daemon's wall clock: ``clock`` steps move it forward (sim_clock).
    with SimRig(places.config, card, realtime=False, clock=SimClock()) as rig:
        player = Player(rig, places)
        for line in rig.log.lines():
            _say(out, f"         log {line}")
        try:
            for step in scenario.steps:
                log_mark = rig.log.count
                report = player.play(step)
                verdict = "ok  " if report.ok else "FAIL"
                _say(out, f"step {step.index:>2} {verdict} {step.describe()}")
                _say(out, f"         saw {report.saw}")
                for line in rig.log.since(log_mark):
                    _say(out, f"         log {line}")
                reports.append(report)
        finally:
            player.tidy()
    result = ScenarioReport(tuple(reports))
    passed = sum(r.ok for r in reports)
    verdict = "PASSED" if result.passed else "FAILED"
    _say(out, f"{passed}/{len(reports)} steps as expected: {verdict}")
    return result
