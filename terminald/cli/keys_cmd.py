"""``terminald keys init|show`` (the terminal's link key) and ``terminald host keys ...``.

Public keys go to stdout alone (one line of base64, so ``$(terminald keys init)`` is the
key); where the files are goes to stderr. A private key is never printed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from terminald.cli.common import CliError, Groups, Subparsers, print_json
from terminald.cli.numeric_args import integer
from terminald.config_link import ADDRESS_MAX, ADDRESS_MIN


def register(commands: Subparsers, groups: Groups) -> None:
    sub = groups["keys"]
    init = sub.add_parser(
        "init",
        help="make this terminal's link key pair and print its public key",
        description="Write a new X25519 private key to [link] key_file (default "
        "<state dir>/link.key; mode 0600, written atomically) and print its public key "
        "(base64, one line) for the back office: `terminald host keys add --address N KEY`.",
    )
    _key_file_options(init)
    init.add_argument("--force", action="store_true", help="replace an existing key file")
    init.set_defaults(func=run_init)
    show = sub.add_parser(
        "show",
        help="print this terminal's link public key",
        description="Print the public key (base64) of [link] key_file; never the private key.",
    )
    _key_file_options(show)
    show.set_defaults(func=run_show)
    add_host_keys_parser(groups["host"])


def _key_file_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        type=Path,
        metavar="F",
        help="configuration naming [link] key_file (default /etc/terminald/terminald.toml)",
    )
    parser.add_argument(
        "--key-file",
        type=Path,
        metavar="PATH",
        help="the key file itself, instead of reading it from the configuration",
    )


def _key_file(args: argparse.Namespace) -> Path:
    if args.key_file is not None:
        return Path(args.key_file)
    from terminald.config import DEFAULT_CONFIG_PATH, ConfigError, load_config

    config = args.config or DEFAULT_CONFIG_PATH
    try:
        key_file = load_config(config).link.key_file
    except ConfigError as exc:
        problems = "; ".join(exc.messages)
        raise CliError(f"{config}: {problems} (or name the key with --key-file)") from None
    assert key_file is not None  # link_section always fills it in
    return key_file


def run_init(args: argparse.Namespace) -> int:
    from terminald.link.keys import encode_public
    from terminald.store.link_keys import LinkKeyFileError, init_link_key

    path = _key_file(args)
    try:
        public = init_link_key(path, force=args.force)
    except LinkKeyFileError as exc:
        raise CliError(str(exc)) from None
    print(encode_public(public))
    owner = path.stat().st_uid
    print(
        f"wrote this terminal's link private key to {path} (0600, uid {owner}); give the "
        "public key above to the back office",
        file=sys.stderr,
    )
    return 0


def run_show(args: argparse.Namespace) -> int:
    from terminald.link.keys import encode_public, public_of
    from terminald.store.link_keys import LinkKeyFileError, load_link_key

    try:
        print(encode_public(public_of(load_link_key(_key_file(args)))))
    except LinkKeyFileError as exc:
        raise CliError(str(exc)) from None
    return 0


def add_host_keys_parser(host: Subparsers) -> None:
    """Add ``keys init|add|list|show`` under ``terminald host`` (its subcommand group)."""
    keys = host.add_parser(
        "keys",
        help="the back office's key directory: its keys and its terminals' keys",
        description="Manage the directory given to `terminald host --keys DIR`.",
    )
    sub = keys.add_subparsers(dest="host_keys_command", metavar="SUBCOMMAND", required=True)

    def with_dir(name: str, help_text: str, description: str) -> argparse.ArgumentParser:
        parser = sub.add_parser(name, help=help_text, description=description)
        parser.add_argument(
            "--keys", dest="keys_dir", type=Path, required=True, metavar="DIR", help="key directory"
        )
        return parser

    init = with_dir(
        "init",
        "make the host's link key and signing key",
        "Make DIR (0700) with host.key (X25519, the link's host key), signing.key "
        "(Ed25519, signs time, config and enrolment) and signing.pub. Prints the host's "
        "public key for the terminals' [link] host_key; signing.pub goes to their "
        "[revocation] backoffice_keys.",
    )
    init.add_argument("--force", action="store_true", help="replace existing keys")
    init.set_defaults(func=run_host_init)
    add = with_dir(
        "add",
        "record a terminal's public key under its address",
        "Record the public key printed by the terminal's `terminald keys init` in "
        "DIR/terminals.toml under its line address.",
    )
    add.add_argument(
        "--address",
        type=integer(ADDRESS_MIN, ADDRESS_MAX, what="a terminal address", base=0),
        required=True,
        metavar="N",
        help=f"the terminal's [link] address ({ADDRESS_MIN}-{ADDRESS_MAX})",
    )
    add.add_argument("public_key", metavar="PUBKEY", help="the terminal's public key (base64)")
    add.add_argument(
        "--name", default=None, help="a name for logs and lists (default: the one recorded)"
    )
    add.add_argument("--force", action="store_true", help="replace the address's existing key")
    add.set_defaults(func=run_host_add)
    listing = with_dir("list", "list the terminals' keys", "List DIR/terminals.toml.")
    listing.add_argument("--json", action="store_true", help="one JSON object on stdout")
    listing.set_defaults(func=run_host_list)
    show = with_dir("show", "print the host's link public key", "Print host.key's public key.")
    show.set_defaults(func=run_host_show)


def run_host_init(args: argparse.Namespace) -> int:
    from terminald.link.keys import encode_public
    from terminald.store.link_keys import SIGNING_PUB, LinkKeyFileError, init_host_keys

    directory = Path(args.keys_dir)
    try:
        public = init_host_keys(directory, force=args.force)
    except LinkKeyFileError as exc:
        raise CliError(str(exc)) from None
    print(encode_public(public))
    print(
        f"wrote {directory}/host.key and {directory}/signing.key (private, 0600); the key "
        f"above is each terminal's [link] host_key, {directory / SIGNING_PUB} goes into "
        "their [revocation] backoffice_keys",
        file=sys.stderr,
    )
    return 0


def run_host_add(args: argparse.Namespace) -> int:
    from terminald.link.keys import LinkKeyError, TerminalKey, check_address, decode_public
    from terminald.store.link_keys import LinkKeyFileError, add_terminal_key, load_terminals

    try:
        address = check_address(args.address)
        name = args.name
        if name is None:  # adding the same key again must not wipe its name
            recorded = load_terminals(Path(args.keys_dir)).get(address)
            name = recorded.name if recorded is not None else ""
        terminal = TerminalKey(address, decode_public(args.public_key, "PUBKEY"), name)
        add_terminal_key(Path(args.keys_dir), terminal, replace=args.force)
    except (LinkKeyError, LinkKeyFileError) as exc:
        raise CliError(str(exc)) from None
    print(f"terminal {terminal.address} recorded in {Path(args.keys_dir) / 'terminals.toml'}")
    return 0


def run_host_list(args: argparse.Namespace) -> int:
    from terminald.link.keys import encode_public
    from terminald.store.link_keys import LinkKeyFileError, load_terminals

    try:
        terminals = load_terminals(Path(args.keys_dir))
    except LinkKeyFileError as exc:
        raise CliError(str(exc)) from None
    rows = [(t.address, encode_public(t.public_key), t.name) for _, t in sorted(terminals.items())]
    if args.json:
        print_json({"terminals": [{"address": a, "key": k, "name": n} for a, k, n in rows]})
        return 0
    if not rows:
        print("no terminals recorded (terminald host keys add)")
    for address, key, name in rows:
        print(f"{address:3d}  {key}  {name}".rstrip())
    return 0


def run_host_show(args: argparse.Namespace) -> int:
    from terminald.link.keys import encode_public, public_of
    from terminald.store.link_keys import HOST_KEY, LinkKeyFileError, load_link_key

    try:
        print(encode_public(public_of(load_link_key(Path(args.keys_dir) / HOST_KEY))))
    except LinkKeyFileError as exc:
        raise CliError(str(exc)) from None
    return 0
