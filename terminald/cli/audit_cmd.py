"""``terminald audit``: the newest rows of the terminal's audit trail."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from terminald.cli.common import CliError, Groups, Subparsers
from terminald.config import DEFAULT_CONFIG_PATH

if TYPE_CHECKING:
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
        "revocation, console_login, console_login_failed, console_lockout, console_logout, "
        "console_command or gap (rows lost or evicted unacknowledged)",
    )
    audit.add_argument("--json", action="store_true", help="one JSON object per line")
    audit.add_argument(
        "--verify",
        action="store_true",
        help="check each grant's evidence: the card's signature over the challenge, with the "
        "key of its certificate (adds 'evidence valid' / 'evidence INVALID' / 'no evidence')",
    )
    audit.set_defaults(func=run)


def _pair(entry: AuditEntry) -> str:
    """``issuer 1ac1… serial 77``: the serial alone names no one; ``-`` without a card."""
    if entry.serial is None:
        return "-"
    issuer = entry.issuer_key_id.hex() if entry.issuer_key_id is not None else "unknown"
    return f"issuer {issuer} serial {entry.serial}"


def run(args: argparse.Namespace) -> int:
    import json

    from terminald.config import ConfigError, load_config
    from terminald.store.audit import AUDIT_NAME, KINDS, AuditError, AuditReader

    if args.limit < 1:
        raise CliError("--limit must be at least 1")
    path: Path = args.db
    if path is None:
        try:
            path = load_config(args.config).state.dir / AUDIT_NAME
        except ConfigError as exc:
            raise CliError(f"{args.config}: " + "; ".join(exc.messages)) from exc
    try:
        found = path.is_file()
    except OSError as exc:  # e.g. a state directory this user may not enter
        raise CliError(f"cannot read {path}: {exc.strerror}") from exc
    if not found:
        raise CliError(f"no audit trail at {path} (the daemon creates it when it starts)")
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
