"""``terminald enrolment build|apply|show|import``: signed enrolment sets (docs/enrolment.md).

Exit status: 0 done; 2 a usage problem, a bad file or a refused set (one line on stderr).
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from terminald.cli.common import CliError, Groups, Subparsers, print_json, read_input
from terminald.cli.numeric_args import U64_MAX, integer, number

if TYPE_CHECKING:
    from terminald.enrolment.model import Person
    from terminald.revocation.keys import TrustedKeys
    from terminald.store.enrolment_db import EnrolmentStore

MAX_VALID_DAYS = 3660.0


def register(commands: Subparsers, groups: Groups) -> None:
    del groups  # this module adds its own group
    about = "build, install and inspect signed enrolment sets"
    group = commands.add_parser("enrolment", help=about, description=about)
    sub = group.add_subparsers(dest="enrolment_command", metavar="SUBCOMMAND", required=True)

    build = sub.add_parser(
        "build",
        help="a source TOML → a signed full set, or a delta against --base",
        description="Parse the source (every problem named with its path), then sign it with "
        "the back office's signing key as a full set, or with --base (a full set of an "
        "earlier version, its signature verified) as the delta from it.",
    )
    build.add_argument("source", type=Path, metavar="SOURCE.toml")
    build.add_argument("--key", type=Path, required=True, help="signing key (PEM), signing.key")
    build.add_argument(
        "--version", type=integer(1, U64_MAX), required=True, metavar="N", help="1..2**64-1"
    )
    build.add_argument("--base", type=Path, metavar="OLD_SET", help="full set to diff against")
    build.add_argument(
        "--base-pubkey",
        type=Path,
        action="extend",
        nargs="+",
        metavar="PUB",
        help="public key(s) that may have signed --base (default: --key's own)",
    )
    build.add_argument(
        "--valid-days",
        type=number(0, MAX_VALID_DAYS, low_open=True),
        default=30.0,
        metavar="D",
        help="valid for D days from now (default 30)",
    )
    build.add_argument("-o", "--out", type=Path, required=True, metavar="OUT")
    build.set_defaults(func=_build)

    apply = sub.add_parser(
        "apply",
        help="verify a signed set and install it into the terminal's enrolment database",
        description="Verify the signature (the [revocation] backoffice_keys), version (no "
        "rollback), validity and delta base, then install it in one transaction. Installing "
        "the set already installed is a no-op (exit 0).",
    )
    apply.add_argument("file", type=Path, metavar="FILE")
    _store_arguments(apply)
    apply.add_argument(
        "--backoffice-key",
        type=Path,
        action="extend",
        nargs="+",
        metavar="PUB",
        help="with --state-dir: the public key(s) whose signatures count",
    )
    apply.set_defaults(func=_apply)

    show = sub.add_parser("show", help="the installed set, or one person", description=None)
    _store_arguments(show)
    show.add_argument("--json", action="store_true", help="one JSON object on stdout")
    show.add_argument("--subject", metavar="S", help="show this person and their certificates")
    show.set_defaults(func=_show)

    convert = sub.add_parser(
        "import",
        help="an old enrolled.toml → the source format",
        description="Each [[card]] becomes one person: the subject is the card's label (when "
        "set and unique) or issuer:serial, in the --group groups.",
    )
    convert.add_argument("enrolled", type=Path, metavar="ENROLLED_TOML")
    convert.add_argument("-o", "--out", type=Path, required=True, metavar="SOURCE.toml")
    convert.add_argument(
        "--group",
        action="extend",
        nargs="+",
        default=[],
        metavar="G",
        help="a group for everyone (several after one flag, or the flag repeated)",
    )
    convert.set_defaults(func=_import)


def _store_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", type=Path, metavar="FILE", help="terminald.toml (default /etc/terminald/...)"
    )
    parser.add_argument(
        "--state-dir", type=Path, metavar="DIR", help="instead of --config: the state directory"
    )


def _state_and_keys(args: argparse.Namespace, need_keys: bool) -> tuple[Path, TrustedKeys | None]:
    from terminald.config import DEFAULT_CONFIG_PATH, ConfigError, load_config
    from terminald.config_files import revocation_store_config
    from terminald.revocation.keys import KeyFileError
    from terminald.store.revocation_store import load_trusted_keys

    pubs = getattr(args, "backoffice_key", None)
    if args.state_dir is not None:
        if args.config is not None:
            raise CliError("--state-dir or --config, not both")
        if not need_keys:
            return args.state_dir, None
        if not pubs:
            raise CliError("--state-dir needs --backoffice-key (or use --config)")
        try:
            return args.state_dir, load_trusted_keys(pubs)
        except (OSError, KeyFileError, ValueError) as exc:
            raise CliError(f"--backoffice-key: {exc}") from None
    if pubs:
        raise CliError("--backoffice-key goes with --state-dir; --config names its own keys")
    path = args.config or DEFAULT_CONFIG_PATH
    try:
        config = load_config(path)
        store_config = revocation_store_config(config) if need_keys else None
    except ConfigError as exc:
        raise CliError(f"{path}: {'; '.join(exc.messages)}") from None
    if need_keys and store_config is None:
        raise CliError(f"{path}: no [revocation] backoffice_keys: no set can be verified")
    return config.state.dir, None if store_config is None else store_config.trusted_keys


def _open(state_dir: Path) -> EnrolmentStore:
    from terminald.store.enrolment_db import FILE_NAME, EnrolmentStore

    if not state_dir.is_dir():
        raise CliError(f"state directory {state_dir} does not exist")
    return EnrolmentStore(state_dir / FILE_NAME)


def _build(args: argparse.Namespace) -> int:
    from terminald.backoffice.enrolment_builder import (
        BuildError,
        KeyFileError,
        build_set,
        load_signing_key,
        read_base,
        read_source,
    )
    from terminald.cli.revocation_cmd import write_file
    from terminald.revocation.keys import TrustedKeys
    from terminald.store.revocation_store import load_trusted_keys

    try:
        key = load_signing_key(args.key)
        content = read_source(args.source)
        base = None
        if args.base is not None:
            pubs = args.base_pubkey
            trusted = load_trusted_keys(pubs) if pubs else TrustedKeys([key.public_key()])
            base = read_base(args.base, trusted)
        elif args.base_pubkey:
            raise CliError("--base-pubkey verifies --base; give --base too")
        built = build_set(
            content, key, args.version, now=datetime.now(UTC), valid_days=args.valid_days, base=base
        )
    except (BuildError, KeyFileError) as exc:
        raise CliError(str(exc)) from None
    except OSError as exc:
        raise CliError(f"cannot read: {exc}") from None
    write_file(args.out, built.data)
    kind = "full set" if built.base_version == 0 else f"delta from version {built.base_version}"
    print(
        f"wrote {args.out}: {kind}, version {built.version}, {len(built.data)} bytes; "
        f"{len(content.people)} people, {len(content.credentials)} certificates; "
        f"valid until {built.valid_until.isoformat()}"
    )
    return 0


def _apply(args: argparse.Namespace) -> int:
    from terminald.enrolment.bundle import DEFAULT_MAX_SIZE
    from terminald.enrolment.errors import EnrolmentError, EnrolmentRejected, RejectReason

    state_dir, trusted = _state_and_keys(args, need_keys=True)
    assert trusted is not None
    data = read_input(args.file, "enrolment set", DEFAULT_MAX_SIZE)
    store = _open(state_dir)
    try:
        info = store.install(data, trusted, datetime.now(UTC))
    except EnrolmentRejected as exc:
        if exc.reason is RejectReason.ROLLBACK and store.is_installed(data):
            print(f"{args.file}: this set is already installed; nothing to do")
            return 0
        raise CliError(f"{args.file}: not installed: {exc}") from None
    except EnrolmentError as exc:
        raise CliError(f"{args.file}: not installed: {exc}") from None
    finally:
        store.close()
    print(
        f"installed version {info.version}: {info.people} people, {info.credentials} "
        f"certificates, valid until {info.valid_until.isoformat()}"
    )
    return 0


def _person(person: Person, cards: list[tuple[bytes, int]]) -> dict[str, Any]:
    def when(moment: datetime | None) -> str | None:
        return None if moment is None else moment.isoformat()

    return {
        "subject": person.subject,
        "label": person.label,
        "groups": sorted(person.groups),
        "schedule": person.schedule,
        "valid_from": when(person.valid_from),
        "valid_until": when(person.valid_until),
        "ages": [{"over": a.age, "from": a.since.isoformat()} for a in person.ages],
        "cards": [{"issuer": issuer.hex(), "serial": serial} for issuer, serial in cards],
    }


def _show(args: argparse.Namespace) -> int:
    state_dir, _ = _state_and_keys(args, need_keys=False)
    store = _open(state_dir)
    try:
        info = store.info()
        if info is None:
            problem = store.problem() or "no enrolment set is installed"
            if args.json:
                print_json({"ok": False, "error": problem})
            raise CliError(problem)
        data: dict[str, Any] = {
            "ok": True,
            "version": info.version,
            "issued_at": info.issued_at.isoformat(),
            "valid_until": info.valid_until.isoformat(),
            "digest": info.digest.hex(),
            "signer": info.signer.hex(),
            "people": info.people,
            "credentials": info.credentials,
        }
        lines = [f"{k}: {v}" for k, v in data.items() if k != "ok"]
        if args.subject is not None:
            found = store.person(args.subject)
            if found is None:
                raise CliError(f"subject {args.subject!r} is not enrolled (version {info.version})")
            data["person"] = _person(*found)
            lines += [f"  {k}: {v}" for k, v in data["person"].items()]
    finally:
        store.close()
    if args.json:
        print_json(data)
    else:
        print("\n".join(lines))
    return 0


def _import(args: argparse.Namespace) -> int:
    from terminald.cli.revocation_cmd import write_file
    from terminald.enrolment.errors import EnrolmentError
    from terminald.enrolment.source import parse_source_text
    from terminald.enrolment.source_render import content_from_enrolled, render_source
    from terminald.store.enrolled import EnrolledFileError, load_enrolled

    try:
        cards = load_enrolled(args.enrolled)
        content = content_from_enrolled(cards, args.group)
        text = render_source(content)
        parse_source_text(text)  # what we write must build: say so now, not at build time
    except EnrolledFileError as exc:
        raise CliError(str(exc)) from None
    except (EnrolmentError, ValueError) as exc:  # a group name the source refuses, say
        raise CliError(f"{args.enrolled}: cannot convert: {exc}") from None
    write_file(args.out, text.encode())
    print(f"wrote {args.out}: {len(content.people)} people from {args.enrolled}")
    return 0
