"""Three terminals on one simulated RS-485 pair (terminald.sim.line.Bus: half duplex, one
shared wire, colliding talkers garble each other), each a real daemon with its own
address, keys and state; the back office talks to each in turn and broadcasts one
revocation bundle once to all three."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from terminald.backoffice.host_link import HostLink
from terminald.cli import main
from terminald.link import keys, messages
from terminald.sim.line import Bus
from terminald.sim.pcscd import Pcscd
from terminald.sim.testpki import TestPkiManifest
from terminald.store.link_keys import HostKeys, add_terminal_key, init_host_keys, init_link_key
from tests.integration.daemon_rig import GateRig, gate_config, open_rig
from tests.integration.test_daemon_live_revocation import CARDS, BackOffice

pytestmark = pytest.mark.pcscd

ADDRESSES = (1, 2, 3)


def test_three_terminals_on_one_pair(
    tmp_path: Path, test_pki: TestPkiManifest, pcscd: Pcscd
) -> None:
    office = BackOffice(tmp_path, test_pki)
    first = office.build(1, revoke=[])
    hostkeys = tmp_path / "hostkeys"
    host_public = init_host_keys(hostkeys)
    rigs: list[GateRig] = []
    with Bus([f"t{a}" for a in ADDRESSES]) as bus:
        try:
            for address in ADDRESSES:
                home = tmp_path / f"t{address}"
                (home / "state").mkdir(parents=True)
                public = init_link_key(home / "state" / "link.key")
                add_terminal_key(hostkeys, keys.TerminalKey(address, public, f"gate {address}"))
                state = home / "state" / "revocation.state"
                pub = f"{office.key}.pub"
                apply = ["revocation", "apply", str(first), "--revocation-state", str(state)]
                assert main([*apply, "--backoffice-key", pub]) == 0
                section = (
                    f'required = true\nstate_path = "{state}"\n'
                    f'backoffice_keys = ["{pub}", "{hostkeys / "signing.pub"}"]'
                )
                extra = (
                    f'[link]\nport = "{bus.path(f"t{address}")}"\naddress = {address}\n'
                    f'host_key = "{keys.encode_public(host_public)}"\n'
                    "rs485 = true\nrs485_rts = false\n"
                )
                config = gate_config(
                    home, test_pki, enrolled=CARDS, revocation=section, extra=extra
                )
                rigs.append(open_rig(config, test_pki))
            host_end = Path(bus.path("host"))
            with HostLink(host_end, HostKeys.load(hostkeys), rs485=True, rts=False) as host:
                for address in ADDRESSES:
                    hello = host.connect(address)
                    assert hello.terminal == "test-gate" and hello.revocation_version == 1
                    status = host.request(address, messages.Status(id=0), messages.StatusReply)
                    assert status.mode == "normal"
                bundle = office.build(2, revoke=["card-002"]).read_bytes()
                outcomes = host.broadcast(list(ADDRESSES), "revocation", bundle, timeout=120)
                assert all(o is not None and o.installed for o in outcomes.values()), outcomes
            for rig in rigs:
                store = rig.daemon.runtime.revocation
                assert store is not None
                rig.wait_until(lambda s=store: s.status(datetime.now(UTC)).version == 2)
            assert bus.stats().collided == 0  # one talker at a time
        finally:
            for rig in rigs:
                rig.stop()
