"""The ``terminald`` command line.

Each command lives in its own module with a ``register(commands, groups)``
function. This module builds the parser, configures logging, and is the one place
that turns exceptions into messages and exit codes.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence
from typing import Any

from terminald.cli.common import CliError, Groups

# Order is the order of --help.
_COMMAND_MODULES = (
    "terminald.cli.auth_cmd",
    "terminald.cli.cert_cmd",
    "terminald.cli.sim_pki_cmd",
    "terminald.cli.sim_card_cmd",
    "terminald.cli.sim_crl_cmd",
    "terminald.cli.sim_demo_cmd",
    "terminald.cli.sim_scenario_cmd",
    "terminald.cli.revocation_cmd",
    "terminald.cli.revocation_apply_cmd",
    "terminald.cli.enrolment_cmd",
    "terminald.cli.check_config_cmd",
    "terminald.cli.run_cmd",
    "terminald.cli.console_cmd",
    "terminald.cli.audit_cmd",
    "terminald.cli.attendance_cmd",
    "terminald.cli.relay_safe_cmd",
    "terminald.cli.doctor_cmd",
    "terminald.cli.keys_cmd",
    "terminald.cli.host_cmd",
    "terminald.cli.host_serve_cmd",
)

_GROUPS = {
    "sim": "virtual cards, test PKI and test CRLs (for tests and demos)",
    "revocation": "build, inspect and query signed revocation bundles",
    "keys": "this terminal's key pair for the back-office link",
    "host": "the back office's side of the serial link",
    "attendance": "clock-in/out records from the audit log",
}


def version() -> str:
    """The installed package's version (pyproject.toml's, through its metadata)."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as package_version

    try:
        return package_version("terminald")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown (not installed)"


class _Version(argparse.Action):
    """``--version``: reads the package metadata only when asked (parsing stays cheap)."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, *_: object) -> None:
        print(f"terminald {version()}")
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="terminald",
        description="My Number Card (JPKI user-authentication) terminal for gates, "
        "vending machines and employee ID.",
    )
    parser.add_argument("--version", action=_Version, help="print the version and exit")
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="more log output: -v info, -vv debug, -vvv every APDU (PINs masked)",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    groups: Groups = {}
    for name, help_text in _GROUPS.items():
        group = commands.add_parser(name, help=help_text, description=help_text)
        groups[name] = group.add_subparsers(
            dest=f"{name}_command", metavar="SUBCOMMAND", required=True
        )
    for module_name in _COMMAND_MODULES:
        importlib.import_module(module_name).register(commands, groups)
    return parser


TRAFFIC = 5  # APDU hex (PIN data masked); below DEBUG


def _configure_logging(verbosity: int) -> None:
    levels = (logging.WARNING, logging.INFO, logging.DEBUG, TRAFFIC)
    level = levels[min(verbosity, len(levels) - 1)]
    logging.addLevelName(TRAFFIC, "TRAFFIC")
    logging.basicConfig(
        level=level, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _configure_logging(args.verbose)
    try:
        code: int = args.func(args)
    except CliError as exc:
        print(f"terminald: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
