"""``terminald sim scenario``: the real gate daemon driven from a scenario file."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from terminald.cli.common import CliError, Groups, Subparsers, print_json


def register(commands: Subparsers, groups: Groups) -> None:
    scenario = groups["sim"].add_parser(
        "scenario",
        help="run the gate daemon on mock GPIO with virtual cards, driven by a scenario file",
        description="Runs what `terminald run` runs on mock GPIO, with virtual My Number "
        "Cards on pcscd's vpcd reader, and plays the steps of a scenario file (TOML: "
        "enrol, [config.SECTION], [[setup]], [[step]]; see docs/scenarios.md): taps, "
        "keys, PINs, expected decisions, terminald commands, reload, REX, door, tamper, "
        "mode. Prints a line per step. Exit status: 0 every step as expected, 1 one was "
        "not, 2 a bad file (the step and key named). Needs scripts/sandbox.",
    )
    scenario.add_argument("file", type=Path, metavar="FILE", help="the scenario (TOML)")
    scenario.add_argument(
        "--json",
        action="store_true",
        help='print only {"passed": bool, "steps": [{"index", "action", "ok", "saw"}]} on '
        "stdout (progress goes to stderr)",
    )
    scenario.add_argument(
        "--pki", type=Path, metavar="DIR", help="use this test PKI (from `sim pki`)"
    )
    scenario.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from terminald.daemon.main import StartupError
    from terminald.sim.pcscd import PcscdError
    from terminald.sim.scenario import ScenarioSandboxError, run_scenario
    from terminald.sim.scenario_file import ScenarioError

    out = sys.stderr if args.json else sys.stdout
    try:
        report = run_scenario(args.file, pki_dir=args.pki, out=out)
    except ScenarioError as exc:
        problems = "\n  ".join(exc.problems)
        raise CliError(f"bad scenario {exc.path}:\n  {problems}", 2) from exc
    except ScenarioSandboxError as exc:
        raise CliError(str(exc)) from exc
    except StartupError as exc:
        message = "the scenario's daemon did not start: " + "; ".join(exc.messages)
        raise CliError(message, exc.exit_code) from exc
    except PcscdError as exc:
        raise CliError(str(exc), 1) from exc
    if args.json:
        print_json(report.to_dict())
    return 0 if report.passed else 1
