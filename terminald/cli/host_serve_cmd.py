"""``terminald host --port DEV --keys DIR serve [--address N ...] [--ages FILE]
[--partner ENTRY_ID=EXIT_ID ...] [--heartbeat S] [--pull-every S] [--duration S]``: the
back office serving a line (terminald.backoffice.host_serve; docs/protocol.md §4.4).

It prints one line per age answer and per event on stderr, and its counts at the end
(``--json``: one object on stdout). Exit status: 0 stopped (SIGINT, SIGTERM or
``--duration``); 1 the port did not open; 2 a usage, key-directory or age-book problem.
"""

from __future__ import annotations

import argparse
import re
import signal
import sys
import threading
from typing import Any

from terminald.cli.common import CliError, Groups, Subparsers, print_json
from terminald.cli.host_cmd import address_arg

# The terminal id's shape (terminald.config.TERMINAL_ID_PATTERN, not imported: the parser
# is built without importing the configuration's dependencies).
_ID = r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}"
MAX_DURATION_S = 10 * 365 * 86400.0


def register(commands: Subparsers, groups: Groups) -> None:
    help_text = (
        "serve the line: answer age questions, relay anti-passback passages between "
        "partner terminals, send heartbeats (until stopped)"
    )
    parser = groups["host"].add_parser("serve", help=help_text, description=help_text)
    parser.set_defaults(func=_serve)
    parser.add_argument(
        "--address",
        type=address_arg,
        action="extend",
        nargs="+",
        dest="serve_addresses",
        metavar="N",
        help="a terminal to serve (repeat; default: every terminal in the key directory)",
    )
    parser.add_argument(
        "--ages", type=_path, metavar="FILE", help="the age book (TOML; docs/protocol.md §4.4)"
    )
    parser.add_argument(
        "--partner",
        type=_pair,
        action="extend",
        nargs="+",
        default=[],
        metavar="ENTRY_ID=EXIT_ID",
        help="an entry terminal and its exit terminal, by terminal id (repeat)",
    )
    parser.add_argument(
        "--heartbeat",
        type=_seconds(0.1, 3600),
        default=10.0,
        metavar="S",
        help="seconds between the partners heartbeats (default 10)",
    )
    parser.add_argument(
        "--pull-every",
        type=_seconds(1, 86400),
        default=None,
        metavar="S",
        help="pull and acknowledge the audit trail every S seconds (default: never)",
    )
    parser.add_argument(
        "--duration",
        type=_seconds(0.1, MAX_DURATION_S),
        default=None,
        metavar="S",
        help="stop after S seconds (default: until SIGINT or SIGTERM)",
    )


def _path(text: str) -> Any:
    from pathlib import Path

    return Path(text)


def _pair(text: str) -> tuple[str, str]:
    entry, sep, exit_ = text.partition("=")
    if not sep or not re.fullmatch(_ID, entry) or not re.fullmatch(_ID, exit_):
        raise argparse.ArgumentTypeError(f"{text!r}: ENTRY_ID=EXIT_ID, two terminal ids")
    if entry == exit_:
        raise argparse.ArgumentTypeError(f"{text!r}: a terminal cannot be its own partner")
    return entry, exit_


def _seconds(low: float, high: float) -> Any:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{low:g} to {high:g} seconds")
        return value

    return parse


def partners_of(pairs: list[tuple[str, str]]) -> dict[str, str]:
    """Entry id → exit id; CliError when a terminal is named in two pairs."""
    named: set[str] = set()
    for entry, exit_ in pairs:
        for terminal in (entry, exit_):
            if terminal in named:
                raise CliError(f"--partner: {terminal} is named in two pairs")
            named.add(terminal)
    return dict(pairs)


def _serve(args: argparse.Namespace) -> int:
    from terminald.backoffice.age_book import AgeBook, AgeBookError
    from terminald.backoffice.host_link import HostError, HostLink
    from terminald.backoffice.host_serve import serve
    from terminald.config_link import BAUD_RATES
    from terminald.store.link_keys import HostKeys, LinkKeyFileError

    if args.port is None or args.host_dir is None:
        raise CliError("terminald host: --port DEV and --keys DIR are needed")
    if args.baud not in BAUD_RATES:
        raise CliError(f"--baud: one of {', '.join(map(str, BAUD_RATES))}")
    try:
        keys = HostKeys.load(args.host_dir)
    except LinkKeyFileError as exc:
        raise CliError(str(exc)) from None
    addresses = sorted(set(args.serve_addresses or keys.terminals))
    missing = [a for a in addresses if a not in keys.terminals]
    if missing or not addresses:
        raise CliError(
            f"terminal(s) {', '.join(map(str, missing)) or 'none'} not in "
            f"{args.host_dir}/terminals.toml (terminald host keys add)"
        )
    partners = partners_of(args.partner)
    ages = None
    if args.ages is not None:
        try:
            ages = AgeBook.load(args.ages)
        except AgeBookError as exc:
            raise CliError(str(exc)) from None
    stop = threading.Event()
    _stop_on_signals(stop)
    if args.duration is not None:
        timer = threading.Timer(args.duration, stop.set)
        timer.daemon = True
        timer.start()
    try:
        with HostLink(
            args.port, keys, baud=args.baud, rs485=args.rs485, rts=not args.no_rts
        ) as link:
            stats = serve(
                link,
                addresses,
                ages=ages,
                partners=partners,
                stop=stop,
                heartbeat_s=args.heartbeat,
                pull_every_s=args.pull_every,
                on_event=_print_event,
                on_answer=_print_answer,
            )
    except HostError as exc:
        if args.json:
            print_json({"ok": False, "error": str(exc)})
        raise CliError(str(exc), exit_code=1) from None
    counts = {k: v for k, v in vars(stats).items() if k != "problems"}
    if args.json:
        print_json({"ok": True, **counts, "problems": stats.problems})
    else:
        print(" ".join(f"{k}={v}" for k, v in counts.items()))
        for problem in stats.problems:
            print(f"problem: {problem}", file=sys.stderr)
    return 0


def _stop_on_signals(stop: threading.Event) -> None:
    if threading.current_thread() is not threading.main_thread():
        return  # signal handlers only in the main thread (a test calls main() elsewhere)
    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, lambda *_: stop.set())


def _print_event(address: int, event: Any) -> None:
    row = event.row
    who = f" {row.subject}" if row.subject else ""
    attrs = " ".join(f"{k}={v}" for k, v in row.attrs)
    line = f"event {address}/{row.terminal} #{row.seq} {row.kind} {row.reason or ''}{who} {attrs}"
    print(line.rstrip(), file=sys.stderr, flush=True)


def _print_answer(address: int, query: Any, answer: Any) -> None:
    over = {True: "yes", False: "no", None: "-"}[answer.over]
    print(
        f"age {address}: {query.issuer.hex()[:8]}/{query.serial} at least {query.age} "
        f"on {query.date.isoformat()}: {answer.certificate} {over}",
        file=sys.stderr,
        flush=True,
    )
