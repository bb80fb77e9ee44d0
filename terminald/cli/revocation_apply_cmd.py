"""``terminald revocation apply``: install a signed bundle into a terminal's store."""

from __future__ import annotations

import argparse
import os
from datetime import UTC, datetime
from pathlib import Path

from terminald.cli.common import CliError, Groups, Subparsers, read_input
from terminald.cli.revocation_store_opts import add_store_arguments, open_store


def register(commands: Subparsers, groups: Groups) -> None:
    apply = groups["revocation"].add_parser(
        "apply",
        help="verify a signed snapshot or delta and install it into a terminal store",
        description="Verify the bundle's signature, version (no rollback), validity (no "
        "freeze) and delta base, then install it durably (write, fsync, rename). On any "
        "refusal the installed data stays as it was. Installing the version already "
        "installed is a no-op (exit 0). The store file belongs to the owner of its "
        "directory: run as that user, or as root (the file is handed to that user).",
    )
    apply.add_argument("bundle", type=Path, metavar="BUNDLE")
    add_store_arguments(apply, required=True, grace=False)
    apply.set_defaults(func=run)


def _check_owner(directory: Path) -> None:
    """Refuse to leave a store the daemon's user may not be able to read or replace."""
    import pwd
    import stat

    try:
        info = directory.stat()
    except FileNotFoundError:
        raise CliError(f"--revocation-state: directory {directory} does not exist") from None
    except OSError as exc:
        raise CliError(f"--revocation-state: cannot use {directory}: {exc.strerror}") from exc
    euid = os.geteuid()
    shared = info.st_mode & stat.S_ISVTX and info.st_mode & stat.S_IWOTH  # e.g. /tmp
    if euid in (0, info.st_uid) or shared:
        return

    def user(uid: int) -> str:
        try:
            return pwd.getpwuid(uid).pw_name
        except KeyError:
            return f"uid {uid}"

    owner = user(info.st_uid)
    raise CliError(
        f"{directory} belongs to {owner}, and this is {user(euid)}: the store would end up "
        f"owned by the wrong user; run apply as {owner} (or as root, which hands the file "
        f"to {owner})"
    )


def _already_installed(state: Path, data: bytes) -> bool:
    from terminald.files import read_limited
    from terminald.revocation.chain import decode_chain
    from terminald.revocation.errors import RevocationError
    from terminald.store.revocation_store import MAX_STATE_SIZE

    try:
        return decode_chain(read_limited(state, MAX_STATE_SIZE))[-1] == data
    except (OSError, RevocationError):
        return False


def run(args: argparse.Namespace) -> int:
    from terminald.revocation.bundle import DEFAULT_MAX_SIZE
    from terminald.revocation.errors import BundleRejected, RejectReason, RevocationError

    _check_owner(args.revocation_state.parent)
    store = open_store(args, creating=True)
    assert store is not None  # --revocation-state is required here
    data = read_input(args.bundle, "bundle", DEFAULT_MAX_SIZE)
    try:
        header = store.apply(data, datetime.now(UTC))
    except BundleRejected as exc:
        # Idempotent: the very bundle that is installed last is "done", not a rollback.
        if exc.reason is RejectReason.ROLLBACK and _already_installed(args.revocation_state, data):
            version = store.status(datetime.now(UTC)).version
            print(f"version {version} is already installed ({args.bundle}); nothing to do")
            return 0
        raise CliError(f"{args.bundle}: not installed: {exc}") from exc
    except (RevocationError, OSError) as exc:
        raise CliError(f"{args.bundle}: not installed: {exc}") from exc
    print(
        f"installed {header.kind.name.lower()} version {header.version}, "
        f"valid until {header.valid_until.isoformat()}"
    )
    return 0
