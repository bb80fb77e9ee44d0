"""terminald doctor against the real pcscd of the sandbox, run as the command an installer runs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from smartcard import scard

from terminald.sim.pcscd import READER_0, Pcscd
from terminald.sim.profile import CardProfile
from terminald.sim.testpki import TestPkiManifest
from tests.integration.conftest import VpcdCardFactory

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def config_path(tmp_path: Path, test_pki: TestPkiManifest) -> Path:
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    path = tmp_path / "terminald.toml"
    path.write_text(
        f"""
[terminal]
id = "doctor-test"

[card]
reader = "Virtual PCD"

[trust]
anchors = ["{test_pki.trust_dir}"]
include_builtin = false

[revocation]
required = false

[gpio]
board = "rpi4"
backend = "mock"

[state]
dir = "{state}"

[access]
policy = "any_card"
"""
    )
    return path


def doctor(config: Path) -> tuple[int, dict[str, Any]]:
    done = subprocess.run(
        [sys.executable, "-m", "terminald", "doctor", "--config", str(config), "--json"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
        check=False,
    )
    report: dict[str, Any] = json.loads(done.stdout)
    assert report["exit_code"] == done.returncode, done.stderr
    return done.returncode, report


def finding(report: dict[str, Any], check: str) -> dict[str, Any]:
    matching: list[dict[str, Any]] = [f for f in report["findings"] if f["check"] == check]
    assert len(matching) == 1, report
    return matching[0]


def _hold_exclusively(reader: str) -> tuple[Any, Any]:
    hresult, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    assert hresult == scard.SCARD_S_SUCCESS
    hresult, handle, _protocol = scard.SCardConnect(
        context,
        reader,
        scard.SCARD_SHARE_EXCLUSIVE,
        scard.SCARD_PROTOCOL_T0 | scard.SCARD_PROTOCOL_T1,
    )
    assert hresult == scard.SCARD_S_SUCCESS, scard.SCardGetErrorMessage(hresult)
    return context, handle


def test_doctor_finds_the_vpcd_reader_while_the_card_is_held_exclusively(
    pcscd: Pcscd,
    vpcd_card: VpcdCardFactory,
    throwaway_profile: CardProfile,
    config_path: Path,
) -> None:
    """As when the daemon holds the card: the reader is reported and the card stays held."""
    vpcd_card(throwaway_profile)
    context, handle = _hold_exclusively(READER_0)
    try:
        code, report = doctor(config_path)
        pcscd_finding = finding(report, "pcscd")
        reader = finding(report, "reader")
        profile = finding(report, "reader-profile")
        # Still ours: the doctor did not take or reset the card.
        hresult, *_ = scard.SCardStatus(handle)
        assert hresult == scard.SCARD_S_SUCCESS, scard.SCardGetErrorMessage(hresult)
    finally:
        scard.SCardDisconnect(handle, scard.SCARD_UNPOWER_CARD)
        scard.SCardReleaseContext(context)
    assert pcscd_finding["status"] == "ok" and READER_0 in pcscd_finding["message"]
    assert reader["status"] == "ok" and repr(READER_0) in reader["message"]
    assert profile["status"] == "ok" and "extended APDUs yes" in profile["message"]
    assert code == 0, report  # mock GPIO and no revocation only warn


def test_doctor_reports_pcscd_unreachable_when_it_is_stopped(
    pcscd: Pcscd, config_path: Path
) -> None:
    pcscd.stop()
    try:
        assert not Path("/run/pcscd/pcscd.comm").exists()
        code, report = doctor(config_path)
    finally:
        pcscd.start()
    found = finding(report, "pcscd")
    assert found["status"] == "fail"
    assert "systemctl enable --now pcscd.socket" in found["fix"]
    assert code == 1
    assert not [f for f in report["findings"] if f["check"] == "reader"]
