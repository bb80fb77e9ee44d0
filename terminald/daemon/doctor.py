"""``terminald doctor``: what is wrong with this terminal's setup, and how to fix it.

An installer or a technician runs it on the Pi, possibly while the daemon runs. So every
check here only looks: it lists PC/SC readers but never connects to one (the daemon holds
the card exclusively), it reads the board's pin map but never claims a GPIO pin, it opens
the serial port and closes it without changing its settings, and it reads the revocation
state from a private copy (the store's own loader clears a writer's stray temporaries,
which could be the running daemon's write in progress).

Each check is a function returning :class:`Finding` objects. What a check learns from the
machine (the clock, pcscd, ``/dev``, the disk, imports) comes through an
:class:`Environment`, so tests inject their own.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import pwd
import shutil
import stat
import subprocess
import tempfile
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Final, Literal, TypeAlias

from terminald.config import Config, ConfigError, check_files, load_config

if TYPE_CHECKING:
    from terminald.backends.pinmap import BoardPinMap
    from terminald.store.revocation_store import RevocationStoreConfig, StoreStatus

Status: TypeAlias = Literal["ok", "warn", "fail"]

PCSCD_SOCKET: Final = Path("/run/pcscd/pcscd.comm")
TIMESYNC_FLAG: Final = Path("/run/systemd/timesync/synchronized")
ANCHOR_WARN: Final = timedelta(days=365)
REVOCATION_WARN: Final = timedelta(hours=24)
MIN_FREE_BYTES: Final = 10 * 1024 * 1024


@dataclass(frozen=True)
class Finding:
    """One check's verdict; ``fix`` says what to do when the status is not ok."""

    check: str
    status: Status
    message: str
    fix: str = ""
    details: tuple[str, ...] = ()


class PcscUnreachable(Exception):
    """pcscd could not be asked for its readers; the message says why."""


def pcsc_list_readers() -> list[str]:
    """The readers pcscd lists. Establishes a context and lists: never connects to a card."""
    from terminald.backends.pcsc import PcscReader
    from terminald.card.errors import CardError

    reader = PcscReader()
    try:
        return [str(r) for r in reader.list_readers()]
    except CardError as exc:  # ReaderUnavailableError and the rest, with pcscd's own words
        raise PcscUnreachable(str(exc)) from exc
    finally:
        reader.close()


def timedatectl_ntp_synchronized() -> str | None:
    """``timedatectl show -p NTPSynchronized --value`` ("yes"/"no"), or None if unknown."""
    try:
        done = subprocess.run(
            ["timedatectl", "show", "-p", "NTPSynchronized", "--value"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    value = done.stdout.strip()
    return value if done.returncode == 0 and value else None


def _gpiochips() -> list[Path]:
    return sorted(Path("/dev").glob("gpiochip*"))


def _disk_free(path: Path) -> int:
    return shutil.disk_usage(path).free


def _now() -> datetime:
    return datetime.now(UTC)


def _user() -> str:
    """The effective user's name: the one the access checks are made for."""
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return str(os.geteuid())


@dataclass(frozen=True)
class Environment:
    """What the checks learn from the machine; tests replace any part."""

    now: Callable[[], datetime] = _now
    list_readers: Callable[[], list[str]] = pcsc_list_readers
    pcscd_socket: Path = PCSCD_SOCKET
    gpiochips: Callable[[], list[Path]] = _gpiochips
    import_module: Callable[[str], object] = importlib.import_module
    timesync_flag: Path = TIMESYNC_FLAG
    ntp_synchronized: Callable[[], str | None] = timedatectl_ntp_synchronized
    disk_free: Callable[[Path], int] = _disk_free
    access: Callable[[Path, int], bool] = os.access
    hw_dir: Path | None = None
    user: Callable[[], str] = _user


@dataclass(frozen=True)
class Report:
    config_path: Path
    findings: tuple[Finding, ...]
    # The file could not be read or parsed at all (exit 2).
    config_unreadable: bool = False

    @property
    def exit_code(self) -> int:
        if self.config_unreadable:
            return 2
        return 1 if any(f.status == "fail" for f in self.findings) else 0

    def as_dict(self) -> dict[str, object]:
        return {
            "config": str(self.config_path),
            "exit_code": self.exit_code,
            "ok": self.exit_code == 0,
            "findings": [
                {
                    "check": f.check,
                    "status": f.status,
                    "message": f.message,
                    "fix": f.fix,
                    "details": list(f.details),
                }
                for f in self.findings
            ],
        }


# --------------------------------------------------------------------------- config


@dataclass(frozen=True)
class ConfigResult:
    config: Config | None
    findings: list[Finding]
    unreadable: bool = False


def check_config(path: Path) -> ConfigResult:
    """The file loads (``load_config``) and what it names opens (``check_files``)."""
    fix_edit = f"edit {path}, then run `terminald check-config {path}`"
    try:
        tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        return ConfigResult(
            None,
            [
                Finding(
                    "config",
                    "fail",
                    f"cannot read {path}: {exc.strerror or exc}",
                    "give the right file with --config FILE, or install one: "
                    "`sudo cp systemd/terminald.toml.example /etc/terminald/terminald.toml`",
                )
            ],
            unreadable=True,
        )
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        return ConfigResult(
            None,
            [Finding("config", "fail", f"{path} is not valid TOML: {exc}", fix_edit)],
            unreadable=True,
        )
    try:
        config = load_config(path)
    except ConfigError as exc:
        message = f"{path}: {len(exc.messages)} problem(s); the checks that need it are skipped"
        return ConfigResult(
            None, [Finding("config", "fail", message, fix_edit, tuple(exc.messages))]
        )
    problems = check_files(config)
    if problems:
        finding = Finding(
            "config",
            "fail",
            f"{path} loads, but {len(problems)} file(s) it names are unusable",
            fix_edit,
            tuple(problems),
        )
    else:
        finding = Finding("config", "ok", f"{path} loads and the files it names open")
    return ConfigResult(config, [finding])


# --------------------------------------------------------------------------- card reader


def check_pcsc(config: Config | None, env: Environment) -> list[Finding]:
    """pcscd answers, the configured reader is there, and its profile is known."""
    try:
        readers = env.list_readers()
    except PcscUnreachable as exc:
        if env.pcscd_socket.exists():
            fix = (
                f"pcscd runs but refused user {env.user()}: allow it in polkit "
                "(action org.debian.pcsc-lite.access_pcsc) and see `journalctl -u pcscd`"
            )
        else:
            fix = "sudo systemctl enable --now pcscd.socket  (and: sudo apt install pcscd libccid)"
        return [Finding("pcscd", "fail", f"cannot reach pcscd: {exc}", fix)]
    listed = ", ".join(repr(r) for r in readers) or "none"
    findings = [Finding("pcscd", "ok", f"reachable; readers: {listed}")]
    wanted = config.card.reader if config else None
    reader = _match_reader(wanted, readers)
    if reader is None:
        what = f"no reader matching card.reader = {wanted!r}" if wanted else "no reader at all"
        fix = "plug in the reader (check `lsusb` and `journalctl -u pcscd`)"
        if wanted and readers:
            fix += "; or set card.reader to a prefix of a listed name"
        findings.append(Finding("reader", "fail", f"{what}; pcscd lists: {listed}", fix))
    else:
        how = f"matches card.reader = {wanted!r}" if wanted else "the first reader listed"
        findings.append(Finding("reader", "ok", f"{reader!r} ({how})"))
    name = reader or wanted
    if name is not None and config is not None:
        findings.append(check_reader_profile(name, config, env))
    return findings


def _match_reader(wanted: str | None, readers: list[str]) -> str | None:
    """The same rule as the daemon's PcscReader: exact name, else the first prefix match."""
    if wanted is None:
        return readers[0] if readers else None
    if wanted in readers:
        return wanted
    return next((r for r in readers if r.startswith(wanted)), None)


def check_reader_profile(reader: str, config: Config, env: Environment) -> Finding:
    from terminald.backends.reader_profiles import ReaderProfileError, load_reader_profiles

    path = (env.hw_dir / "readers.toml") if env.hw_dir else None
    try:
        profile = load_reader_profiles(path).lookup(reader)
    except ReaderProfileError as exc:
        return Finding(
            "reader-profile",
            "warn",
            f"the reader profiles are unusable, short APDUs will be used: {exc}",
            "fix hw/readers.toml (or reinstall terminald)",
        )
    forced = config.card.extended_reads
    if profile is None:
        message = f"{reader!r} has no profile in hw/readers.toml"
        if forced is True:
            message += "; card.extended_reads = true forces extended APDUs anyway"
        else:
            message += ": short APDUs (11 per certificate read instead of 6)"
        return Finding(
            "reader-profile",
            "warn",
            message,
            "add a [[reader]] entry to hw/readers.toml, with sources, once the reader is tested",
        )
    extended = {True: "yes", False: "no", None: "unknown"}[profile.extended_apdus]
    details = tuple(f"quirk: {q}" for q in profile.quirks)
    message = f"profile {profile.name!r}: extended APDUs {extended}"
    if forced is True and profile.extended_apdus is not True:
        return Finding(
            "reader-profile",
            "warn",
            message + ", but card.extended_reads = true forces them",
            'set card.extended_reads = "auto" unless this reader was tested with them',
            details,
        )
    return Finding("reader-profile", "ok", message, "", details)


# --------------------------------------------------------------------------- GPIO


def check_gpio(config: Config, env: Environment) -> list[Finding]:
    """The board's pin map loads and agrees with [relay]; the backend can work here.

    Nothing is claimed: a pin factory is never built.
    """
    from terminald.backends.pinmap import PinMapError, load_board
    from terminald.config import relay_wiring_mismatches

    findings: list[Finding] = []
    pinmap: BoardPinMap | None = None
    board = config.gpio.board
    try:
        pinmap = load_board(board, env.hw_dir)
    except PinMapError as exc:
        findings.append(
            Finding("pinmap", "fail", str(exc), "set gpio.board to a board with a pin map")
        )
    if pinmap is not None:
        relay = pinmap.relay
        mismatches = relay_wiring_mismatches(config, active_high=relay.active_high, lock=relay.lock)
        if mismatches:
            findings.append(
                Finding(
                    "pinmap",
                    "fail",
                    f"[relay] disagrees with the {board} pin map: the daemon will not start",
                    f"make hw/boards/{board}.toml and [relay] describe the installed relay",
                    tuple(mismatches),
                )
            )
        else:
            findings.append(
                Finding(
                    "pinmap",
                    "ok",
                    f"{board} ({pinmap.model}): relay on GPIO{relay.pin}, "
                    f"active-{'high' if relay.active_high else 'low'}, {relay.lock}",
                )
            )
    backend = config.gpio.backend
    if backend == "mock":
        findings.append(
            Finding(
                "gpio",
                "warn",
                "mock backend: no real hardware is driven",
                'set gpio.backend = "lgpio" on a real terminal',
            )
        )
        return findings
    findings += _check_lgpio(pinmap, env)
    return findings


def _check_lgpio(pinmap: BoardPinMap | None, env: Environment) -> list[Finding]:
    findings: list[Finding] = []
    user = env.user()
    chips = env.gpiochips()
    if pinmap is not None and pinmap.gpiochip is not None:
        wanted = [c for c in chips if c.name == f"gpiochip{pinmap.gpiochip}"]
        if not wanted:
            findings.append(
                Finding(
                    "gpio",
                    "fail",
                    f"/dev/gpiochip{pinmap.gpiochip} (the {pinmap.board} pin map's chip) "
                    f"does not exist; found: {', '.join(map(str, chips)) or 'none'}",
                    "run on the board the pin map names, with a kernel that has GPIO "
                    "character devices (Raspberry Pi OS bookworm)",
                )
            )
        chips = wanted
    elif not chips:
        findings.append(
            Finding(
                "gpio",
                "fail",
                "no /dev/gpiochip* device",
                "run on a Raspberry Pi with a kernel that has GPIO character devices "
                "(Raspberry Pi OS bookworm), or use the mock backend for a bench test",
            )
        )
    denied = [c for c in chips if not env.access(c, os.R_OK | os.W_OK)]
    if denied:
        findings.append(
            Finding(
                "gpio",
                "fail",
                f"user {user} cannot read and write {', '.join(map(str, denied))}",
                f"sudo usermod -aG gpio {user} (then log in again), and install "
                "hw/udev/99-terminald.rules to /etc/udev/rules.d/",
            )
        )
    try:
        env.import_module("lgpio")
    except ImportError as exc:
        findings.append(
            Finding(
                "gpio",
                "fail",
                f"the lgpio module does not import: {exc}",
                "install it into terminald's venv: `/opt/terminald/bin/pip install lgpio` "
                "(scripts/install-pi does this)",
            )
        )
    if not findings:
        findings.append(
            Finding("gpio", "ok", f"lgpio imports; {user} can use {', '.join(map(str, chips))}")
        )
    return findings


# --------------------------------------------------------------------------- serial


def check_serial(config: Config, env: Environment) -> Finding:
    """``[link] port`` exists, is a character device, and this user can open it.

    It is opened non-blocking, without becoming the controlling terminal, and closed at
    once; no setting (speed, parity, modem lines) is changed.
    """
    port = config.link.port
    if port is None:
        return Finding("serial", "ok", "no back-office link configured")
    user = env.user()
    try:
        mode = port.stat().st_mode
    except FileNotFoundError:
        return Finding(
            "serial",
            "fail",
            f"{port} does not exist",
            "plug in the USB-serial adapter, or enable the UART (raspi-config → Interface "
            "Options → Serial Port: no login shell, hardware enabled), or fix link.port",
        )
    except OSError as exc:
        return Finding("serial", "fail", f"{port}: {exc.strerror or exc}", "fix link.port")
    if not stat.S_ISCHR(mode):
        return Finding(
            "serial",
            "fail",
            f"{port} is not a character device (a serial port)",
            "set link.port to the serial device, e.g. /dev/ttyAMA0, /dev/ttyUSB0 or a "
            "/dev/serial/by-id/ link",
        )
    try:
        fd = os.open(port, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    except PermissionError:
        return Finding(
            "serial",
            "fail",
            f"user {user} cannot open {port} for reading and writing",
            f"sudo usermod -aG dialout {user} (then log in again)",
        )
    except OSError as exc:
        return Finding(
            "serial",
            "fail",
            f"cannot open {port}: {exc.strerror or exc}",
            "check the adapter (`dmesg | tail`) and that nothing else owns the port "
            "(a serial console: `systemctl status serial-getty@*`)",
        )
    os.close(fd)
    return Finding("serial", "ok", f"{port} opens read/write ({config.link.baud} baud)")


# --------------------------------------------------------------------------- clock


def check_clock(env: Environment) -> list[Finding]:
    """The clock is not before the earliest trusted time, and something keeps it right."""
    from terminald.core.auth import DEFAULT_EARLIEST_TRUSTED_TIME

    now = env.now()
    earliest = DEFAULT_EARLIEST_TRUSTED_TIME
    if now < earliest:
        clock = Finding(
            "clock",
            "fail",
            f"the system clock says {_iso(now)}, before {_iso(earliest)}: the terminal "
            "refuses every card until the time is set",
            "set the time: connect a network with NTP (`timedatectl set-ntp true`), or let "
            "the back office push it, or `sudo date -s 'YYYY-MM-DD HH:MM:SS'`",
        )
    else:
        clock = Finding("clock", "ok", f"{_iso(now)} (not before {_iso(earliest)})")
    if env.timesync_flag.exists():
        sync = Finding("time-sync", "ok", f"synchronised ({env.timesync_flag} exists)")
    else:
        answer = env.ntp_synchronized()
        if answer == "yes":
            sync = Finding("time-sync", "ok", "synchronised (timedatectl: NTPSynchronized=yes)")
        else:
            said = "unknown" if answer is None else f"NTPSynchronized={answer}"
            sync = Finding(
                "time-sync",
                "warn",
                f"the clock is not known to be synchronised ({said}); a Pi has no "
                "real-time clock, so after a power cut it starts at the last saved time",
                "enable time sync where there is a network (`sudo timedatectl set-ntp true`), "
                "or fit an RTC, or have the back office push the time",
            )
    return [clock, sync]


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


# --------------------------------------------------------------------------- trust


def check_trust(config: Config, env: Environment) -> Finding:
    """The anchors load; at least one is valid now; say when one expires within a year."""
    from terminald.config import trust_store

    try:
        anchors = trust_store(config).anchors()
    except ConfigError as exc:
        return Finding(
            "trust",
            "fail",
            "the trust anchors do not load",
            "fix trust.anchors: each file must be a self-signed CA certificate (PEM or DER)",
            tuple(exc.messages),
        )
    now = env.now()
    details = []
    valid = []
    soon = []
    for anchor in anchors:
        cert = anchor.certificate
        not_after = cert.not_valid_after_utc
        if anchor.valid_at(now):
            valid.append(anchor)
            state = "valid"
            if not_after - now < ANCHOR_WARN:
                soon.append(anchor)
                state = f"expires in {(not_after - now).days} days"
        elif now < cert.not_valid_before_utc:
            state = "not yet valid"
        else:
            state = "expired"
        details.append(
            f"{cert.subject.rfc4514_string()} (key {anchor.key_id.hex()[:16]}…, "
            f"{anchor.source}): not after {_iso(not_after)}, {state}"
        )
    counted = f"{len(anchors)} anchor(s), {len(valid)} valid now"
    if not valid:
        return Finding(
            "trust",
            "fail",
            f"{counted}: every card will be refused",
            "add the current J-LIS root (https://www.jpki.go.jp/ca/index.html) to "
            "trust.anchors, or set trust.include_builtin = true",
            tuple(details),
        )
    if soon:
        return Finding(
            "trust",
            "warn",
            f"{counted}; {len(soon)} expire(s) within 365 days",
            "get the next J-LIS root generation and add it to trust.anchors before then",
            tuple(details),
        )
    return Finding("trust", "ok", counted, "", tuple(details))


# --------------------------------------------------------------------------- revocation


def check_revocation(config: Config, env: Environment) -> Finding:
    """What the daemon's revocation store would report now, read from a private copy."""
    finding = _read_revocation(config, env)
    return finding if isinstance(finding, Finding) else _judge_revocation(config, env, finding)


def _read_revocation(config: Config, env: Environment) -> Finding | StoreStatus:
    """A finding when there is nothing to judge; else the status of a verified copy."""
    from terminald.config import revocation_store_config
    from terminald.files import read_limited
    from terminald.store.revocation_store import MAX_STATE_SIZE

    section = config.revocation
    try:
        store_config = revocation_store_config(config)
    except ConfigError as exc:
        return Finding(
            "revocation",
            "fail",
            "the back-office keys do not load",
            "fix revocation.backoffice_keys: PEM Ed25519 public keys",
            tuple(exc.messages),
        )
    if store_config is None:
        return Finding(
            "revocation",
            "warn",
            "revocation is NOT checked (revocation.required = false, no back-office key)",
            "on a real terminal, list the back office's key in revocation.backoffice_keys",
        )
    apply_fix = (
        "have the back office push a bundle, or run `terminald revocation apply BUNDLE "
        f"--revocation-state {section.state_path} --backoffice-key PUB`"
    )
    bad: Status = "fail" if section.required else "warn"
    path = section.state_path
    try:
        data = read_limited(path, MAX_STATE_SIZE)  # hook (robust-input): no FIFO, no 3 GiB
    except FileNotFoundError:
        consequence = "every card is refused" if section.required else "verdicts say so"
        return Finding(
            "revocation", bad, f"no revocation data yet ({path}): {consequence}", apply_fix
        )
    except OSError as exc:
        return Finding(
            "revocation",
            bad,
            f"cannot read {path}: {exc.strerror or exc}",
            f"make {path} readable by the daemon's user",
        )
    return _status_of_copy(data, store_config, env.now())


def _judge_revocation(config: Config, env: Environment, status: StoreStatus) -> Finding:
    section, path, now = config.revocation, config.revocation.state_path, env.now()
    apply_fix = (
        "have the back office push a bundle, or run `terminald revocation apply BUNDLE "
        f"--revocation-state {section.state_path} --backoffice-key PUB`"
    )
    bad: Status = "fail" if section.required else "warn"
    if not status.available:
        problem = status.problem
        return Finding("revocation", bad, f"{path} is unusable: {problem}", apply_fix)
    from terminald.revocation.freshness import Freshness

    assert status.valid_until is not None
    summary = (
        f"version {status.version}, valid until {_iso(status.valid_until)} "
        f"({status.revoked} revoked, {status.hold} on hold)"
    )
    grace = timedelta(hours=section.grace_hours)
    if status.freshness is Freshness.STALE:
        return Finding(
            "revocation",
            bad,
            f"{summary}: stale beyond the grace of {section.grace_hours:g} h",
            apply_fix,
        )
    if status.freshness is Freshness.GRACE:
        return Finding(
            "revocation",
            "warn",
            f"{summary}: expired, admitting within the grace until "
            f"{_iso(status.valid_until + grace)}",
            apply_fix,
        )
    if status.valid_until - now < REVOCATION_WARN:
        return Finding(
            "revocation", "warn", f"{summary}: expires within 24 h", "check the back-office feed"
        )
    return Finding("revocation", "ok", summary)


def _status_of_copy(data: bytes, store_config: RevocationStoreConfig, now: datetime) -> StoreStatus:
    """``RevocationStore.status`` over a copy of the state, in a private directory.

    Loading the real path would delete temporaries beside it, and one may be the running
    daemon's write in progress.
    """
    import dataclasses

    from terminald.store.revocation_store import RevocationStore

    with tempfile.TemporaryDirectory(prefix="terminald-doctor-") as tmp:
        copy = Path(tmp) / store_config.state_path.name
        copy.write_bytes(data)
        with _quiet("terminald.store.revocation_store"):
            store = RevocationStore(dataclasses.replace(store_config, state_path=copy))
        status = store.status(now)
        problem = status.problem.replace(str(copy), str(store_config.state_path))
    return dataclasses.replace(status, problem=problem)


@contextlib.contextmanager
def _quiet(name: str) -> Iterator[None]:
    """The store logs its load errors; the doctor reports them itself, once."""
    logger = logging.getLogger(name)
    was = logger.disabled
    logger.disabled = True
    try:
        yield
    finally:
        logger.disabled = was


# --------------------------------------------------------------------------- state dir


def check_state_dir(config: Config, env: Environment) -> Finding:
    directory = config.state.dir
    user = env.user()
    fix_create = (
        f"sudo systemd-tmpfiles --create (for /var/lib/terminald), or create {directory} "
        f"owned by the daemon's user with mode 0700"
    )
    try:
        info = directory.stat()
    except FileNotFoundError:
        return Finding("state", "fail", f"{directory} does not exist", fix_create)
    except OSError as exc:
        return Finding("state", "fail", f"{directory}: {exc.strerror or exc}", fix_create)
    if not stat.S_ISDIR(info.st_mode):
        return Finding("state", "fail", f"{directory} is not a directory", fix_create)
    if not env.access(directory, os.W_OK | os.X_OK):
        return Finding(
            "state",
            "fail",
            f"user {user} cannot write in {directory}",
            f"sudo chown terminald: {directory} (and run the doctor as the daemon's user: "
            "`sudo -u terminald terminald doctor`)",
        )
    mode = stat.S_IMODE(info.st_mode)
    free = env.disk_free(directory)
    problems = []
    fixes = []
    if mode & (stat.S_IWGRP | stat.S_IWOTH):
        problems.append(f"mode {mode:04o} lets others write the revocation store and audit log")
        fixes.append(f"sudo chmod go-w {directory}")
    if free < MIN_FREE_BYTES:
        problems.append(f"only {free / 1024 / 1024:.1f} MiB free")
        fixes.append("free space on that file system (journal: `journalctl --vacuum-size=50M`)")
    summary = f"{directory}: mode {mode:04o}, {free / 1024 / 1024:.0f} MiB free"
    if problems:
        return Finding("state", "warn", f"{directory}: {'; '.join(problems)}", "; ".join(fixes))
    return Finding("state", "ok", summary)


# --------------------------------------------------------------------------- all


def run_checks(config_path: Path, env: Environment | None = None) -> Report:
    """Every check, in the order a technician would fix things."""
    env = env or Environment()
    loaded = check_config(config_path)
    findings = list(loaded.findings)
    config = loaded.config
    findings += check_pcsc(config, env)
    if config is not None:
        findings += check_gpio(config, env)
        findings.append(check_serial(config, env))
    findings += check_clock(env)
    if config is not None:
        from terminald.core.trusted_time import SignedTime
        from terminald.daemon.doctor_time import check_trusted_time

        findings.append(check_trust(config, env))
        revocation = _read_revocation(config, env)
        signed = None
        if isinstance(revocation, Finding):
            findings.append(revocation)
        else:
            findings.append(_judge_revocation(config, env, revocation))
            if revocation.available and revocation.issued_at is not None:
                label = f"revocation data version {revocation.version}'s issue time"
                signed = SignedTime(revocation.issued_at, label)
        findings.append(check_trusted_time(config, env.now(), signed))
        findings.append(check_state_dir(config, env))
    return Report(config_path, tuple(findings), loaded.unreadable)


LABELS: Final[dict[str, str]] = {"ok": "OK", "warn": "WARN", "fail": "FAIL"}


def format_report(report: Report) -> list[str]:
    """Lines for a terminal: ``OK   pcscd  ...`` / ``FAIL serial ...`` then ``→ fix: ...``."""
    width = max((len(f.check) for f in report.findings), default=0)
    indent = " " * (5 + width + 2)
    lines = []
    for f in report.findings:
        lines.append(f"{LABELS[f.status]:<4} {f.check:<{width}}  {f.message}")
        lines += [f"{indent}- {d}" for d in f.details]
        if f.status != "ok" and f.fix:
            lines.append(f"{indent}→ fix: {f.fix}")
    counts = {s: sum(f.status == s for f in report.findings) for s in LABELS}
    lines.append(f"{counts['ok']} ok, {counts['warn']} warning(s), {counts['fail']} failure(s)")
    return lines


__all__ = [
    "Environment",
    "Finding",
    "PcscUnreachable",
    "Report",
    "check_clock",
    "check_config",
    "check_gpio",
    "check_pcsc",
    "check_revocation",
    "check_serial",
    "check_state_dir",
    "check_trust",
    "format_report",
    "run_checks",
]
