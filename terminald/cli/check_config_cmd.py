"""``terminald check-config FILE``: is this configuration usable, and what does it say?"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from terminald.cli.common import Groups, Subparsers, print_json

if TYPE_CHECKING:
    from terminald.config import Config


def register(commands: Subparsers, groups: Groups) -> None:
    check = commands.add_parser(
        "check-config",
        help="validate a configuration file and summarise it",
        description="Load the TOML configuration as the daemon would: every unknown or "
        "invalid key is reported with its key path, all at once. By default the files it "
        "names (trust anchors, back-office keys, enrolled cards, the state directory) and "
        "the board's pin map are checked too, by the very code `terminald run` starts "
        "with and SIGHUP reloads with: a file that passes here is one the daemon takes. "
        "Exit status: 0 usable, 2 not.",
    )
    check.add_argument("file", type=Path, metavar="FILE")
    check.add_argument(
        "--no-files",
        action="store_true",
        help="check the file's content only, not the files it names (for checking a "
        "configuration away from the terminal)",
    )
    check.add_argument("--json", action="store_true", help="print the configuration as JSON")
    check.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from terminald.config import ConfigError, load_config
    from terminald.config_show import config_as_dict

    try:
        config = load_config(args.file)
        problems = [] if args.no_files else runtime_problems(config) + board_problems(config)
    except ConfigError as exc:
        problems = exc.messages
    if problems:
        for problem in problems:
            print(f"{args.file}: {problem}", file=sys.stderr)
        return 2
    if not args.no_files:
        for warning in enrolment_warnings(config):
            print(f"{args.file}: warning: {warning}", file=sys.stderr)
    if args.json:
        print_json(config_as_dict(config))
        return 0
    print(f"{args.file}: ok")
    for line in summary(config):
        print(f"  {line}")
    return 0


def runtime_problems(config: Config) -> list[str]:
    """What the daemon's start-up and SIGHUP would refuse: their own build_runtime."""
    from terminald.config import ConfigError
    from terminald.daemon.runtime import build_runtime

    try:
        build_runtime(config, reader_supports_extended=False, check_only=True)
    except ConfigError as exc:
        return exc.messages
    return []


def enrolment_warnings(config: Config) -> list[str]:
    """Enrolled entries whose issuer is no trust anchor's key id: a typo, or a root not
    configured yet (e.g. J-LIS's 2019 root). Such a card can never pass, so say so."""
    from terminald.config import ConfigError
    from terminald.config_files import trust_store
    from terminald.store.enrolled import EnrolledFileError, load_enrolled

    if config.access.policy != "enrolled":
        return []
    try:
        anchors = {anchor.key_id for anchor in trust_store(config).anchors()}
        cards = load_enrolled(config.access.enrolled)
    except (ConfigError, EnrolledFileError):
        return []  # already reported as problems
    known = ", ".join(sorted(key_id.hex() for key_id in anchors)) or "none"
    return [
        f"access.enrolled: serial {card.serial}"
        + (f" (label {card.label!r})" if card.label else "")
        + f": issuer {card.issuer_key_id.hex()} is no trust anchor's key id (anchors: {known}); "
        "this card cannot pass until that root is trusted"
        for card in cards
        if card.issuer_key_id not in anchors
    ]


def board_problems(config: Config) -> list[str]:
    """Load the board's pin map and hold ``[relay]``'s assertions against it."""
    from terminald.config import relay_wiring_mismatches

    try:
        from terminald.backends.pinmap import PinMapError, load_board
    except ImportError:  # the GPIO layer is not in this build: nothing to check against
        return []
    try:
        pinmap = load_board(config.gpio.board, keypad=config.gpio.keypad or None)
    except PinMapError as exc:
        return [f"gpio.board: {exc}"]
    relay = pinmap.relay
    return relay_wiring_mismatches(config, active_high=relay.active_high, lock=relay.lock)


def summary(config: Config) -> list[str]:
    """What the terminal will do, in a few lines a person can check at a glance."""
    card, trust, revocation = config.card, config.trust, config.revocation
    relay, door = config.relay, config.door
    anchors = [f"{len(trust.anchors)} anchor path(s)"] if trust.anchors else []
    if trust.include_builtin:
        anchors.insert(0, "built-in J-LIS roots")
    if revocation.backoffice_keys:
        checked = (
            f"{len(revocation.backoffice_keys)} back-office key(s), grace "
            f"{revocation.grace_hours:g} h, store {revocation.state_path}"
        )
        if revocation.required:
            checked += " (required: everyone is refused until a bundle is applied)"
    else:
        checked = "NOT checked (revocation.required = false, no back-office key)"
    inputs = [name for name in ("contact", "rex", "tamper") if getattr(door, name)]
    reader = f"reader {card.reader!r}" if card.reader else "every reader"
    return [
        f"terminal:   {config.terminal.id}, {config.terminal.purpose}, mode {config.terminal.mode}",
        f"card:       {reader}, pin floor {card.pin_floor}, PIN timeout {card.pin_timeout_s:g} s, "
        f"extended reads {str(card.extended_reads).lower()}",
        f"trust:      {' + '.join(anchors)}",
        f"revocation: {checked}",
        f"gpio:       {config.gpio.backend} on {config.gpio.board}; relay pulse {relay.open_ms} ms",
        f"door:       held open after {door.held_open_s:g} s; inputs: "
        f"{', '.join(inputs) or 'none wired'}",
        f"log:        {config.log.level}; state in {config.state.dir}",
    ]
