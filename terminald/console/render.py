"""Operator views as console lines: short, plain ASCII, never wider than the screen.

A serial line reports its size as 0x0 (serial-link.md §5), so the width is 80 unless the
driver learnt another; every line is cut to ``width - 1`` so no terminal auto-wraps.
Nothing here ever shows a PIN or a key: the views carry neither.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

from terminald.daemon.operator import (
    ConfigView,
    EnrolmentView,
    ReadersView,
    RevocationView,
    StatusView,
    TimeView,
)
from terminald.store.audit import AuditEntry

WIDTH: Final = 80
ROWS: Final = 24


def fit(line: str, width: int = WIDTH) -> str:
    """One line, printable ASCII, at most ``width - 1`` columns ("~" marks a cut)."""
    text = "".join(c if " " <= c <= "~" else "?" for c in line)
    limit = max(width - 1, 10)
    return text if len(text) <= limit else text[: limit - 1] + "~"


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%SZ") if moment is not None else "-"


def _or(value: object, default: str = "none") -> str:
    return default if value is None or value == "" else str(value)


def status_lines(v: StatusView) -> list[str]:
    return [
        f"terminal   {v.terminal_id}",
        f"state      {v.state}",
        f"mode       {v.mode}",
        f"card       {'present' if v.card_present else 'none'}",
        f"relay      {'energised' if v.relay_energised else 'off'}",
        f"door       {v.door.replace('_', ' ')}",
        f"alarms     {', '.join(v.alarms) or 'none'}",
        f"reader     {_or(v.reader_problem, 'ok')}",
        f"clock      {_or(v.clock_problem, 'trusted')}",
        f"health     {_or(v.health, 'ok')}",
    ]


def readers_lines(v: ReadersView) -> list[str]:
    lines = [f"configured {_or(v.configured, '(every reader)')}"]
    if v.list_problem:
        lines.append(f"readers    cannot list: {v.list_problem}")
    else:
        lines += [f"reader     {name}" for name in v.present] or ["readers    none seen"]
    lines += [
        f"active     {_or(v.reader_problem, 'ok')}; card {'present' if v.card_present else 'none'}",
        f"taps       {v.taps} decided since start, {v.apdus} APDUs",
        f"last       {_or(v.last_verdict)} at {_when(v.last_at)}, {v.last_apdus} APDUs",
        "ATR        not kept by the card path",
    ]
    return lines


def revocation_lines(v: RevocationView) -> list[str]:
    if not v.configured:
        return ["revocation not configured (no [revocation] store)"]
    if not v.available:
        return [f"revocation UNAVAILABLE: {v.problem}"]
    return [
        f"version    {v.version}",
        f"issued     {_when(v.issued_at)}",
        f"valid to   {_when(v.valid_until)}",
        f"freshness  {_or(v.freshness)}{': ' + v.problem if v.problem else ''}",
        f"revoked    {v.revoked} certificates",
    ]


def enrolment_lines(v: EnrolmentView) -> list[str]:
    lines = [f"policy     {v.policy}"]
    if v.policy == "enrolment":
        lines.append(f"database   {v.file}")
        if v.version is None:
            if v.problem:  # the store could not be read: say why (enrolment_unavailable)
                return [*lines, f"set        unreadable: every card is refused ({v.problem})"]
            return [*lines, "set        none installed: every card is refused"]
        return [
            *lines,
            f"set        version {v.version}, valid until {_when(v.valid_until)}",
            f"enrolled   {v.people} people, {v.cards} certificates",
        ]
    if v.cards is not None:
        lines += [f"file       {v.file}", f"enrolled   {v.cards} certificates"]
    return lines


def config_lines(v: ConfigView) -> list[str]:
    changed = {None: "unknown", True: "yes (reload: systemctl reload terminald)", False: "no"}
    return [
        f"file       {_or(v.path, '-')}",
        f"sha256     {_or(v.sha256, '-')[:32]}{'...' if v.sha256 else ''}",
        f"loaded     {_when(v.loaded_at)}",
        f"changed    {changed[v.changed_since]}" + (f" ({v.problem})" if v.problem else ""),
    ]


def time_lines(v: TimeView) -> list[str]:
    return [
        f"system     {_when(v.system)}",
        f"trusted    {_when(v.trusted)} ({v.trusted_source})",
        f"clock      {_or(v.clock_problem, 'trusted')}",
    ]


def event_lines(rows: list[AuditEntry]) -> list[str]:
    if not rows:
        return ["no events"]
    lines = []
    for row in rows:
        what = " ".join(p for p in (row.reason or "", row.label or "", row.detail) if p)
        lines.append(f"{row.at.strftime('%m-%d %H:%M:%S')} {row.kind:<20} {what}")
    return lines
