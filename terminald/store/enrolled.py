"""The enrolled-cards file: who may pass a terminal with ``access.policy = "enrolled"``.

A TOML file the operator (later the back office) writes::

    [[card]]
    issuer = "1ac100f5...308a"  # the issuing root's key id (hex), as `terminald auth`
                                # and `terminald cert show` print it
    serial = 4660               # the certificate's serial number (decimal), likewise
    label = "reception desk"    # optional: shown in the log with each decision

A certificate is (issuer key id, serial): serials are unique per issuer only and the
J-LIS root generations share one DN, so an entry without its issuer could admit another
person's card with the same serial. ``issuer`` is therefore required, and the same pair
twice is an error; the same serial under two issuers is two people.

Loading is all or nothing: one bad entry rejects the file with every problem named,
so a half-read list can never admit or refuse the wrong person. The daemon keeps the
list it had when a reload fails.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

from terminald.core.access import EnrolledCard, EnrolledCards
from terminald.files import MAX_ENROLLED_SIZE, read_limited

MAX_LABEL = 64
MAX_SERIAL_DIGITS = 49  # 2**160, RFC 5280's 20-byte serials, has 49 decimal digits
MAX_KEY_ID = 64  # bytes; J-LIS roots' key ids are 20 (SHA-1, RFC 5280 method 1)
_KEYS = ("serial", "issuer", "label")
ISSUER_HINT = (
    'the issuing root\'s key id in hex, e.g. issuer = "1ac100f5..."; `terminald auth` '
    'prints it for the card on the reader ("issuer ...") and `terminald cert show FILE` '
    'for a certificate file ("enrol as: issuer = ...")'
)


class EnrolledFileError(Exception):
    def __init__(self, path: Path, problems: list[str]) -> None:
        super().__init__(f"{path}: " + "; ".join(problems))
        self.path = path
        self.problems = problems


def parse_issuer(raw: object) -> bytes:
    """A key id in hex (``aa:bb`` and ``AABB`` alike); raises ValueError saying what is wrong."""
    if not isinstance(raw, str):
        raise ValueError(f"must be a key id in hex, got {raw!r}")
    text = raw.strip().replace(":", "")
    if not text:
        raise ValueError("is empty")
    try:
        key_id = bytes.fromhex(text)
    except ValueError:
        raise ValueError(f"must be a key id in hex, got {raw!r}") from None
    if len(key_id) > MAX_KEY_ID:
        raise ValueError(f"is {len(key_id)} bytes; a key id has at most {MAX_KEY_ID}")
    return key_id


def _keys(names: list[str]) -> str:
    # Quoted when not plain: a key with a newline must not break the one-line message.
    return ", ".join(n if n.isidentifier() else json.dumps(n) for n in names)


def _where(index: int, entry: dict[str, Any], key: str = "") -> str:
    """``card[3].issuer (serial 4660, label 'desk')``: the entry as the operator finds it."""
    known = []
    serial = entry.get("serial")
    if isinstance(serial, int):
        known.append(f"serial {serial}")
    elif isinstance(serial, str):
        shown = serial[:40]
        known.append(f"serial {shown}" if shown.isprintable() else f"serial {shown!r}")
    if isinstance(entry.get("label"), str):
        known.append(f"label {entry['label'][:40]!r}")
    return f"card[{index}]{'.' + key if key else ''}" + (f" ({', '.join(known)})" if known else "")


def parse_enrolled(data: dict[str, Any], path: Path) -> EnrolledCards:
    problems: list[str] = []
    unknown = [k for k in data if k != "card"]
    if unknown:
        problems.append(f"unknown key(s) {_keys(unknown)} (only [[card]] entries)")
    entries = data.get("card", [])
    if not isinstance(entries, list):
        raise EnrolledFileError(path, ["card: must be an array of tables ([[card]])"])
    cards: list[EnrolledCard] = []
    seen: dict[tuple[bytes, int], str] = {}
    hint_needed = False
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            problems.append(f"card[{index}]: must be a table")
            continue
        extra = [k for k in entry if k not in _KEYS]
        if extra:
            problems.append(f"{_where(index, entry)}: unknown key(s) {_keys(extra)}")
        serial = entry.get("serial")
        shown = repr(serial)[:60]
        too_big = False
        if isinstance(serial, str) and serial.isascii() and serial.isdigit():
            # A string keeps serials beyond TOML's 64-bit integers; ASCII digits only
            # (int() would take "١٢" too), and never more than a 20-byte serial's.
            too_big = len(serial) > MAX_SERIAL_DIGITS or int(serial) >= 2**160
            serial = None if too_big else int(serial)
        if not isinstance(serial, int) or isinstance(serial, bool) or serial < 0:
            limit = " below 2**160 (RFC 5280: at most 20 bytes)" if too_big else ""
            problems.append(
                f"{_where(index, entry, 'serial')}: must be a non-negative integer{limit}, "
                f"got {shown}"
            )
            continue
        if "issuer" not in entry:
            problems.append(f"{_where(index, entry, 'issuer')}: missing; every entry needs it")
            hint_needed = True
            continue
        try:
            issuer = parse_issuer(entry["issuer"])
        except ValueError as exc:
            problems.append(f"{_where(index, entry, 'issuer')}: {exc}")
            hint_needed = True
            continue
        label = entry.get("label", "")
        if not isinstance(label, str) or len(label) > MAX_LABEL or not label.isprintable():
            problems.append(
                f"{_where(index, entry, 'label')}: must be printable text of at most {MAX_LABEL}"
            )
            continue
        card = EnrolledCard(serial, issuer, label)
        if card.key in seen:
            problems.append(
                f"{_where(index, entry)}: the same certificate (issuer {issuer.hex()}, "
                f"serial {serial}) as {seen[card.key]}"
            )
            continue
        seen[card.key] = _where(index, entry)
        cards.append(card)
    if hint_needed:
        problems.append(f"issuer: {ISSUER_HINT}")
    if problems:
        raise EnrolledFileError(path, problems)
    return EnrolledCards(cards)


def load_enrolled(path: Path) -> EnrolledCards:
    try:
        data = tomllib.loads(read_limited(path, MAX_ENROLLED_SIZE).decode())
    except OSError as exc:
        raise EnrolledFileError(path, [f"cannot read: {exc.strerror or exc}"]) from exc
    except UnicodeDecodeError as exc:
        raise EnrolledFileError(path, [f"not UTF-8 text (byte {exc.start})"]) from exc
    except tomllib.TOMLDecodeError as exc:
        raise EnrolledFileError(path, [f"not valid TOML: {exc}"]) from exc
    return parse_enrolled(data, path)
