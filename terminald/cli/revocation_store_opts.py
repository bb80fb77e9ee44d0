"""Options that open the terminal's revocation store (used by ``auth`` and ``revocation apply``)."""

from __future__ import annotations

import argparse
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from terminald.cli.common import CliError
from terminald.cli.numeric_args import number

if TYPE_CHECKING:
    from terminald.store.revocation_store import RevocationStore


MAX_GRACE_HOURS = 7 * 24.0  # FreshnessPolicy's bound


def add_store_arguments(
    parser: argparse.ArgumentParser, *, required: bool, grace: bool = True
) -> None:
    """--revocation-state and --backoffice-key; with ``grace`` (commands that answer from
    the store, such as ``auth``) also --revocation-grace. An installer (``revocation
    apply``) passes ``grace=False``: grace decides answers, not what may be installed."""
    parser.add_argument(
        "--revocation-state",
        type=Path,
        required=required,
        metavar="FILE",
        help="the terminal's revocation store file (installed with `terminald revocation apply`)",
    )
    parser.add_argument(
        "--backoffice-key",
        type=Path,
        action="extend",
        nargs="+",
        metavar="PUB",
        help="back-office Ed25519 public key(s) whose signatures count (PEM; several after "
        "one flag or the flag repeated)",
    )
    if not grace:
        return
    parser.add_argument(
        "--revocation-grace",
        type=number(0, MAX_GRACE_HOURS),
        default=0.0,
        metavar="HOURS",
        help="admit (and log) for this long past valid-until instead of failing closed "
        f"(0..{MAX_GRACE_HOURS:g}; default 0: fail closed)",
    )


def open_store(args: argparse.Namespace, *, creating: bool = False) -> RevocationStore | None:
    """The store named on the command line, or None when none was asked for.

    ``creating``: for an installer, to which a store file not there yet is no error.
    """
    # numpy, pyroaring and cryptography come with these: imported only when a command runs.
    from terminald.revocation.freshness import FreshnessPolicy
    from terminald.revocation.keys import KeyFileError
    from terminald.store.revocation_store import (
        RevocationStore,
        RevocationStoreConfig,
        load_trusted_keys,
    )

    if args.revocation_state is None:
        if args.backoffice_key:
            raise CliError("--backoffice-key needs --revocation-state")
        return None
    if not args.backoffice_key:
        raise CliError("--revocation-state needs at least one --backoffice-key")
    if not args.revocation_state.parent.is_dir():
        raise CliError(
            f"--revocation-state: directory {args.revocation_state.parent} does not exist"
        )
    try:
        keys = load_trusted_keys(args.backoffice_key)
        hours = getattr(args, "revocation_grace", 0.0)  # absent for an installer
        policy = FreshnessPolicy(grace=timedelta(hours=hours))
    except (OSError, KeyFileError, ValueError) as exc:
        raise CliError(f"revocation store: {exc}") from exc
    config = RevocationStoreConfig(args.revocation_state, keys, policy, creating=creating)
    return RevocationStore(config)
