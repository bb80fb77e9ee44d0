"""The gate daemon with a revocation store: revoked and held cards are refused before the PIN.

The back-office chain is the real one, run through the CLI: one test CRL per root of the
test PKI, a signed bundle, ``terminald revocation apply`` into the terminal's store. The
daemon then reads that store from its configuration, as on a Pi.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from terminald.cli import main
from terminald.core.reasons import Reason
from terminald.sim.pcscd import Pcscd
from terminald.sim.testpki import TestPkiManifest
from tests.integration.daemon_rig import gate_config, open_rig
from tests.integration.test_daemon import verifies

pytestmark = pytest.mark.pcscd

CARDS = ["card-001", "card-002", "card-003"]


def apply_bundle(tmp_path: Path, pki: TestPkiManifest, revoke: dict[str, str]) -> Path:
    """Sign a bundle revoking ``revoke`` (card name -> CRL reason); return the store path."""
    key, bundle, state = tmp_path / "bo.key", tmp_path / "v1.bundle", tmp_path / "state.rev"
    by_root: dict[str, list[str]] = {str(pki.card(name).root): [] for name in CARDS}
    for name, reason in revoke.items():
        by_root[str(pki.card(name).root)].append(f"{pki.card(name).serial}:{reason}")
    crls = []
    for root, serials in by_root.items():
        crl = tmp_path / f"{root}.crl"
        revoke_args = ["--revoke", *serials] if serials else []
        args = ["sim", "crl", "--pki", str(pki.directory), "--root", root, "--out", str(crl)]
        assert main([*args, *revoke_args]) == 0
        crls.append(str(crl))
    assert main(["revocation", "keygen", "--out", str(key)]) == 0
    build = ["revocation", "build", "--crl", *crls, "--key", str(key), "--version", "1"]
    build += ["--trust", str(pki.trust_dir)]  # the CRLs' issuers: the test PKI's roots
    assert main([*build, "--out", str(bundle)]) == 0
    apply = ["revocation", "apply", str(bundle), "--revocation-state", str(state)]
    assert main([*apply, "--backoffice-key", f"{key}.pub"]) == 0
    return state


def store_section(state: Path, key: Path) -> str:
    return f'required = true\nstate_path = "{state}"\nbackoffice_keys = ["{key}"]'


def test_revoked_and_held_cards_are_refused_before_the_pin(
    tmp_path: Path, test_pki: TestPkiManifest, pcscd: Pcscd
) -> None:
    state = apply_bundle(
        tmp_path, test_pki, {"card-001": "keyCompromise", "card-002": "certificateHold"}
    )
    section = store_section(state, tmp_path / "bo.key.pub")
    rig = open_rig(gate_config(tmp_path, test_pki, enrolled=CARDS, revocation=section), test_pki)
    try:
        for name, reason in (("card-001", Reason.CERT_REVOKED), ("card-002", Reason.CERT_ON_HOLD)):
            card = rig.tap(name)
            assert rig.verdict() is reason
            assert verifies(card.commands()) == 0
        rig.tap("card-003")
        rig.wait_state("pin_entry")
        rig.type(rig.pin("card-003") + "#")
        assert rig.verdict() is Reason.OK
    finally:
        rig.stop()


def test_required_revocation_without_data_refuses_everyone(
    tmp_path: Path, test_pki: TestPkiManifest, pcscd: Pcscd
) -> None:
    assert main(["revocation", "keygen", "--out", str(tmp_path / "bo.key")]) == 0
    section = store_section(tmp_path / "never-applied.rev", tmp_path / "bo.key.pub")
    rig = open_rig(gate_config(tmp_path, test_pki, enrolled=CARDS, revocation=section), test_pki)
    try:
        card = rig.tap("card-001")
        assert rig.verdict() is Reason.REVOCATION_UNAVAILABLE
        assert verifies(card.commands()) == 0
        assert rig.relay_energised_levels() == [False]
    finally:
        rig.stop()
