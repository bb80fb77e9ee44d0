"""``terminald console passwd``: set the maintenance console's password (an argon2id hash)."""

from __future__ import annotations

import argparse
import getpass
import grp
import os
import pwd
import sys
from pathlib import Path

from terminald.cli.common import CliError, Groups, Subparsers
from terminald.config import DEFAULT_CONFIG_PATH

DAEMON_GROUP = "terminald"  # systemd/terminald.service runs the daemon as this group


def register(commands: Subparsers, groups: Groups) -> None:
    console = commands.add_parser(
        "console",
        help="the technician's maintenance console on a serial port",
        description="The maintenance console ([console] port in the configuration; "
        "docs/console.md).",
    )
    sub = console.add_subparsers(dest="console_command", metavar="SUBCOMMAND", required=True)
    passwd = sub.add_parser(
        "passwd",
        help="set the console password",
        description="Read a new console password twice without echo (or one line on stdin "
        "when it is not a terminal, for provisioning scripts) and write its argon2id hash "
        "to [console] passwd, replacing the file atomically. Run as root, the file is "
        "owned by root, group terminald (the daemon's), mode 0640; otherwise it is owned "
        "by you, mode 0600. Never prints the password or the hash. "
        "Exit status: 0 written, 2 refused (too short, different, unreadable config).",
    )
    where = passwd.add_mutually_exclusive_group()
    where.add_argument(
        "--config",
        type=Path,
        default=DEFAULT_CONFIG_PATH,
        metavar="FILE",
        help=f"write where [console] passwd says (default {DEFAULT_CONFIG_PATH})",
    )
    where.add_argument("--file", type=Path, metavar="PATH", help="write this file instead")
    passwd.set_defaults(func=run_passwd)


def _read_new() -> str:
    if not sys.stdin.isatty():
        line = sys.stdin.readline(1024)
        return line.rstrip("\r\n")
    first = getpass.getpass("New console password: ")
    second = getpass.getpass("Again: ")
    if first != second:
        raise CliError("the two passwords differ; nothing written")
    return first


def _owner() -> tuple[tuple[int, int] | None, int, str]:
    """(owner to give, mode, what to say) for the new file."""
    if os.geteuid() != 0:
        user = pwd.getpwuid(os.geteuid()).pw_name
        return None, 0o600, f"owned by {user} (not root: run as root on a terminal), mode 0600"
    try:
        gid = grp.getgrnam(DAEMON_GROUP).gr_gid
    except KeyError:
        return (0, 0), 0o600, "owned by root, mode 0600 (no terminald group on this machine)"
    return (0, gid), 0o640, "owned by root, group terminald (the daemon reads it), mode 0640"


def _write(path: Path, data: bytes, owner: tuple[int, int] | None, mode: int) -> None:
    """store.atomic_file.atomic_write, plus the mode: mkstemp makes the temporary 0600, and
    its owner and mode are set before the rename, so the name never shows a looser file."""
    import contextlib
    import tempfile

    from terminald.store.atomic_file import fsync_directory

    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            if owner is not None:
                os.fchown(handle.fileno(), *owner)
            os.fchmod(handle.fileno(), mode)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    fsync_directory(path.parent)


def run_passwd(args: argparse.Namespace) -> int:
    from terminald.config import ConfigError, load_config
    from terminald.console.passwd import check_new, hash_password

    path: Path | None = args.file
    if path is None:
        try:
            path = load_config(args.config).console.passwd
        except ConfigError as exc:
            raise CliError(f"{args.config}: " + "; ".join(exc.messages)) from exc
    password = _read_new()
    problem = check_new(password)
    if problem:
        raise CliError(f"password {problem}; nothing written")
    hashed = hash_password(password)
    del password
    owner, mode, said = _owner()
    if not path.parent.is_dir():
        raise CliError(f"{path.parent}: no such directory; nothing written")
    try:
        _write(path, hashed.encode() + b"\n", owner, mode)
    except OSError as exc:
        raise CliError(f"cannot write {path}: {exc.strerror or exc}") from exc
    print(f"console password set: {path}, {said}")
    return 0
