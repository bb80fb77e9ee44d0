"""An ``expect`` step's ``kind`` and ``attrs`` against the Record the daemon made.

``attrs`` entries are ``"key=value"``: ``pin=true|false`` is ``Record.pin_verified``,
``subject=S`` is ``Record.subject``, any other key must be in ``Record.attrs`` with that
value (e.g. ``attendance=clock_in``, ``product=A``). Pure: the player reads the record,
this says what differs.
"""

from __future__ import annotations

from terminald.core.commands import Record


def record_value(record: Record, key: str) -> str | None:
    """What ``record`` has for an ``attrs`` key; None when it has nothing."""
    if key == "pin":
        return "true" if record.pin_verified else "false"
    if key == "subject":
        return record.subject
    return dict(record.attrs).get(key)


def record_mismatches(record: Record, kind: str | None, attrs: tuple[str, ...]) -> list[str]:
    """What ``record`` has other than expected, e.g. ``kind granted, expected attendance``
    or ``pin=false, expected pin=true``; empty when it is all as expected."""
    found = []
    if kind is not None and record.kind != kind:
        found.append(f"kind {record.kind}, expected {kind}")
    for item in attrs:
        key, _, wanted = item.partition("=")
        have = record_value(record, key)
        if have != wanted:
            shown = f"no {key}" if have is None else f"{key}={have}"
            found.append(f"{shown}, expected {item}")
    return found


def record_summary(record: Record) -> str:
    """The policy's part of a record, e.g. ``subject E1001; pin=true attendance=clock_in``."""
    pairs = [f"pin={'true' if record.pin_verified else 'false'}"]
    pairs += [f"{key}={value}" for key, value in record.attrs]
    subject = record.subject if record.subject is not None else "none"
    return f"subject {subject}; " + " ".join(pairs)
