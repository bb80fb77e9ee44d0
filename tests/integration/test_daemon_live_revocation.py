"""The running daemon decides on the revocation data that is installed, as soon as it is.

Issue 8 §1 and §4, through the real pcscd + vpcd: ``terminald revocation apply`` run
beside a running daemon (no reload, no restart) changes the very next decision; a state
file that fails to load keeps the data in force; and a clock that runs behind the
newest signed time the terminal holds refuses before any PIN, across restarts too.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from terminald.cli import main
from terminald.core.reasons import Reason
from terminald.core.trusted_time import BUILD_EPOCH
from terminald.sim.pcscd import Pcscd
from terminald.sim.testpki import TestPkiManifest
from terminald.store.atomic_file import atomic_write
from terminald.store.trusted_time import TRUSTED_TIME_NAME
from tests.integration.daemon_rig import GateRig, gate_config, open_rig
from tests.integration.test_daemon import verifies

pytestmark = pytest.mark.pcscd

CARDS = ["card-001", "card-002", "expired"]


class BackOffice:
    """Signs bundles with one key; each ``publish`` builds a snapshot and applies it."""

    def __init__(self, directory: Path, pki: TestPkiManifest) -> None:
        self.directory, self.pki = directory, pki
        self.key = directory / "bo.key"
        self.state = directory / "state" / "revocation.state"
        self.state.parent.mkdir(exist_ok=True)
        assert main(["revocation", "keygen", "--out", str(self.key)]) == 0

    def section(self) -> str:
        return f'required = true\nstate_path = "{self.state}"\nbackoffice_keys = ["{self.key}.pub"]'

    def build(self, version: int, revoke: list[str]) -> Path:
        roots = sorted({str(self.pki.card(name).root) for name in CARDS})
        crls, issuers = [], []
        for root in roots:
            serials = [
                f"{self.pki.card(name).serial}:keyCompromise"
                for name in revoke
                if self.pki.card(name).root == root
            ]
            crl = self.directory / f"{root}-v{version}.crl"
            args = ["sim", "crl", "--pki", str(self.pki.directory), "--root", root]
            args += ["--out", str(crl)] + (["--revoke", *serials] if serials else [])
            assert main(args) == 0
            crls.append(str(crl))
            issuers.append(str(self.pki.directory / "ca" / f"{root}.pem"))
        bundle = self.directory / f"v{version}.bundle"
        build = ["revocation", "build", "--crl", *crls, "--issuer-cert", *issuers]
        build += ["--trust", str(self.pki.trust_dir)]  # what --issuer-cert must chain to
        build += ["--key", str(self.key), "--version", str(version), "--out", str(bundle)]
        assert main(build) == 0
        return bundle

    def apply(self, bundle: Path) -> None:
        apply = ["revocation", "apply", str(bundle), "--revocation-state", str(self.state)]
        assert main([*apply, "--backoffice-key", f"{self.key}.pub"]) == 0


def grant(rig: GateRig, name: str) -> Reason:
    rig.tap(name)
    rig.wait_state("pin_entry")
    rig.type(rig.pin(name) + "#")
    return rig.verdict()


def test_a_bundle_applied_while_running_decides_the_next_tap(
    tmp_path: Path, test_pki: TestPkiManifest, pcscd: Pcscd
) -> None:
    office = BackOffice(tmp_path, test_pki)
    office.apply(office.build(1, revoke=[]))
    config = gate_config(tmp_path, test_pki, enrolled=CARDS, revocation=office.section())
    rig = open_rig(config, test_pki)
    try:
        assert grant(rig, "card-001") is Reason.OK
        # Applied while the daemon runs; the tap follows at once (no wait, no reload).
        office.apply(office.build(2, revoke=["card-001"]))
        card = rig.tap("card-001")
        assert rig.verdict() is Reason.CERT_REVOKED
        assert verifies(card.commands()) == 0
        assert rig.daemon.runtime.revocation is not None
        assert rig.daemon.runtime.revocation.status(datetime.now(UTC)).version == 2
        assert grant(rig, "card-002") is Reason.OK
    finally:
        rig.stop()


def test_the_first_bundle_into_an_empty_store_is_picked_up(
    tmp_path: Path, test_pki: TestPkiManifest, pcscd: Pcscd
) -> None:
    office = BackOffice(tmp_path, test_pki)
    config = gate_config(tmp_path, test_pki, enrolled=CARDS, revocation=office.section())
    rig = open_rig(config, test_pki)
    try:
        card = rig.tap("card-001")
        assert rig.verdict() is Reason.REVOCATION_UNAVAILABLE
        assert verifies(card.commands()) == 0
        office.apply(office.build(1, revoke=[]))
        # The watcher picks it up by itself, with no card on the reader.
        store = rig.daemon.runtime.revocation
        assert store is not None
        rig.wait_until(lambda: store.status(datetime.now(UTC)).version == 1, timeout=5)
        assert grant(rig, "card-001") is Reason.OK
    finally:
        rig.stop()


def test_a_state_file_that_fails_to_load_keeps_the_installed_data(
    tmp_path: Path, test_pki: TestPkiManifest, pcscd: Pcscd
) -> None:
    office = BackOffice(tmp_path, test_pki)
    office.apply(office.build(1, revoke=["card-001"]))
    config = gate_config(tmp_path, test_pki, enrolled=CARDS, revocation=office.section())
    rig = open_rig(config, test_pki)
    try:
        atomic_write(office.state, b"TDRS this is not a state file")
        card = rig.tap("card-001")
        assert rig.verdict() is Reason.CERT_REVOKED  # version 1 still decides
        assert verifies(card.commands()) == 0
        assert grant(rig, "card-002") is Reason.OK
        rows = rig.daemon.audit.recent(20, "revocation") if rig.daemon.audit else []
        assert any("stays installed" in row.detail for row in rows)
    finally:
        rig.stop()


def test_a_clock_behind_the_newest_signed_time_refuses_before_the_pin(
    tmp_path: Path, test_pki: TestPkiManifest, pcscd: Pcscd
) -> None:
    """After a power cut the Pi's clock runs behind: an expired card must not look valid."""
    office = BackOffice(tmp_path, test_pki)
    office.apply(office.build(1, revoke=[]))
    expired_at = test_pki.card("expired").not_after
    assert expired_at is not None
    # The expired card looks valid a day before it expired (unless that is before the
    # build's epoch, which is refused on its own account); the bundle is from today.
    behind = max(expired_at - timedelta(days=1), BUILD_EPOCH + timedelta(days=1))
    config = gate_config(tmp_path, test_pki, enrolled=CARDS, revocation=office.section())
    rig = open_rig(config, test_pki, clock=lambda: behind)
    try:
        for name in ("expired", "card-001"):
            card = rig.tap(name)
            record = rig.next_record("refused")
            assert record.reason is Reason.CLOCK_UNTRUSTED
            assert "revocation data version 1" in record.detail
            assert card.commands() == [], "not one APDU before the clock is trusted"
        assert "CLOCK UNTRUSTED" in rig.daemon._status()
        floor = tmp_path / "state" / TRUSTED_TIME_NAME
        rig.wait_until(floor.exists, timeout=5)
    finally:
        rig.stop()
    # The newest signed time outlives the revocation data: with the state file gone
    # (fail closed anyway) the kept time still names the clock as the problem.
    kept = json.loads(floor.read_text())
    assert "revocation data version 1" in kept["source"]
    office.state.unlink()
    rig = open_rig(config, test_pki, clock=lambda: behind)
    try:
        card = rig.tap("card-001")
        assert rig.verdict() is Reason.CLOCK_UNTRUSTED
        assert card.commands() == []
    finally:
        rig.stop()
    # With the right time the same terminal admits again.
    office.apply(office.build(2, revoke=[]))
    rig = open_rig(config, test_pki)
    try:
        assert grant(rig, "card-001") is Reason.OK
    finally:
        rig.stop()
