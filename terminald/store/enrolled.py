"""The enrolled-cards file: who may pass a terminal with ``access.policy = "enrolled"``.

A TOML file the operator (later the back office) writes::

    [[card]]
    serial = 4660               # the certificate's serial number (decimal), as
                                # `terminald auth` and `terminald cert show` print it
    issuer = "4b3e...a1"        # optional: the issuing root's key id (hex)
    label = "reception desk"    # optional: shown in the log with each decision

Loading is all or nothing: one bad entry rejects the file with every problem named,
so a half-read list can never admit or refuse the wrong person. The daemon keeps the
list it had when a reload fails.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from terminald.core.access import EnrolledCard, EnrolledCards

MAX_LABEL = 64
_KEYS = ("serial", "issuer", "label")


class EnrolledFileError(Exception):
    def __init__(self, path: Path, problems: list[str]) -> None:
        super().__init__(f"{path}: " + "; ".join(problems))
        self.path = path
        self.problems = problems


def parse_enrolled(data: dict[str, Any], path: Path) -> EnrolledCards:
    problems: list[str] = []
    unknown = [k for k in data if k != "card"]
    if unknown:
        problems.append(f"unknown key(s) {', '.join(unknown)} (only [[card]] entries)")
    entries = data.get("card", [])
    if not isinstance(entries, list):
        raise EnrolledFileError(path, ["card: must be an array of tables ([[card]])"])
    cards: list[EnrolledCard] = []
    for index, entry in enumerate(entries):
        where = f"card[{index}]"
        if not isinstance(entry, dict):
            problems.append(f"{where}: must be a table")
            continue
        extra = [k for k in entry if k not in _KEYS]
        if extra:
            problems.append(f"{where}: unknown key(s) {', '.join(extra)}")
        serial = entry.get("serial")
        if isinstance(serial, str) and serial.isdigit():
            serial = int(serial)  # a string keeps serials beyond TOML's 64-bit integers
        if not isinstance(serial, int) or isinstance(serial, bool) or serial < 0:
            problems.append(f"{where}.serial: must be a non-negative integer, got {serial!r}")
            continue
        issuer: bytes | None = None
        raw_issuer = entry.get("issuer")
        if raw_issuer is not None:
            try:
                if not isinstance(raw_issuer, str):
                    raise ValueError
                issuer = bytes.fromhex(raw_issuer.replace(":", ""))
            except ValueError:
                problems.append(f"{where}.issuer: must be a key id in hex, got {raw_issuer!r}")
                continue
        label = entry.get("label", "")
        if not isinstance(label, str) or len(label) > MAX_LABEL or not label.isprintable():
            problems.append(f"{where}.label: must be printable text of at most {MAX_LABEL}")
            continue
        cards.append(EnrolledCard(serial, issuer, label))
    if problems:
        raise EnrolledFileError(path, problems)
    return EnrolledCards.of(cards)


def load_enrolled(path: Path) -> EnrolledCards:
    try:
        with path.open("rb") as file:
            data = tomllib.load(file)
    except OSError as exc:
        raise EnrolledFileError(path, [f"cannot read: {exc.strerror or exc}"]) from exc
    except tomllib.TOMLDecodeError as exc:
        raise EnrolledFileError(path, [f"not valid TOML: {exc}"]) from exc
    return parse_enrolled(data, path)
