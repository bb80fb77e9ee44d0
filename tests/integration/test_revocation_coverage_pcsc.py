"""Coverage end to end: partitioned CRLs → bundle → store → `terminald auth` on pcscd + vpcd.

The case of issue 8 §2: a bundle built from another town's partition CRL must not answer
"good" for card-001. Each bundle is built and installed by the CLI, and the card is tapped
on the virtual reader through the real pcscd, as `terminald auth` on a Pi would see it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from terminald.cli import main
from terminald.sim.card import VirtualJpkiCard
from terminald.sim.pcscd import READER_0, wait_for_card_state
from terminald.sim.testpki import TestPkiManifest
from terminald.sim.vpcd import VpcdCard
from tests.integration.test_revocation_cli_coverage import other_town

pytestmark = pytest.mark.pcscd

CARD = "card-001"


def install(pki: TestPkiManifest, work: Path, idp: str, revoke: bool) -> tuple[Path, Path]:
    """A bundle from one partition CRL of card-001's root, applied; (state, public key)."""
    entry = pki.card(CARD)
    work.mkdir()
    crl, key, bundle, state = (work / n for n in ("p.crl", "bo.key", "v1.bundle", "rev.state"))
    revoked = ["--revoke", f"{entry.serial}:keyCompromise"] if revoke else []
    steps = [
        ["sim", "crl", "--pki", str(pki.directory), "--root", str(entry.root), "--idp", idp,
         "--out", str(crl), *revoked],
        ["revocation", "keygen", "--out", str(key)],
        ["revocation", "build", "--crl", str(crl), "--key", str(key), "--version", "1",
         "--trust", str(pki.trust_dir), "--out", str(bundle)],
        ["revocation", "apply", str(bundle), "--revocation-state", str(state),
         "--backoffice-key", f"{key}.pub"],
    ]  # fmt: skip
    for step in steps:
        assert main(step) == 0, step
    return state, Path(f"{key}.pub")


def tap(
    pki: TestPkiManifest,
    insert: Callable[[VirtualJpkiCard], VpcdCard],
    state: Path,
    pub: Path,
) -> tuple[dict[str, object], VirtualJpkiCard, int]:
    card = VirtualJpkiCard(pki.load_profile(CARD))
    slot = insert(card)
    try:
        done = subprocess.run(
            [
                sys.executable, "-m", "terminald", "auth", "--trust", str(pki.trust_dir),
                "--pin-stdin", "--json", "--wait", "10", "--revocation-state", str(state),
                "--backoffice-key", str(pub),
            ],
            input=(pki.card(CARD).pin or "") + "\n",
            capture_output=True,
            text=True,
            timeout=60,
        )  # fmt: skip
    finally:
        slot.remove()
        assert wait_for_card_state(READER_0, False, 5)
    result: dict[str, object] = json.loads(done.stdout)
    return result, card, done.returncode


def verifies(card: VirtualJpkiCard) -> list[bytes]:
    """Every VERIFY (INS 20), the retry-counter query included."""
    return [c for c in card.commands() if c[1] == 0x20]


def test_another_towns_partition_does_not_cover_the_card(
    test_pki: TestPkiManifest, vpcd_card: Callable[..., VpcdCard], tmp_path: Path
) -> None:
    state, pub = install(test_pki, tmp_path / "other", other_town(test_pki, CARD), revoke=False)
    result, card, code = tap(test_pki, vpcd_card, state, pub)
    assert (result["verdict"], code) == ("revocation_unavailable", 1)
    own = str(test_pki.card(CARD).crl_distribution_point)
    assert f"does not cover CRL partition {own}" in str(result["detail"])
    assert verifies(card) == []  # refused before any PIN: no VERIFY at all


def test_its_own_towns_partition_revoking_it_refuses_it(
    test_pki: TestPkiManifest, vpcd_card: Callable[..., VpcdCard], tmp_path: Path
) -> None:
    own = str(test_pki.card(CARD).crl_distribution_point)
    state, pub = install(test_pki, tmp_path / "own", own, revoke=True)
    result, card, code = tap(test_pki, vpcd_card, state, pub)
    assert (result["verdict"], code) == ("cert_revoked", 1)
    assert verifies(card) == []


def test_its_own_towns_partition_not_revoking_it_admits_it(
    test_pki: TestPkiManifest, vpcd_card: Callable[..., VpcdCard], tmp_path: Path
) -> None:
    own = str(test_pki.card(CARD).crl_distribution_point)
    state, pub = install(test_pki, tmp_path / "own", own, revoke=False)
    result, card, code = tap(test_pki, vpcd_card, state, pub)
    assert (result["verdict"], code, result["revocation"]) == ("ok", 0, "good")
    assert len([c for c in verifies(card) if len(c) > 4]) == 1  # one VERIFY with the PIN
