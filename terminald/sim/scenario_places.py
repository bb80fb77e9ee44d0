"""The placeholders of a scenario file (docs/scenarios.md) and what they stand for in a run.

``{pki}``, ``{work}``, ``{state}``, ``{config}``, and per test-PKI card ``{serial:NAME}``,
``{issuer:NAME}`` (hex key id) and ``{pin:NAME}``; ``{{`` and ``}}`` are literal braces.
In a file with ``link = true`` also ``{link}`` (the back office's end of the line) and
``{hostkeys}`` (the back office's key directory).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from terminald.sim.testpki import TestPkiManifest

PLAIN = ("pki", "work", "state", "config")
LINK = ("link", "hostkeys")  # only in a file with ``link = true``
PER_CARD = ("serial", "issuer", "pin")
_BRACES = re.compile(r"\{\{|\}\}|\{[^{}]*\}|[{}]")


def placeholders(text: str) -> Iterator[str]:
    """The placeholders in ``text`` (``{{`` and ``}}`` are literal braces)."""
    for match in _BRACES.finditer(text):
        token = match.group()
        if token not in ("{{", "}}"):
            yield token


def placeholder_problems(text: str, *, link: bool = False) -> list[str]:
    """What is wrong with the placeholders in ``text``; ``link``: the file says ``link = true``."""
    problems = []
    for token in placeholders(text):
        if token in ("{", "}"):
            problems.append(f"a lone {token!r} in {text!r} (write {token * 2} for a brace)")
            continue
        inner = token[1:-1]
        kind, _, name = inner.partition(":")
        if inner in PLAIN or (kind in PER_CARD and name):
            continue
        if inner in LINK:
            if not link:
                problems.append(f"{token} needs `link = true` at the top of the file")
            continue
        known = ", ".join(
            [
                *(f"{{{p}}}" for p in PLAIN),
                *(f"{{{k}:NAME}}" for k in PER_CARD),
                *(f"{{{p}}} (with link = true)" for p in LINK),
            ]
        )
        problems.append(f"unknown placeholder {token} (known: {known})")
    return problems


def card_value(serial: int | None, issuer: str | None, pin: str | None, kind: str) -> str | None:
    value = {"serial": serial, "issuer": issuer, "pin": pin}[kind]
    return None if value is None else str(value)


@dataclass(frozen=True)
class Places:
    """What the placeholders stand for in one run."""

    pki: Path
    work: Path
    state: Path
    config: Path
    manifest: TestPkiManifest
    # With ``link = true``: the back office's end of the line and its key directory.
    link: Path | None = None
    hostkeys: Path | None = None

    def expand(self, text: str) -> str:
        def one(match: re.Match[str]) -> str:
            token = match.group()
            if token in ("{{", "}}"):
                return token[0]
            inner = token[1:-1]
            if inner in PLAIN:
                return str(getattr(self, inner))
            if inner in LINK:
                where = getattr(self, inner)
                if where is None:
                    raise ValueError(f"{token}: this run has no link (`link = true`)")
                return str(where)
            kind, _, name = inner.partition(":")
            card = self.manifest.card(name)
            value = card_value(card.serial, card.issuer_key_id, card.pin, kind)
            if value is None:
                raise ValueError(f"{token}: {name} has no {kind}")
            return value

        return _BRACES.sub(one, text)

    def expand_value(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.expand(value)
        if isinstance(value, list | tuple):
            return [self.expand_value(v) for v in value]
        if isinstance(value, dict):
            return {k: self.expand_value(v) for k, v in value.items()}
        return value
