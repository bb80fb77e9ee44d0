"""``terminald host --port DEV --keys DIR [--address A] [--json] COMMAND``: the back office's
side of the serial link (docs/protocol.md), built on terminald.backoffice.

Exit status: 0 done; 1 the terminal refused or did not answer; 2 a usage or key-directory
problem.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from terminald.cli.common import CliError, Groups, Subparsers, print_json, read_input

MAX_FILE = 256 * 1024 * 1024  # a revocation snapshot of 100 M serials is ~4 MB; room to spare
MAX_TEXT = 1024 * 1024  # a configuration file


def register(commands: Subparsers, groups: Groups) -> None:
    host = commands.choices["host"]
    host.add_argument("--port", type=Path, metavar="DEV", help="the serial line, e.g. /dev/ttyUSB0")
    host.add_argument(
        "--keys",
        type=Path,
        metavar="DIR",
        dest="host_dir",
        help="the back office's key directory (terminald host keys init)",
    )
    host.add_argument(
        "--address",
        type=address_arg,
        default=1,
        metavar="A",
        help="the terminal's address on the line (default 1)",
    )
    host.add_argument("--baud", type=int, default=115200, help="bits per second (default 115200)")
    host.add_argument(
        "--rs485", action="store_true", help="half-duplex RS-485: one terminal talks at a time"
    )
    host.add_argument(
        "--no-rts",
        action="store_true",
        help="with --rs485: the transceiver switches direction by itself (no kernel RTS control)",
    )
    host.add_argument(
        "--timeout",
        type=float,
        default=10.0,
        metavar="S",
        help="seconds to wait for the terminal's handshake or answer (default 10)",
    )
    host.add_argument("--json", action="store_true", help="one JSON object on stdout")
    sub = groups["host"]

    def command(name: str, help_text: str, run: Callable[[argparse.Namespace], int]) -> Any:
        parser = sub.add_parser(name, help=help_text, description=help_text)
        parser.set_defaults(func=run)
        return parser

    command("status", "the terminal's mode, door, reader, alarms, clocks, revocation", _status)
    command("hello", "who the terminal is and the versions it holds", _hello)
    time_parser = command(
        "time", "send this machine's time, signed (sets the terminal's clock)", _time
    )
    time_parser.add_argument(
        "--force",
        action="store_true",
        help="allow setting the terminal's clock back more than 5 minutes",
    )
    for kind in ("revocation", "enrolment", "config"):
        what = {
            "revocation": "a signed revocation bundle (terminald revocation build)",
            "enrolment": "a signed enrolment set (terminald enrolment build)",
            "config": "a configuration file (terminald.toml), signed here",
        }[kind]
        parser = command(f"push-{kind}", f"send {what}", _push)
        parser.add_argument("file", type=Path, metavar="FILE")
        parser.set_defaults(kind=kind)
        if kind == "config":
            parser.add_argument(
                "--version",
                type=int,
                default=None,
                dest="object_version",
                help="the object's version (default: now, in Unix seconds)",
            )
    pull = command("pull-audit", "fetch audit rows after a cursor and acknowledge them", _pull)
    pull.add_argument(
        "--since",
        type=int,
        default=0,
        metavar="CURSOR",
        help="the last sequence number already held (default 0: all)",
    )
    pull.add_argument(
        "--no-ack", action="store_true", help="do not acknowledge (the terminal keeps the rows)"
    )
    mode = command("mode", "set the terminal's mode", _mode)
    mode.add_argument("mode", choices=("normal", "lockdown", "emergency_open"))
    test = command("test", "pulse the relay, cycle the LEDs or sound the buzzer", _test)
    test.add_argument("output", choices=("relay", "leds", "buzzer"))
    command("restart", "restart the terminal's daemon", _restart)


def address_arg(text: str) -> int:
    """An RS-485 terminal address, 1-126 (decimal or 0x..), for argparse."""
    try:
        value = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 1 <= value <= 0x7E:
        raise argparse.ArgumentTypeError("an address is 1-126")
    return value


@contextmanager
def _link(args: argparse.Namespace) -> Iterator[Any]:
    from terminald.backoffice.host_link import HostLink
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
    if args.address not in keys.terminals:
        raise CliError(
            f"terminal {args.address} is not in {args.host_dir}/terminals.toml "
            f"(terminald host keys add --keys {args.host_dir} --address {args.address} KEY)"
        )
    if not 0.5 <= args.timeout <= 600:
        raise CliError("--timeout: 0.5 to 600 seconds")
    with HostLink(
        args.port, keys, baud=args.baud, rs485=args.rs485, rts=not args.no_rts, timeout=args.timeout
    ) as link:
        yield link


def _run(args: argparse.Namespace, work: Callable[[Any], int]) -> int:
    from terminald.backoffice.host_link import HostError

    try:
        with _link(args) as link:
            return work(link)
    except HostError as exc:
        if args.json:
            print_json({"ok": False, "error": str(exc)})
        raise CliError(str(exc), exit_code=1) from None


def _show(args: argparse.Namespace, data: dict[str, Any], lines: list[str]) -> None:
    if args.json:
        print_json(data)
    else:
        print("\n".join(lines))


def _fields(message: Any) -> dict[str, Any]:
    from dataclasses import asdict

    data = asdict(message)
    data.pop("id", None)
    return {k: (v.hex() if isinstance(v, bytes) else v) for k, v in data.items()}


def _status(args: argparse.Namespace) -> int:
    from terminald.link import messages as m

    def work(link: Any) -> int:
        link.connect(args.address)
        reply = link.request(args.address, m.Status(id=0), m.StatusReply)
        data = _fields(reply)
        data["link"] = dict(reply.link)
        lines = [f"{k}: {v}" for k, v in data.items() if k != "link"]
        lines.append("link: " + " ".join(f"{k}={v}" for k, v in reply.link))
        _show(args, {"ok": True, **data}, lines)
        return 0

    return _run(args, work)


def _hello(args: argparse.Namespace) -> int:
    def work(link: Any) -> int:
        data = _fields(link.connect(args.address))
        _show(args, {"ok": True, **data}, [f"{k}: {v}" for k, v in data.items()])
        return 0

    return _run(args, work)


def _time(args: argparse.Namespace) -> int:
    from terminald.backoffice.host_ops import send_time

    def work(link: Any) -> int:
        reply = send_time(link, args.address, force=args.force)
        data = _fields(reply)
        _show(
            args,
            {"ok": reply.applied, **data},
            [
                f"time {'applied' if reply.applied else 'refused'}: {reply.reason}",
                f"offset {reply.offset:+.3f} s, system clock "
                + ("set" if reply.clock_set else "not set"),
            ],
        )
        return 0 if reply.applied else 1

    return _run(args, work)


@contextmanager
def _progress(
    args: argparse.Namespace, what: str, size: int
) -> Iterator[Callable[[int, int], None]]:
    """A rich progress bar on stderr (not with --json, nor when stderr is not a terminal)."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    console = Console(stderr=True)
    quiet = args.json or not console.is_terminal
    bar = Progress(
        "{task.description}",
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=quiet,
    )
    with bar:
        task = bar.add_task(what, total=size)
        yield lambda done, total: bar.update(task, completed=done, total=total)


def _push(args: argparse.Namespace) -> int:
    from terminald.backoffice.host_ops import push_enrolment, push_revocation, push_signed

    limit = MAX_TEXT if args.kind == "config" else MAX_FILE
    data = read_input(args.file, f"{args.kind} file", limit)
    if not data:
        raise CliError(f"{args.file}: empty")

    def work(link: Any) -> int:
        started = time.monotonic()
        with _progress(args, f"{args.kind} → terminal {args.address}", len(data)) as progress:
            if args.kind == "revocation":
                outcome = push_revocation(link, args.address, data, progress=progress)
            elif args.kind == "enrolment":
                outcome = push_enrolment(link, args.address, data, progress=progress)
            else:
                outcome = push_signed(
                    link,
                    args.address,
                    args.kind,
                    data,
                    version=args.object_version,
                    progress=progress,
                )
        seconds = time.monotonic() - started
        result = {
            "ok": outcome.installed,
            "kind": args.kind,
            "bytes": len(data),
            "seconds": round(seconds, 3),
            "reason": outcome.reason,
        }
        verdict = "installed" if outcome.installed else f"refused: {outcome.reason}"
        _show(
            args,
            result,
            [f"{args.kind} {args.file.name}: {len(data)} bytes in {seconds:.1f} s, {verdict}"],
        )
        return 0 if outcome.installed else 1

    return _run(args, work)


def _pull(args: argparse.Namespace) -> int:
    from terminald.backoffice.host_ops import pull_audit

    def work(link: Any) -> int:
        pulled = pull_audit(link, args.address, args.since, ack=not args.no_ack)
        rows = [_fields(row) | {"evidence": row.evidence is not None} for row in pulled.rows]
        gaps = [{"first": g.first, "last": g.last} for g in pulled.gaps]
        if args.json:
            print_json(
                {
                    "ok": True,
                    "rows": rows,
                    "cursor": pulled.cursor,
                    "gaps": gaps,
                    "acknowledged": pulled.acknowledged,
                }
            )
            return 0
        for gap in pulled.gaps:
            print(f"gap: rows {gap.first}-{gap.last} are gone from the terminal")
        for row in pulled.rows:
            who = (
                f" {row.issuer.hex()[:8] if row.issuer else '?'}/{row.serial}" if row.serial else ""
            )
            print(f"{row.seq:>8} {row.at} {row.kind} {row.reason or ''}{who} {row.detail}".rstrip())
        ack = "acknowledged" if pulled.acknowledged is not None else "not acknowledged"
        print(f"cursor {pulled.cursor} ({len(pulled.rows)} rows, {ack})", file=sys.stderr)
        return 0

    return _run(args, work)


def _mode(args: argparse.Namespace) -> int:
    from terminald.link import messages as m

    def work(link: Any) -> int:
        link.connect(args.address)
        reply = link.request(args.address, m.SetMode(id=0, mode=args.mode), m.ModeReply)
        _show(args, {"ok": True, "mode": reply.mode}, [f"mode {reply.mode}"])
        return 0

    return _run(args, work)


def _test(args: argparse.Namespace) -> int:
    from terminald.link import messages as m

    def work(link: Any) -> int:
        link.connect(args.address)
        reply = link.request(
            args.address, m.Test(id=0, output=args.output, duration_ms=1000), m.TestResult
        )
        _show(
            args,
            {"ok": reply.done, "output": reply.output, "detail": reply.detail},
            [f"{reply.output}: {reply.detail}"],
        )
        return 0 if reply.done else 1

    return _run(args, work)


def _restart(args: argparse.Namespace) -> int:
    from terminald.link import messages as m

    def work(link: Any) -> int:
        link.connect(args.address)
        reply = link.request(args.address, m.Restart(id=0), m.Ack)
        _show(args, {"ok": True, "detail": reply.detail}, [reply.detail])
        return 0

    return _run(args, work)
