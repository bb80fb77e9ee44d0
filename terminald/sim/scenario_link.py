"""``link = true`` in a scenario file: a test line to a back office, keys for both sides.

The runner opens a :class:`~terminald.sim.line.Line` (two pty pairs joined by a wire
throttled to ``[link] baud``, 115200 by default) for the run; the daemon gets the
``terminal`` end as ``[link] port`` and a step's ``terminald host --port {link}`` opens
the ``host`` end. The keys are provisioned as an installer would: the back office's key
directory (``{hostkeys}``: host.key, signing.key, signing.pub, terminals.toml) with
``init_host_keys``, the terminal's key at ``[link] key_file`` (default
``{state}/link.key``) with ``init_link_key``, the terminal's public key recorded in
``terminals.toml`` under its ``[link] address``, and the back office's public key as
``[link] host_key``. Its signing key's public half joins ``[revocation] backoffice_keys``,
so what the back office signs (time, configuration, enrolment) verifies at the terminal.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from terminald.config import Config
from terminald.config_link import BAUD_RATES
from terminald.link.keys import TerminalKey, encode_public
from terminald.sim.line import DEFAULT_BAUD, Line
from terminald.store.link_keys import (
    SIGNING_PUB,
    LinkKeyFileError,
    add_terminal_key,
    init_host_keys,
    init_link_key,
)

HOST_END = "host"
TERMINAL_END = "terminal"


class LinkSetupError(Exception):
    """The line could not be opened or a key made; one line naming what (a bad ``key_file``)."""


@dataclass(frozen=True)
class ScenarioLink:
    """The line and the back office's keys of one run."""

    terminal_port: Path  # the daemon's [link] port
    host_port: Path  # {link}
    hostkeys: Path  # {hostkeys}
    host_public: bytes  # the back office's X25519 public key, 32 bytes

    def merge_into(self, config: dict[str, dict[str, Any]]) -> None:
        """Set ``[link] port`` and ``host_key`` in a merged configuration (the file may not
        set them, see scenario_file), and add the back office's signing key to
        ``[revocation] backoffice_keys`` after the keys the file lists."""
        link = config.setdefault("link", {})
        link["port"] = str(self.terminal_port)
        link["host_key"] = encode_public(self.host_public)
        revocation = config.setdefault("revocation", {})
        listed = revocation.get("backoffice_keys", [])
        signing = str(self.hostkeys / SIGNING_PUB)
        revocation["backoffice_keys"] = [*listed, signing] if isinstance(listed, list) else listed

    def provision_terminal(self, config: Config) -> None:
        """Make the terminal's key at ``[link] key_file`` and record its public key in the
        back office's directory under ``[link] address``. Raises LinkSetupError."""
        section = config.link
        assert section.key_file is not None  # link_section defaults it to <state>/link.key
        try:
            public = init_link_key(section.key_file)
            terminal = TerminalKey(section.address, public, config.terminal.id)
            add_terminal_key(self.hostkeys, terminal)
        except LinkKeyFileError as exc:
            raise LinkSetupError(str(exc)) from None


def line_baud(config: dict[str, dict[str, Any]]) -> int:
    """The test line's rate: the file's ``[config.link] baud`` when it is one the daemon
    takes (a bad one is reported with the merged configuration), else 115200."""
    baud = config.get("link", {}).get("baud", DEFAULT_BAUD)
    return baud if isinstance(baud, int) and baud in BAUD_RATES else DEFAULT_BAUD


def open_link(
    stack: contextlib.ExitStack, hostkeys: Path, baud: int = DEFAULT_BAUD
) -> ScenarioLink:
    """A line at ``baud`` (closed when ``stack`` unwinds) and the back office's key
    directory ``hostkeys`` (must not exist yet). Raises LinkSetupError."""
    try:
        host_public = init_host_keys(hostkeys)
    except LinkKeyFileError as exc:
        raise LinkSetupError(str(exc)) from None
    try:
        line = stack.enter_context(Line(HOST_END, TERMINAL_END, baud=baud))
    except OSError as exc:  # no pty pair left: the machine's, not the file's, but said plainly
        raise LinkSetupError(f"cannot open a test line (pty pairs): {exc}") from None
    return ScenarioLink(
        terminal_port=Path(line.path(TERMINAL_END)),
        host_port=Path(line.path(HOST_END)),
        hostkeys=hostkeys,
        host_public=host_public,
    )
