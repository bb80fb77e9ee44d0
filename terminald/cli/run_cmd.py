"""``terminald run``: the gate daemon (what terminald.service starts)."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from pathlib import Path

from terminald.cli.common import Groups, Subparsers
from terminald.config import DEFAULT_CONFIG_PATH

TRAFFIC = 5  # -vvv: every APDU, PIN data masked (terminald.backends.pcsc.TRAFFIC)


def register(commands: Subparsers, groups: Groups) -> None:
    run_parser = commands.add_parser(
        "run",
        help="run the terminal daemon (systemd Type=notify; SIGHUP reloads, SIGTERM stops)",
        description="Run the terminal: wait for cards, ask for the PIN on the keypad, "
        "decide, and drive the relay, LEDs and buzzer. Logs go to stderr as key=value "
        "lines (journald). SIGHUP re-reads the configuration and the files it names and "
        "keeps the running one if anything is wrong; SIGTERM stops cleanly. Exit status: "
        "0 stopped, 1 the hardware could not be opened, 2 the configuration is unusable. "
        "terminald -v/-vv/-vvv run ... logs more than [log] level says.",
    )
    run_parser.add_argument(
        "--config",
        type=Path,
        default=DEFAULT_CONFIG_PATH,
        metavar="FILE",
        help=f"the terminal's configuration (default {DEFAULT_CONFIG_PATH})",
    )
    run_parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # Before the daemon's imports: some start threads (numpy's BLAS pool), and every thread
    # must inherit the blocked signals that terminald.daemon.main takes with sigwait.
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT, signal.SIGHUP})
    from terminald.daemon.main import StartupError
    from terminald.daemon.main import run as run_daemon

    try:
        floor = (None, logging.INFO, logging.DEBUG, TRAFFIC)[min(args.verbose, 3)]
        return run_daemon(args.config, floor)
    except StartupError as exc:
        for message in exc.messages:
            print(f"terminald run: {message}", file=sys.stderr)
        return exc.exit_code
