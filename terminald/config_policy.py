"""The policy sections: ``[gate]``, ``[vending]`` (with ``[[vending.product]]``) and
``[attendance]`` (docs/policy.md, docs/operations.md).

Kept apart from :mod:`terminald.config` so that file stays one screenful per concern.
Values are checked here as far as the file alone allows: a period "HH:MM-HH:MM", a key
A-D used once, a time zone the IANA database knows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import time
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from terminald.config_values import Section, describe

PASSBACK_ROLES: Final = ("off", "entry", "exit")
PASSBACK_UNREACHABLE: Final = ("admit", "refuse")
ATTENDANCE_MODES: Final = ("auto", "keys", "toggle")
SELECTION_KEYS: Final = ("A", "B", "C", "D")
MAX_PRODUCTS: Final = len(SELECTION_KEYS)
MAX_GROUP: Final = 64  # characters in a door group or role name
MAX_AGE: Final = 150
DEFAULT_TIMEZONE: Final = "Asia/Tokyo"
_CLOCK = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])")
_PRODUCT_KEYS: Final = ("key", "name", "age", "pin", "hours")


@dataclass(frozen=True)
class GateSection:
    # The door groups this terminal serves: a person needs one of them. Empty: any
    # enrolled person (their schedule and validity still apply).
    groups: tuple[str, ...] = ()
    # Anti-passback: this terminal is the "entry" or the "exit" of a pair, or "off".
    anti_passback: str = "off"
    passback_partner: str = ""  # the other terminal's [terminal] id
    passback_reset: time = time(3, 0)  # local time: every passage is forgotten daily
    # When nothing was heard of the partner for passback_partner_timeout_s.
    passback_unreachable: str = "admit"
    passback_partner_timeout_s: float = 120.0


@dataclass(frozen=True)
class ProductSection:
    key: str  # A-D on the keypad, pressed before the tap
    name: str
    # The age threshold (20 for alcohol and tobacco); None: the machine's [vending] age
    # (a forgotten age must not sell to minors); 0: no age check for this product.
    age: int | None = None
    pin: bool = True  # false: no PIN asked (docs/policy.md says what that does not prove)
    hours: tuple[str, ...] = ()  # "05:00-23:00"...; empty: at any time


@dataclass(frozen=True)
class VendingSection:
    # The machine's threshold when no products are listed (0: no age check).
    age: int = 20
    products: tuple[ProductSection, ...] = ()
    # How long the vend-enable line (the relay output) is held at most.
    enable_s: float = 30.0
    # The machine's vend-complete signal is wired (pin map [inputs.vend_complete]).
    complete_input: bool = False
    # How long a tap waits for the back office's age answer before refusing.
    age_query_timeout_s: float = 3.0


@dataclass(frozen=True)
class AttendanceSection:
    # "keys": A-D before the tap (clock-in, clock-out, break-out, break-in); "toggle":
    # in and out by turns; "auto": a key when one was pressed, else the toggle.
    mode: str = "auto"
    # Roles whose holders also get the door opened (a role-based door); empty: none.
    door_groups: tuple[str, ...] = ()


def clock_time(text: str) -> time | None:
    """``"HH:MM"`` (00:00-23:59) as a time, or None."""
    match = _CLOCK.fullmatch(text)
    return time(int(match[1]), int(match[2])) if match else None


def check_period(text: str) -> str | None:
    """Why ``"HH:MM-HH:MM"`` is not a period, or None (core/policy/schedule.py reads it:
    an end at or before the start runs past midnight)."""
    # Here, not at the top: relay-safe imports the configuration and must start fast.
    from terminald.core.policy.schedule import parse_period

    try:
        parse_period(text)
    except ValueError:
        return f'must be "HH:MM-HH:MM" (24-hour clock), got {describe(text)}'
    return None


def timezone_of(s: Section, errors: list[str]) -> str:
    name = s.string("timezone", DEFAULT_TIMEZONE)
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # "Asia" is a directory
        errors.append(f'terminal.timezone: unknown time zone {describe(name)} (e.g. "Asia/Tokyo")')
        return DEFAULT_TIMEZONE
    return name


def location_of(s: Section, errors: list[str]) -> str:
    location = s.string("location", "")
    if len(location) > 128 or not location.isprintable():
        errors.append("terminal.location: must be at most 128 printable characters")
    return location


def purpose_problems(purpose: str, access_policy: str, gate: GateSection) -> list[str]:
    """What a purpose cannot do with ``access.policy = "any_card"``: rules about people
    it would silently ignore."""
    if access_policy != "any_card":
        return []
    if purpose == "attendance":
        return [
            'access.policy: an attendance clock records people, so it needs "enrolment" or '
            '"enrolled", not "any_card"'
        ]
    rules = (("groups", gate.groups), ("anti_passback", gate.anti_passback != "off"))
    return [
        f'gate.{key}: needs enrolled people (access.policy "enrolment"), but '
        'access.policy is "any_card": it would be ignored'
        for key, value in rules
        if purpose == "gate" and value
    ]


def _names(s: Section, errors: list[str], key: str) -> tuple[str, ...]:
    value = s.raw(key, [])
    if not isinstance(value, list):
        errors.append(f"{s.name}.{key}: must be an array of names, got {describe(value)}")
        return ()
    names: list[str] = []
    for index, item in enumerate(value):
        if not isinstance(item, str) or not 1 <= len(item) <= MAX_GROUP or not item.isprintable():
            errors.append(
                f"{s.name}.{key}[{index}]: must be a name of 1-{MAX_GROUP} printable "
                f"characters, got {describe(item)}"
            )
        elif item not in names:
            names.append(item)
    return tuple(names)


def gate_section(s: Section, errors: list[str]) -> GateSection:
    groups = _names(s, errors, "groups")
    role = s.string("anti_passback", "off", PASSBACK_ROLES)
    partner = s.string("passback_partner", "")
    reset_text = s.string("passback_reset", "03:00")
    reset = clock_time(reset_text)
    if reset is None:
        errors.append(f'gate.passback_reset: must be "HH:MM", got {describe(reset_text)}')
        reset = time(3, 0)
    unreachable = s.string("passback_unreachable", "admit", PASSBACK_UNREACHABLE)
    timeout = s.number("passback_partner_timeout_s", 120.0, 5, 86_400)
    if role != "off" and not partner:
        errors.append(
            "gate.passback_partner: the partner terminal's id is needed when "
            "gate.anti_passback is on"
        )
    return GateSection(groups, role, partner, reset, unreachable, timeout)


def _product(index: int, table: object, errors: list[str], seen: set[str]) -> ProductSection:
    where = f"vending.product[{index}]"
    if not isinstance(table, dict):
        errors.append(f"{where}: must be a table ([[vending.product]]), got {describe(table)}")
        return ProductSection("", "")
    for name in table:
        if name not in _PRODUCT_KEYS:
            errors.append(f"{where}.{name}: unknown key (known: {', '.join(_PRODUCT_KEYS)})")
    key = table.get("key")
    if key not in SELECTION_KEYS:
        errors.append(f"{where}.key: must be one of A, B, C, D, got {describe(key)}")
    elif key in seen:
        errors.append(f"{where}.key: {key} is already another product's key")
    else:
        seen.add(key)
    name = table.get("name", "")
    if not isinstance(name, str) or not 1 <= len(name) <= MAX_GROUP or not name.isprintable():
        errors.append(f"{where}.name: must be 1-{MAX_GROUP} printable characters")
        name = ""
    age = table.get("age")
    if age is not None and (
        not isinstance(age, int) or isinstance(age, bool) or not 0 <= age <= MAX_AGE
    ):
        errors.append(f"{where}.age: must be an integer 0-{MAX_AGE}, got {describe(age)}")
        age = None
    pin = table.get("pin", True)
    if not isinstance(pin, bool):
        errors.append(f"{where}.pin: must be true or false, got {describe(pin)}")
        pin = True
    hours = table.get("hours", [])
    periods: list[str] = []
    if not isinstance(hours, list):
        errors.append(f'{where}.hours: must be an array of "HH:MM-HH:MM", got {describe(hours)}')
    else:
        for at, item in enumerate(hours):
            problem = check_period(item) if isinstance(item, str) else "must be a string"
            if problem:
                errors.append(f"{where}.hours[{at}]: {problem}")
            else:
                periods.append(item)
    return ProductSection(str(key or ""), name, age, pin, tuple(periods))


def vending_section(s: Section, errors: list[str]) -> VendingSection:
    age = s.integer("age", 20, 0, MAX_AGE)
    value: Any = s.raw("product", [])
    products: list[ProductSection] = []
    if not isinstance(value, list):
        errors.append(f"vending.product: must be [[vending.product]] tables, got {describe(value)}")
    elif len(value) > MAX_PRODUCTS:
        errors.append(f"vending.product: at most {MAX_PRODUCTS} products (keys A-D)")
    else:
        seen: set[str] = set()
        products = [_product(i, table, errors, seen) for i, table in enumerate(value)]
    return VendingSection(
        age,
        tuple(products),
        s.number("enable_s", 30.0, 1, 600),
        s.boolean("complete_input", False),
        s.number("age_query_timeout_s", 3.0, 0.5, 30),
    )


def attendance_section(s: Section, errors: list[str]) -> AttendanceSection:
    return AttendanceSection(
        s.string("mode", "auto", ATTENDANCE_MODES), _names(s, errors, "door_groups")
    )
