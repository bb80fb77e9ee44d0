"""``terminald sim demo``: watch virtual cards being tapped on a real pcscd."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from terminald.cli.common import CliError, Groups, Subparsers


def register(commands: Subparsers, groups: Groups) -> None:
    demo = groups["sim"].add_parser(
        "demo",
        help="tap virtual My Number Cards on pcscd's virtual reader and show each verdict",
        description="Builds a test PKI, starts pcscd with the vpcd driver and taps virtual "
        "cards on it. Interactive when stdin is a terminal; a scripted tour of every outcome "
        "otherwise or with --tour. Needs scripts/sandbox (scripts/run does it).",
    )
    demo.add_argument("--tour", action="store_true", help="the scripted tour, even on a terminal")
    demo.add_argument("--pki", type=Path, metavar="DIR", help="use this test PKI (from `sim pki`)")
    demo.add_argument("--pace", type=float, default=1.0, metavar="S", help="pause between taps")
    demo.add_argument("--fast", action="store_true", help="no NFC timing model on the card")
    demo.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from terminald.sim.demo import run_demo
    from terminald.sim.pcscd import SandboxRequiredError

    try:
        return run_demo(
            pki_dir=args.pki,
            interactive=sys.stdin.isatty() and not args.tour,
            pace=max(0.0, args.pace),
            realtime=not args.fast,
        )
    except SandboxRequiredError as exc:
        raise CliError(str(exc)) from exc
