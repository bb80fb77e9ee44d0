"""``terminald revocation apply``: install a signed bundle into a terminal's store."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from pathlib import Path

from terminald.cli.common import CliError, Groups, Subparsers
from terminald.cli.revocation_store_opts import add_store_arguments, open_store


def register(commands: Subparsers, groups: Groups) -> None:
    apply = groups["revocation"].add_parser(
        "apply",
        help="verify a signed snapshot or delta and install it into a terminal store",
        description="Verify the bundle's signature, version (no rollback), validity (no "
        "freeze) and delta base, then install it durably (write, fsync, rename). On any "
        "refusal the installed data stays as it was.",
    )
    apply.add_argument("bundle", type=Path, metavar="BUNDLE")
    add_store_arguments(apply, required=True)
    apply.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from terminald.revocation.errors import RevocationError

    store = open_store(args)
    assert store is not None  # --revocation-state is required here
    try:
        data = args.bundle.read_bytes()
    except OSError as exc:
        raise CliError(f"cannot read bundle {args.bundle}: {exc.strerror}") from exc
    try:
        header = store.apply(data, datetime.now(UTC))
    except (RevocationError, OSError) as exc:
        raise CliError(f"{args.bundle}: not installed: {exc}") from exc
    print(
        f"installed {header.kind.name.lower()} version {header.version}, "
        f"valid until {header.valid_until.isoformat()}"
    )
    return 0
