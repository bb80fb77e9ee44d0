"""The ``[link]`` (back-office serial line) and ``[console]`` (technician's port) sections.

Kept apart from :mod:`terminald.config` so that file stays one screenful per concern.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from terminald.config_values import Section

BAUD_RATES: Final = (9600, 19200, 38400, 57600, 115200, 230400, 460800, 921600)
# RS-485 multi-drop addresses of terminals (0x7F is the broadcast address and the top bit
# marks a terminal's reply; see docs/protocol.md).
ADDRESS_MIN: Final = 1
ADDRESS_MAX: Final = 0x7E
LINK_KEY_NAME: Final = "link.key"
MB: Final = 1 << 20
CONSOLE_PASSWD: Final = Path("/etc/terminald/console.passwd")


@dataclass(frozen=True)
class LinkSection:
    # The serial line to the back office; None: the terminal is an island.
    port: Path | None = None
    baud: int = 115200
    # This terminal's address on the line (several may share one RS-485 pair).
    address: int = ADDRESS_MIN
    # The back office's X25519 static public key (32 bytes, base64). There is no default:
    # with a port and no key the configuration is refused.
    host_key: bytes | None = None
    # The terminal's own X25519 private key, made by ``terminald keys init`` (0600).
    key_file: Path | None = None
    # Half-duplex RS-485: send a burst, then turn the line around for one acknowledgement.
    rs485: bool = False
    # With rs485: drive the transceiver's DE from RTS through the kernel's RS-485 mode;
    # false for a transceiver that switches direction by itself.
    rs485_rts: bool = True
    # The largest bulk transfer accepted (revocation snapshot, enrolment set, config), in
    # MiB; the spool (<state>/link-spool) holds at most twice this.
    max_transfer_mb: int = 64

    @property
    def max_transfer(self) -> int:
        """The same, in bytes."""
        return self.max_transfer_mb * MB


@dataclass(frozen=True)
class ConsoleSection:
    # The technician's serial console (e.g. /dev/serial0); None: no console.
    port: Path | None = None
    baud: int = 115200
    # The password hash written by ``terminald console passwd`` (root-only, 0600).
    passwd: Path = CONSOLE_PASSWD
    # A session with no input for this long is logged out.
    idle_logout_s: float = 600.0


def parse_public_key(text: str) -> bytes:
    """A 32-byte X25519 public key from its base64 text (as ``keys init`` prints it).

    Raises ValueError naming what is wrong.
    """
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("not base64") from None
    if len(raw) != 32:
        raise ValueError(f"an X25519 public key is 32 bytes, this is {len(raw)}")
    return raw


def baud_of(s: Section, errors: list[str], name: str) -> int:
    baud = s.integer("baud", 115200, 1200, 4_000_000)
    if baud not in BAUD_RATES and not s.failed("baud"):
        errors.append(f"{name}.baud: must be one of {', '.join(map(str, BAUD_RATES))}, got {baud}")
    return baud


def link_section(s: Section, errors: list[str], state_dir: Path) -> LinkSection:
    port = s.path("port", None)
    baud = baud_of(s, errors, "link")
    address = s.integer("address", ADDRESS_MIN, ADDRESS_MIN, ADDRESS_MAX)
    host_key: bytes | None = None
    text = s.string("host_key", "")
    if text:
        try:
            host_key = parse_public_key(text)
        except ValueError as exc:
            errors.append(f"link.host_key: {exc}")
    elif port is not None:
        errors.append(
            "link.host_key: the back office's public key is needed when link.port is set "
            "(there is no default key)"
        )
    key_file = s.path("key_file", None) or state_dir / LINK_KEY_NAME
    rs485 = s.boolean("rs485", False)
    rs485_rts = s.boolean("rs485_rts", True)
    max_transfer = s.integer("max_transfer_mb", 64, 1, 1024)
    return LinkSection(port, baud, address, host_key, key_file, rs485, rs485_rts, max_transfer)


def console_section(s: Section, errors: list[str]) -> ConsoleSection:
    return ConsoleSection(
        s.path("port", None),
        baud_of(s, errors, "console"),
        s.path("passwd", CONSOLE_PASSWD) or CONSOLE_PASSWD,
        s.number("idle_logout_s", 600.0, 30, 86_400),
    )
