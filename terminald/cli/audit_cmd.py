"""``terminald audit``: the newest records of the terminal's audit log; ``audit verify``
(the hash chain and the evidence) and ``audit export`` (CSV or JSON lines)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from terminald.cli.common import CliError, Groups, Subparsers
from terminald.config import DEFAULT_CONFIG_PATH

if TYPE_CHECKING:
    from datetime import datetime

    from terminald.store.audit import AuditEntry


def register(commands: Subparsers, groups: Groups) -> None:
    audit = commands.add_parser(
        "audit",
        help="show the audit trail (every decision, exit, alarm and mode change)",
        description="Print the newest rows of the audit trail, oldest first: time (UTC), "
        "kind, reason code, the certificate's issuer key id and serial (a certificate is that "
        "pair), label, detail. Safe while the daemon runs: it only reads, and never creates, "
        "renames or writes the trail (a read-only copy is fine). "
        "Exit status: 0 shown, 2 no trail, no configuration, or an unknown --kind.",
    )
    where = audit.add_mutually_exclusive_group()
    where.add_argument(
        "--config",
        type=Path,
        default=DEFAULT_CONFIG_PATH,
        metavar="FILE",
        help=f"read [state] dir from this configuration (default {DEFAULT_CONFIG_PATH})",
    )
    where.add_argument("--db", type=Path, metavar="FILE", help="the audit.sqlite file itself")
    audit.add_argument("--limit", type=int, default=50, metavar="N", help="rows (default 50)")
    audit.add_argument(
        "--kind",
        metavar="KIND",
        help="only this kind: granted, refused, rex, door_opened, door_closed, alarm, mode, "
        "revocation, attendance, vend_complete, vend_timeout, enrolment, console_login, "
        "console_login_failed, console_lockout, console_logout, console_command or gap "
        "(records lost or evicted unacknowledged)",
    )
    audit.add_argument("--json", action="store_true", help="one JSON object per line")
    audit.add_argument(
        "--verify",
        action="store_true",
        help="check each grant's evidence: the card's signature over the challenge, with the "
        "key of its certificate (adds 'evidence valid' / 'evidence INVALID' / 'no evidence')",
    )
    audit.set_defaults(func=run)
    below = audit.add_subparsers(dest="audit_command", metavar="SUBCOMMAND", required=False)
    _register_verify(below)
    _register_export(below)


def _where(parser: argparse.ArgumentParser, *, trust: bool) -> None:
    parser.add_argument(
        "--config",
        type=Path,
        default=None,
        metavar="FILE",
        help=f"read [state] dir{' and [trust]' if trust else ''} from this configuration "
        f"(default {DEFAULT_CONFIG_PATH} when --file is not given)",
    )
    parser.add_argument(
        "--file", "--db", dest="db", type=Path, metavar="FILE", help="the audit.sqlite file itself"
    )


def _register_verify(below: Subparsers) -> None:
    verify = below.add_parser(
        "verify",
        help="check the hash chain and every grant's evidence",
        description="Check the audit log, read-only: the hash chain from the anchor (the last "
        "evicted record), the seqs one after the other, every record's hash recomputed, and "
        "each grant's evidence (the certificate's key verifies the signature over the "
        "challenge; with a configuration, the certificate chains to a trusted root). It "
        "cannot see records cut from the end, nor a whole file replaced (the back office "
        "compares the head hash with the last it pulled). Exit status: 0 clean, 1 problems "
        "(each named with its seq), 2 no log, unreadable, or no configuration.",
    )
    _where(verify, trust=True)
    verify.add_argument("--json", action="store_true", help="the report as one JSON object")
    verify.set_defaults(func=run_verify)


def _register_export(below: Subparsers) -> None:
    export = below.add_parser(
        "export",
        help="write the audit log as CSV or JSON lines",
        description="Every record (or those chosen) with all its fields, oldest first: "
        "seq, time (UTC), terminal, location, kind, reason, clock_trusted, issuer, serial, "
        "subject, label, detail, attrs, pin_verified, certificate_sha256, hash; with "
        "--evidence also challenge, signature and certificate as hex. Exit status: 0 "
        "written, 2 no log, a bad option or an unwritable output.",
    )
    _where(export, trust=False)
    export.add_argument("--format", choices=("csv", "jsonl"), required=True)
    export.add_argument(
        "--since",
        metavar="SEQ|TIME",
        help="from this seq (a number) or this time on (ISO 8601; without an offset: UTC)",
    )
    export.add_argument("--kind", metavar="KIND", help="only records of this kind")
    export.add_argument("--evidence", action="store_true", help="add the evidence as hex")
    export.add_argument("-o", "--output", type=Path, metavar="FILE", help="default: stdout")
    export.set_defaults(func=run_export)


def _pair(entry: AuditEntry) -> str:
    """``issuer 1ac1… serial 77``: the serial alone names no one; ``-`` without a card."""
    if entry.serial is None:
        return "-"
    issuer = entry.issuer_key_id.hex() if entry.issuer_key_id is not None else "unknown"
    return f"issuer {issuer} serial {entry.serial}"


def log_path(db: Path | None, config: Path | None) -> Path:
    """The audit log: ``db`` itself, or the one in the configuration's state directory
    (the default configuration when neither is given). CliError (exit 2) if absent."""
    from terminald.config import ConfigError, load_config
    from terminald.store.audit import AUDIT_NAME

    path = db
    if path is None:
        source = config or DEFAULT_CONFIG_PATH
        try:
            path = load_config(source).state.dir / AUDIT_NAME
        except ConfigError as exc:
            raise CliError(f"{source}: " + "; ".join(exc.messages)) from exc
    try:
        found = path.is_file()
    except OSError as exc:  # e.g. a state directory this user may not enter
        raise CliError(f"cannot read {path}: {exc.strerror}") from exc
    if not found:
        raise CliError(f"no audit trail at {path} (the daemon creates it when it starts)")
    return path


def run(args: argparse.Namespace) -> int:
    import json

    from terminald.store.audit import KINDS, AuditError, AuditReader

    if args.limit < 1:
        raise CliError("--limit must be at least 1")
    path = log_path(args.db, args.config)
    try:
        log = AuditReader(path)
        try:
            # A kind this file holds is valid too (a newer daemon may write new kinds).
            valid = set(KINDS) | log.kinds()
            if args.kind is not None and args.kind not in valid:
                raise CliError(
                    f"--kind {args.kind}: unknown kind; valid kinds: "
                    + ", ".join(list(KINDS) + sorted(valid - set(KINDS)))
                )
            entries = log.recent(args.limit, args.kind)
        finally:
            log.close()
    except AuditError as exc:
        raise CliError(str(exc)) from exc
    from terminald.pki.challenge import evidence_valid

    def evidence(entry: AuditEntry) -> str:
        if entry.evidence is None:
            return "no evidence"
        message, signature, certificate = entry.evidence
        valid = evidence_valid(certificate, message, signature)
        return "evidence valid" if valid else "evidence INVALID"

    for entry in entries:
        verdict = evidence(entry) if args.verify and entry.kind == "granted" else None
        if args.json:
            shown = entry.as_dict()
            if verdict is not None:
                shown["evidence_valid"] = verdict == "evidence valid"
            print(json.dumps(shown, ensure_ascii=False))
            continue
        fields = [
            entry.at.strftime("%Y-%m-%d %H:%M:%S"),
            entry.kind,
            entry.reason or "-",
            _pair(entry),
            entry.label or "-",
            entry.detail,
        ]
        if verdict is not None:
            fields.append(f"[{verdict}]")
        print("  ".join(fields))
    return 0


def run_verify(args: argparse.Namespace) -> int:
    import json

    from terminald.store.audit_rows import AuditError
    from terminald.store.audit_verify import verify

    path = log_path(args.db, args.config)
    trust = None
    if args.config is not None or args.db is None:
        from terminald.config import ConfigError, load_config
        from terminald.config_files import trust_store

        source = args.config or DEFAULT_CONFIG_PATH
        try:
            trust = trust_store(load_config(source))
        except ConfigError as exc:
            raise CliError(f"{source}: " + "; ".join(exc.messages)) from exc
    try:
        report = verify(path, trust)
    except AuditError as exc:
        raise CliError(str(exc)) from exc
    if args.json:
        print(json.dumps(report.as_dict(), ensure_ascii=False))
        return 0 if report.ok else 1
    print(
        f"{path}: {report.records} records (seq {report.anchor[0] + 1} to {report.head[0]}), "
        f"{report.evidence_checked} with evidence"
        + ("" if report.chains_checked else " (certificates not checked against roots)")
    )
    print(f"head: seq {report.head[0]} hash {report.head[1].hex()}")
    for problem in report.problems:
        print(f"PROBLEM {problem}")
    if report.more_problems:
        print(f"PROBLEM and {report.more_problems} more")
    print("verified: clean" if report.ok else f"verified: {len(report.problems)} problems")
    return 0 if report.ok else 1


def since_option(text: str | None, *, seq_allowed: bool) -> tuple[int | None, datetime | None]:
    """``--since``: a seq (digits) or an ISO 8601 time (a date or a time without offset:
    UTC). CliError naming the value otherwise."""
    from datetime import UTC, datetime

    if text is None:
        return None, None
    if seq_allowed and text.isdigit():
        return int(text), None
    try:
        at = datetime.fromisoformat(text)
    except ValueError as exc:
        wanted = "a seq or an ISO 8601 time" if seq_allowed else "an ISO 8601 time"
        raise CliError(f"--since {text!r}: not {wanted} (e.g. 2026-11-30T09:00+09:00)") from exc
    return None, at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def run_export(args: argparse.Namespace) -> int:
    from terminald.store.audit_export import (
        AUDIT_COLUMNS,
        EVIDENCE_COLUMNS,
        audit_row,
        output,
        write_rows,
    )
    from terminald.store.audit_reader import AuditReader
    from terminald.store.audit_rows import AuditError

    since_seq, since = since_option(args.since, seq_allowed=True)
    path = log_path(args.db, args.config)
    columns = AUDIT_COLUMNS + (EVIDENCE_COLUMNS if args.evidence else ())
    try:
        reader = AuditReader(path)
        try:
            records = reader.records(since_seq=since_seq, since=since, kind=args.kind)
            with output(args.output) as out:
                write_rows((audit_row(r, evidence=args.evidence) for r in records), columns,
                           args.format, out)  # fmt: skip
        finally:
            reader.close()
    except AuditError as exc:
        raise CliError(str(exc)) from exc
    except OSError as exc:
        raise CliError(f"cannot write {args.output}: {exc.strerror or exc}") from exc
    return 0
