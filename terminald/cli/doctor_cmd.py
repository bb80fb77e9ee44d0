"""``terminald doctor``: check this terminal's setup; say what is wrong and how to fix it.

Safe while the daemon runs: it lists readers but never connects to one, never builds a
GPIO pin factory, opens the serial port only to close it, and changes no state. The
checks are in :mod:`terminald.daemon.doctor`, imported only when the command runs.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from terminald.cli.common import Groups, Subparsers, print_json
from terminald.config import DEFAULT_CONFIG_PATH


def register(commands: Subparsers, groups: Groups) -> None:
    doctor = commands.add_parser(
        "doctor",
        help="check this terminal's setup and say how to fix what is wrong",
        description="Check the configuration, pcscd and the card reader, GPIO, the serial "
        "port, the clock, the trust anchors, the revocation data and the state directory. "
        "Nothing is driven, held or modified, so it is safe while the daemon runs; run it "
        "as the daemon's user (sudo -u terminald terminald doctor) to check that user's "
        "access. Exit status: 0 no failure (warnings allowed), 1 a check failed, 2 the "
        "configuration file cannot be read at all.",
    )
    doctor.add_argument(
        "--config",
        type=Path,
        default=DEFAULT_CONFIG_PATH,
        metavar="FILE",
        help=f"the terminal's configuration (default {DEFAULT_CONFIG_PATH})",
    )
    doctor.add_argument("--json", action="store_true", help="print the findings as JSON")
    doctor.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from terminald.daemon.doctor import format_report, run_checks

    report = run_checks(args.config)
    if args.json:
        print_json(report.as_dict())
    else:
        for line in format_report(report):
            print(line)
    return report.exit_code
