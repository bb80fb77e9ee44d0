"""The terminal's configuration: one TOML file, typed and validated when it is loaded.

``load_config(path)`` reads ``/etc/terminald/terminald.toml`` (or the file given),
checks every key and returns a frozen :class:`Config`, or raises :class:`ConfigError`
carrying *every* problem found, each naming its key path::

    relay.open_ms: must be between 100 and 60000, got 0
    card.pin_flor: unknown key (did you mean pin_floor? known: reader, backend, ...)

Unknown sections and keys are errors: a typo must never silently become a default.
Relative paths are resolved against the directory of the configuration file.

``load_config`` checks the file's own content only, so a configuration can be checked
on a machine other than the terminal. ``terminald.config_files`` goes further and opens
what the configuration points at (trust anchors, back-office keys, the state directory);
``terminald check-config`` runs both. The daemon builds its pieces with
:meth:`Config.auth_settings` and ``config_files``' ``trust_store`` and
``revocation_store_config``, and holds ``[relay]`` against the board's pin map with
:func:`relay_wiring_mismatches`.
``docs/operations.md`` documents every key.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from terminald.config_link import (
    ConsoleSection,
    LinkSection,
    console_section,
    link_section,
)
from terminald.config_policy import (
    AttendanceSection,
    GateSection,
    VendingSection,
    attendance_section,
    gate_section,
    location_of,
    purpose_problems,
    timezone_of,
    vending_section,
)
from terminald.config_values import ExtendedReads, Section, describe, show_key, unknown_name

if TYPE_CHECKING:
    from terminald.core.auth import AuthSettings

# The core, PKI and revocation modules are imported where they are used: relay-safe
# (ExecStopPost, the relay possibly still energised) loads this module and must start fast.

DEFAULT_CONFIG_PATH: Final = Path("/etc/terminald/terminald.toml")
DEFAULT_STATE_DIR: Final = Path("/var/lib/terminald")
REVOCATION_STATE_NAME: Final = "revocation.state"

PURPOSES: Final = ("gate", "vend", "attendance")
MODES: Final = ("normal", "lockdown", "emergency_open")
CARD_BACKENDS: Final = ("pcsc",)
# Backends whose devices terminald.service allows (DeviceAllow=char-gpiochip). Factories
# that map /dev/gpiomem (RPi.GPIO, native) or talk TCP to a daemon (pigpio) are left
# out on purpose: the unit gives them neither the device nor the network.
GPIO_BACKENDS: Final = ("mock", "lgpio")
# Pin maps live in hw/boards/<name>.toml; here only the name is checked.
BOARDS: Final = ("rpi4", "rpi5", "rpizero2w")
KEYPADS: Final = ("", "3x4", "4x4")
FAIL_MODES: Final = ("fail_secure", "fail_safe")
LOG_LEVELS: Final = ("debug", "info", "warning", "error")
ACCESS_POLICIES: Final = ("enrolment", "enrolled", "any_card")
ENROLLED_NAME: Final = "enrolled.toml"

TERMINAL_ID_PATTERN: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
MAX_GRACE_HOURS: Final = 168.0  # terminald.revocation.freshness.MAX_GRACE (a test holds it)


class ConfigError(Exception):
    """The configuration cannot be used. ``messages`` holds one line per problem."""

    def __init__(self, messages: list[str]) -> None:
        super().__init__("\n".join(messages))
        self.messages = list(messages)


@dataclass(frozen=True)
class TerminalSection:
    id: str
    purpose: str = "gate"
    mode: str = "normal"
    # Where the terminal stands (recorded with every audit record), and the site's time
    # zone: schedules, holidays, attendance days and age dates are local (IANA name).
    location: str = ""
    timezone: str = "Asia/Tokyo"


@dataclass(frozen=True)
class CardSection:
    # A PC/SC reader name or its prefix ("Virtual PCD" matches "Virtual PCD 00 00");
    # None: every reader pcscd lists is watched, one transaction at a time.
    reader: str | None = None
    backend: str = "pcsc"
    # Refuse before any VERIFY when the card has this many tries left or fewer.
    # 1 keeps a person's last try; 0 lets the terminal spend it (and block the card).
    pin_floor: int = 1
    pin_timeout_s: float = 20.0
    # "auto": from the reader profile (hw/readers); True/False: forced.
    extended_reads: ExtendedReads = "auto"


@dataclass(frozen=True)
class TrustSection:
    # Extra root certificate files or directories (e.g. the 2019 J-LIS root).
    anchors: tuple[Path, ...] = ()
    # Also trust the J-LIS roots shipped with terminald (2015, 2023).
    include_builtin: bool = True


@dataclass(frozen=True)
class RevocationSection:
    state_path: Path
    backoffice_keys: tuple[Path, ...] = ()
    grace_hours: float = 0.0
    required: bool = True


@dataclass(frozen=True)
class GpioSection:
    board: str
    backend: str = "lgpio"
    # The keypad fitted: "3x4" (digits, * and #) or "4x4" (A-D too: the product and
    # attendance keys); empty: as the board's pin map says.
    keypad: str = ""


@dataclass(frozen=True)
class RelaySection:
    open_ms: int = 3000
    # The relay's polarity and the lock's wiring belong to the board's pin map
    # (hw/boards/<board>.toml: relay.active_high, relay.lock). Here they are optional
    # assertions of what was installed: None = no assertion; a value that disagrees
    # with the pin map stops the terminal (see relay_wiring_mismatches).
    active_high: bool | None = None
    fail_mode: str | None = None


@dataclass(frozen=True)
class DoorSection:
    held_open_s: float = 30.0
    contact: bool = False
    rex: bool = False
    tamper: bool = False
    # While the tamper alarm is up (enclosure open), refuse every card: someone may be
    # at the wiring. REX still opens.
    tamper_blocks_grants: bool = True


@dataclass(frozen=True)
class AccessSection:
    # "enrolment": the signed enrolment set in <state>/enrolment.sqlite (docs/enrolment.md);
    # "enrolled": only cards listed in the ``enrolled`` TOML file (no groups or schedules);
    # "any_card": any genuine, unrevoked card with its PIN (e.g. an age check).
    policy: str
    enrolled: Path
    # How long past its valid_until an enrolment set still admits (then enrolment_stale).
    grace_hours: float = 0.0


@dataclass(frozen=True)
class LogSection:
    level: str = "info"


@dataclass(frozen=True)
class StateSection:
    dir: Path = DEFAULT_STATE_DIR
    # Records kept in the audit log (state/audit.sqlite); the oldest acknowledged go first.
    audit_keep: int = 100_000
    # Acknowledged records older than this are evicted too (0: by count only).
    audit_max_age_days: int = 0


@dataclass(frozen=True)
class Config:
    terminal: TerminalSection
    card: CardSection
    trust: TrustSection
    revocation: RevocationSection
    gpio: GpioSection
    relay: RelaySection
    door: DoorSection
    log: LogSection
    state: StateSection
    access: AccessSection
    link: LinkSection
    console: ConsoleSection
    gate: GateSection
    vending: VendingSection
    attendance: AttendanceSection
    source: Path | None = None

    def auth_settings(self, *, reader_supports_extended: bool = False) -> AuthSettings:
        """The authentication's settings; ``reader_supports_extended`` answers "auto"."""
        from terminald.core.auth import AuthSettings

        extended = self.card.extended_reads
        return AuthSettings(
            terminal_id=self.terminal.id,
            purpose=self.terminal.purpose,
            pin_floor=self.card.pin_floor,
            extended_reads=reader_supports_extended if extended == "auto" else extended,
        )


SECTIONS: Final = tuple(f.name for f in fields(Config) if f.name != "source")


def config_from_dict(
    data: Mapping[str, Any], base: Path = Path("/"), source: Path | None = None
) -> Config:
    """Validate parsed TOML; relative paths are taken from ``base``."""
    errors: list[str] = []

    def section(name: str) -> Section:
        table = data.get(name, {})
        if not isinstance(table, dict):
            errors.append(f"{name}: must be a table ([{name}]), got {describe(table)}")
            table = {}
        return Section(name, table, base, errors)

    for name in data:
        if name not in SECTIONS:
            errors.append(f"{show_key(name)}: {unknown_name('section', name, SECTIONS)}")

    s = section("terminal")
    terminal_id = s.string("id")
    if not s.failed("id") and not TERMINAL_ID_PATTERN.fullmatch(terminal_id):
        errors.append(
            f"terminal.id: must be 1-64 letters, digits, '.', '_' or '-' (starting with a "
            f"letter or digit), got {describe(terminal_id)}"
        )
    terminal = TerminalSection(
        terminal_id,
        s.string("purpose", "gate", PURPOSES),
        s.string("mode", "normal", MODES),
        location_of(s, errors),
        timezone_of(s, errors),
    )
    s.finish()

    s = section("card")
    reader = s.string("reader", "")
    if not reader.isprintable():  # a NUL or control character cannot name a PC/SC reader
        errors.append(f"card.reader: must be printable text, got {reader!r}")
    card = CardSection(
        reader=reader or None,
        backend=s.string("backend", "pcsc", CARD_BACKENDS),
        pin_floor=s.integer("pin_floor", 1, 0, 2),
        pin_timeout_s=s.number("pin_timeout_s", 20.0, 5, 120),
        extended_reads=s.extended_reads(),
    )
    s.finish()

    s = section("trust")
    trust = TrustSection(s.paths("anchors"), s.boolean("include_builtin", True))
    if not trust.include_builtin and not trust.anchors and not s.failed("anchors"):
        errors.append("trust.anchors: must not be empty when trust.include_builtin is false")
    s.finish()

    s = section("state")
    state = StateSection(
        s.path("dir", DEFAULT_STATE_DIR) or DEFAULT_STATE_DIR,
        s.integer("audit_keep", 100_000, 1000, 10_000_000),
        s.integer("audit_max_age_days", 0, 0, 36_500),
    )
    s.finish()

    s = section("revocation")
    state_path = s.path("state_path", None) or state.dir / REVOCATION_STATE_NAME
    revocation = RevocationSection(
        state_path=state_path,
        backoffice_keys=s.paths("backoffice_keys"),
        grace_hours=s.number("grace_hours", 0.0, 0, MAX_GRACE_HOURS),
        required=s.boolean("required", True),
    )
    if revocation.required and not revocation.backoffice_keys and not s.failed("backoffice_keys"):
        errors.append(
            "revocation.backoffice_keys: at least one back-office public key is needed while "
            "revocation.required is true"
        )
    s.finish()

    s = section("gpio")
    gpio = gpio_section(s)
    s.finish()

    s = section("relay")
    relay = RelaySection(
        s.integer("open_ms", 3000, 100, 60000),
        s.optional_boolean("active_high"),
        s.string("fail_mode", "", FAIL_MODES) or None,
    )
    s.finish()

    s = section("door")
    door = DoorSection(
        s.number("held_open_s", 30.0, 1, 3600),
        s.boolean("contact", False),
        s.boolean("rex", False),
        s.boolean("tamper", False),
        s.boolean("tamper_blocks_grants", True),
    )
    s.finish()

    s = section("log")
    log = LogSection(s.string("level", "info", LOG_LEVELS))
    s.finish()

    s = section("access")
    access = AccessSection(
        s.string("policy", "enrolled", ACCESS_POLICIES),
        s.path("enrolled", None) or base / ENROLLED_NAME,
        s.number("grace_hours", 0.0, 0, MAX_GRACE_HOURS),
    )
    s.finish()

    s = section("gate")
    gate = gate_section(s, errors)
    s.finish()

    s = section("vending")
    vending = vending_section(s, errors)
    s.finish()

    s = section("attendance")
    attendance = attendance_section(s, errors)
    s.finish()
    errors += purpose_problems(terminal.purpose, access.policy, gate)

    s = section("link")
    link = link_section(s, errors, state.dir)
    s.finish()

    s = section("console")
    console = console_section(s, errors)
    s.finish()

    if errors:
        raise ConfigError(errors)
    return Config(
        terminal,
        card,
        trust,
        revocation,
        gpio,
        relay,
        door,
        log,
        state,
        access,
        link,
        console,
        gate,
        vending,
        attendance,
        source,
    )


def gpio_section(s: Section) -> GpioSection:
    return GpioSection(
        s.string("board", choices=BOARDS),
        s.string("backend", "lgpio", GPIO_BACKENDS),
        s.string("keypad", "", KEYPADS),
    )


def read_toml(path: Path) -> dict[str, Any]:
    from terminald.files import MAX_CONFIG_SIZE, read_limited

    try:
        return tomllib.loads(read_limited(path, MAX_CONFIG_SIZE).decode())
    except OSError as exc:
        raise ConfigError([f"cannot read: {exc.strerror or exc}"]) from exc
    except UnicodeDecodeError as exc:
        raise ConfigError([f"not UTF-8 text (byte {exc.start})"]) from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"not valid TOML: {exc}"]) from exc


def load_config(path: Path | str = DEFAULT_CONFIG_PATH) -> Config:
    """Read, parse and validate one configuration file; ConfigError lists every problem."""
    path = Path(path)
    return config_from_dict(read_toml(path), path.resolve().parent, path)


def relay_wiring_mismatches(config: Config, *, active_high: bool, lock: str) -> list[str]:
    """Where ``[relay]`` asserts a polarity or lock wiring the board's pin map does not have.

    ``active_high`` and ``lock`` ("fail-secure" / "fail-safe") are the pin map's values.
    A relay driven with the wrong polarity is energised, so the door released, whenever
    the terminal is idle: the daemon must refuse to start on any mismatch.
    """
    relay, board = config.relay, config.gpio.board
    problems = []
    if relay.active_high is not None and relay.active_high != active_high:
        problems.append(
            f"relay.active_high: {str(relay.active_high).lower()} here, but the {board} pin "
            f"map drives the relay active-{'high' if active_high else 'low'}: fix the pin map "
            "or this key"
        )
    if relay.fail_mode is not None and relay.fail_mode.replace("_", "-") != lock:
        problems.append(
            f"relay.fail_mode: {relay.fail_mode} here, but the {board} pin map says the lock "
            f"is {lock}: fix the pin map or this key"
        )
    return problems
