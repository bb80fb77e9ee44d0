"""The daemon with ``[link]`` on a throttled pty line (terminald.sim.line) and keys for both
sides, for the link's integration tests (fixtures ``terminal`` and ``linked``, registered
in conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from terminald.backoffice.host_link import HostLink
from terminald.link import keys
from terminald.sim.line import Line
from terminald.sim.pcscd import Pcscd
from terminald.sim.testpki import TestPkiManifest
from terminald.store.link_keys import HostKeys, add_terminal_key, init_host_keys, init_link_key
from tests.integration.daemon_rig import GateRig, gate_config, open_rig
from tests.integration.test_daemon_live_revocation import CARDS, BackOffice

ADDRESS = 5


@dataclass
class Terminal:
    rig: GateRig
    office: BackOffice
    line: Line
    hostkeys: Path
    config: Path


@dataclass
class Linked:
    rig: GateRig
    host: HostLink
    office: BackOffice
    line: Line


@pytest.fixture
def terminal(tmp_path: Path, test_pki: TestPkiManifest, pcscd: Pcscd) -> Iterator[Terminal]:
    """The daemon with [link] on a Line; the back office's end free for a HostLink or CLI."""
    office = BackOffice(tmp_path, test_pki)
    office.apply(office.build(1, revoke=[]))
    hostkeys = tmp_path / "hostkeys"
    host_public = init_host_keys(hostkeys)
    (tmp_path / "state").mkdir(exist_ok=True)
    terminal_public = init_link_key(tmp_path / "state" / "link.key")
    add_terminal_key(hostkeys, keys.TerminalKey(ADDRESS, terminal_public, "gate"))
    with Line() as line:
        extra = (
            f'[link]\nport = "{line.path("terminal")}"\naddress = {ADDRESS}\n'
            f'host_key = "{keys.encode_public(host_public)}"\n'
        )
        section = office.section().replace(
            "backoffice_keys = [", f'backoffice_keys = ["{hostkeys / "signing.pub"}", '
        )
        config = gate_config(tmp_path, test_pki, enrolled=CARDS, revocation=section, extra=extra)
        rig = open_rig(config, test_pki)
        try:
            yield Terminal(rig, office, line, hostkeys, config)
        finally:
            rig.stop()


@pytest.fixture
def linked(terminal: Terminal) -> Iterator[Linked]:
    path = Path(terminal.line.path("host"))
    with HostLink(path, HostKeys.load(terminal.hostkeys)) as host:
        yield Linked(terminal.rig, host, terminal.office, terminal.line)
