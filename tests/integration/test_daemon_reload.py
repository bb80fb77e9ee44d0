"""SIGHUP never stalls the loop (issue 9 §3): the configuration and every file it names
are read off the loop, with a time bound, and swapped in only when whole and good."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import terminald.daemon.reload as reload_module
from terminald.core.hardware import DoorInput
from terminald.core.reasons import Reason
from terminald.daemon.reload import Reload
from terminald.sim.pcscd import Pcscd
from terminald.sim.testpki import TestPkiManifest
from tests.integration.daemon_rig import GateRig, gate_config, open_rig

pytestmark = pytest.mark.pcscd

ENROLLED = ["card-001"]


@pytest.fixture
def gate(tmp_path: Path, test_pki: TestPkiManifest, pcscd: Pcscd) -> Iterator[GateRig]:
    rig = open_rig(gate_config(tmp_path, test_pki, enrolled=ENROLLED), test_pki)
    yield rig
    rig.stop()


@pytest.fixture
def stalled_disk(monkeypatch: pytest.MonkeyPatch) -> threading.Event:
    """The next reload's reading hangs until the event is set (a stalled SD card)."""
    release, real_build = threading.Event(), reload_module.build
    calls = [0]

    def build(*args: Any) -> Any:
        calls[0] += 1
        if calls[0] == 1:
            release.wait(30)
        return real_build(*args)

    monkeypatch.setattr(reload_module, "build", build)
    return release


def rex_opens(gate: GateRig) -> None:
    before = len(gate.relay_pulses())
    gate.set_input(DoorInput.REX, True)
    gate.wait_until(lambda: len(gate.relay_pulses()) > before, timeout=5)
    gate.set_input(DoorInput.REX, False)


def test_a_fifo_in_the_configuration_is_refused_without_blocking(
    gate: GateRig, tmp_path: Path
) -> None:
    path = gate.daemon.config.source
    assert path is not None
    fifo = tmp_path / "anchors.fifo"
    os.mkfifo(fifo)
    original = path.read_text()
    trust = f'anchors = ["{gate.pki.trust_dir}"]'
    path.write_text(
        original.replace('mode = "normal"', 'mode = "lockdown"').replace(
            trust, f'anchors = ["{fifo}"]'
        )
    )
    assert not gate.daemon.reload(timeout=10)  # refused at once: a FIFO is never opened
    assert gate.daemon.snapshot().mode == "normal"
    rex_opens(gate)


def test_a_stalled_read_never_stalls_the_loop_and_is_given_up(
    gate: GateRig, stalled_disk: threading.Event, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reload_module, "RELOAD_TIMEOUT_S", 3.0)
    path = gate.daemon.config.source
    assert path is not None
    original = path.read_text()
    path.write_text(original.replace('mode = "normal"', 'mode = "lockdown"'))
    outcome: list[bool] = []
    asked = threading.Thread(target=lambda: outcome.append(gate.daemon.reload()))
    asked.start()
    gate.wait_until(lambda: gate.daemon.reloader.busy, timeout=5)
    # While the builder hangs, the loop serves REX and a whole card transaction.
    rex_opens(gate)
    gate.tap("card-001")
    gate.wait_state("pin_entry")
    gate.type(gate.pin("card-001") + "#")
    assert gate.verdict() is Reason.OK
    asked.join(10)
    assert outcome == [False]  # given up after the bound: the running configuration stays
    assert gate.daemon.snapshot().mode == "normal"
    assert not gate.daemon.reloader.busy
    stalled_disk.set()  # the stuck read finishing later changes nothing
    time.sleep(0.5)
    assert gate.daemon.snapshot().mode == "normal"
    assert gate.daemon.reload()  # and the next SIGHUP takes effect
    assert gate.daemon.snapshot().mode == "lockdown"


def test_a_sighup_during_a_reload_is_not_lost(gate: GateRig, stalled_disk: threading.Event) -> None:
    path = gate.daemon.config.source
    assert path is not None
    original = path.read_text()
    gate.daemon.post(Reload())
    gate.wait_until(lambda: gate.daemon.reloader.busy, timeout=5)
    # The operator edits the file and sends SIGHUP again while the first read hangs.
    path.write_text(original.replace('mode = "normal"', 'mode = "lockdown"'))
    second: list[bool] = []
    asked = threading.Thread(target=lambda: second.append(gate.daemon.reload()))
    asked.start()
    time.sleep(0.3)
    stalled_disk.set()
    asked.join(15)
    assert second == [True]
    assert gate.daemon.snapshot().mode == "lockdown"
