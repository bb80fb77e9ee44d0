"""``terminald sim demo``: the real gate daemon on mock GPIO, virtual cards, a person watching."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from terminald.cli.common import CliError, Groups, Subparsers


def register(commands: Subparsers, groups: Groups) -> None:
    demo = groups["sim"].add_parser(
        "demo",
        help="run the gate daemon on mock GPIO with virtual cards: drive it, or watch a tour",
        description="Builds a test PKI, starts pcscd with the vpcd driver and runs the gate "
        "daemon (what `terminald run` runs) on mock GPIO, with virtual My Number Cards on "
        "the virtual reader. With a terminal on stdin and stdout: a screen with the keypad, "
        "the LEDs, relay, buzzer and door, and keys to tap cards, open the door, press REX, "
        "flip tamper, change the mode and scroll the log. Otherwise, or with --tour: a "
        "scripted tour that taps every card the screen offers and walks through every door "
        "outcome, exit status 1 if any differs from the expected one. "
        "Needs scripts/sandbox (scripts/run does it).",
    )
    demo.add_argument("--tour", action="store_true", help="the scripted tour, even on a terminal")
    demo.add_argument("--pki", type=Path, metavar="DIR", help="use this test PKI (from `sim pki`)")
    demo.add_argument(
        "--pace",
        type=float,
        metavar="S",
        help="pause between tour steps (default: 1 on a terminal, else 0)",
    )
    demo.add_argument("--fast", action="store_true", help="no NFC timing model on the cards")
    demo.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from terminald.daemon.main import StartupError
    from terminald.sim.demo import DemoError, run_demo
    from terminald.sim.pcscd import PcscdError, SandboxRequiredError

    interactive = sys.stdin.isatty() and sys.stdout.isatty() and not args.tour
    pace = args.pace if args.pace is not None else (1.0 if sys.stdout.isatty() else 0.0)
    try:
        return run_demo(
            pki_dir=args.pki,
            interactive=interactive,
            pace=max(0.0, pace),
            realtime=not args.fast,
        )
    except (SandboxRequiredError, DemoError) as exc:
        raise CliError(str(exc)) from exc
    except StartupError as exc:
        raise CliError("the demo daemon did not start: " + "; ".join(exc.messages)) from exc
    except PcscdError as exc:
        raise CliError(str(exc), 1) from exc
