"""``terminald attendance export``: the attendance records of the audit log, for payroll."""

from __future__ import annotations

import argparse
from pathlib import Path

from terminald.cli.common import CliError, Groups, Subparsers
from terminald.config import DEFAULT_CONFIG_PATH


def register(commands: Subparsers, groups: Groups) -> None:
    export = groups["attendance"].add_parser(
        "export",
        help="write the clock-in/out records as CSV or JSON lines",
        description="The attendance records of the audit log, oldest first, with the fixed "
        "columns time (UTC, ISO 8601), terminal, subject, event (clock_in, clock_out, "
        "break_out, break_in), issuer, serial, clock_trusted (false: the terminal's clock "
        "was not trusted when it was recorded, so the time may be wrong). Read-only: safe "
        "while the daemon runs. Exit status: 0 written, 2 no log, a bad option or an "
        "unwritable output.",
    )
    export.add_argument(
        "--config",
        type=Path,
        default=None,
        metavar="FILE",
        help=f"read [state] dir from this configuration (default {DEFAULT_CONFIG_PATH})",
    )
    export.add_argument(
        "--file", "--db", dest="db", type=Path, metavar="FILE", help="the audit.sqlite file itself"
    )
    export.add_argument("--format", choices=("csv", "jsonl"), required=True)
    export.add_argument(
        "--since", metavar="TIME", help="from this time on (ISO 8601; without an offset: UTC)"
    )
    export.add_argument("-o", "--output", type=Path, metavar="FILE", help="default: stdout")
    export.set_defaults(func=run_export)


def run_export(args: argparse.Namespace) -> int:
    from terminald.cli.audit_cmd import log_path, since_option
    from terminald.store.audit_export import ATTENDANCE_COLUMNS, attendance_row, output, write_rows
    from terminald.store.audit_reader import AuditReader
    from terminald.store.audit_rows import AuditError

    _, since = since_option(args.since, seq_allowed=False)
    path = log_path(args.db, args.config)
    try:
        reader = AuditReader(path)
        try:
            records = reader.records(since=since, kind="attendance")
            with output(args.output) as out:
                rows = (attendance_row(r) for r in records)
                write_rows(rows, ATTENDANCE_COLUMNS, args.format, out)
        finally:
            reader.close()
    except AuditError as exc:
        raise CliError(str(exc)) from exc
    except OSError as exc:
        raise CliError(f"cannot write {args.output}: {exc.strerror or exc}") from exc
    return 0
