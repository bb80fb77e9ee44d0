"""``terminald relay-safe``: drive the lock relay to its safe, de-energised state.

terminald.service runs it as ``ExecStopPost=``, after every exit of the daemon: a clean
stop, a crash, a watchdog kill. Whatever the daemon left on the relay pin, the relay
ends de-energised: the door is not released (terminald.core.hardware's convention).

The board and pin factory come from the configuration, the relay's pin and polarity
from that board's pin map; the GPIO work is the backend's
``drive_relay_safe(backend=..., board=...)`` in
``terminald.backends.gpio``, imported only here so that the rest of the CLI works on a
machine without GPIO libraries.
"""

from __future__ import annotations

import argparse
import importlib
from pathlib import Path

from terminald.cli.common import CliError, Groups, Subparsers
from terminald.config import DEFAULT_CONFIG_PATH, ConfigError
from terminald.config_gpio import load_gpio_section

GPIO_BACKEND_MODULE = "terminald.backends.gpio"
GPIO_SAFE_FUNCTION = "drive_relay_safe"


def register(commands: Subparsers, groups: Groups) -> None:
    safe = commands.add_parser(
        "relay-safe",
        help="de-energise the lock relay (run by systemd after the daemon stops or crashes)",
        description="Drive the relay pin of the configured board's pin map to its "
        "de-energised level. Only the [gpio] section is read, so a mistake elsewhere in "
        "the file cannot stop it. Exit status: 0 done, 1 the GPIO backend "
        "could not do it, 2 the configuration cannot be read.",
    )
    safe.add_argument(
        "--config",
        type=Path,
        default=DEFAULT_CONFIG_PATH,
        metavar="FILE",
        help=f"the terminal's configuration (default {DEFAULT_CONFIG_PATH})",
    )
    safe.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        gpio = load_gpio_section(args.config)
    except ConfigError as exc:
        problems = "; ".join(exc.messages)
        raise CliError(f"relay-safe: {args.config}: {problems}; relay state NOT changed") from exc
    try:
        backend = importlib.import_module(GPIO_BACKEND_MODULE)
    except ImportError as exc:
        raise CliError(
            f"relay-safe: no GPIO backend in this build ({GPIO_BACKEND_MODULE}: {exc}); "
            "relay state NOT changed",
            exit_code=1,
        ) from exc
    drive = getattr(backend, GPIO_SAFE_FUNCTION, None)
    if not callable(drive):
        raise CliError(
            f"relay-safe: {GPIO_BACKEND_MODULE} has no {GPIO_SAFE_FUNCTION}(); "
            "relay state NOT changed",
            exit_code=1,
        )
    try:
        drive(backend=gpio.backend, board=gpio.board)
    except Exception as exc:  # whatever the GPIO library raises, say it and fail
        raise CliError(
            f"relay-safe: could not drive the relay ({gpio.backend} on {gpio.board}): {exc}",
            exit_code=1,
        ) from exc
    print(f"relay de-energised ({gpio.backend} on {gpio.board})")
    return 0
