"""``terminald doctor``'s hardware checks: pcscd and the readers, GPIO, the serial port.

Each only looks: readers are listed, never connected; pins are never claimed; the port
is opened and closed without changing its settings.
"""

from __future__ import annotations

import os
import stat
from typing import TYPE_CHECKING

from terminald.config import Config

if TYPE_CHECKING:
    from terminald.backends.pinmap import BoardPinMap

from terminald.daemon.doctor_env import (
    Environment,
    Finding,
    PcscUnreachable,
)

# --------------------------------------------------------------------------- card reader


def check_pcsc(config: Config | None, env: Environment) -> list[Finding]:
    """pcscd answers, which readers are watched (every one when card.reader is unset),
    and each watched reader's profile."""
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
    if wanted is None:
        # card.reader unset: the daemon watches every reader (backends/pcsc.py).
        if not readers:
            fix = "plug in the reader (check `lsusb` and `journalctl -u pcscd`)"
            findings.append(Finding("reader", "fail", "no reader at all", fix))
            return findings
        watched = readers
        findings.append(
            Finding(
                "reader",
                "ok",
                f"card.reader unset: watching every reader ({len(readers)}): {listed}",
                "",
                tuple(f"watched: {r!r}" for r in readers),
            )
        )
    else:
        reader = _match_reader(wanted, readers)
        if reader is None:
            fix = "plug in the reader (check `lsusb` and `journalctl -u pcscd`)"
            if readers:
                fix += "; or set card.reader to a prefix of a listed name, or unset it to watch all"
            findings.append(
                Finding(
                    "reader",
                    "fail",
                    f"no reader matching card.reader = {wanted!r}; pcscd lists: {listed}",
                    fix,
                )
            )
            watched = [wanted]
        else:
            others = tuple(f"not watched: {r!r}" for r in readers if r != reader)
            message = f"{reader!r} (matches card.reader = {wanted!r}; the only one watched)"
            findings.append(Finding("reader", "ok", message, "", others))
            watched = [reader]
    if config is not None:
        findings.extend(check_reader_profile(name, config, env) for name in watched)
    return findings


def _match_reader(wanted: str, readers: list[str]) -> str | None:
    """The same rule as the daemon's PcscReader: exact name, else the first prefix match."""
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
    message = f"{reader!r}: profile {profile.name!r}: extended APDUs {extended}"
    if profile.max_response is not None:
        message += f", responses of at most {profile.max_response} bytes"
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
        pinmap = load_board(board, env.hw_dir, config.gpio.keypad or None)
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
