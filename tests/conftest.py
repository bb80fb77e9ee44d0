"""Fixtures shared by unit and integration tests."""

from __future__ import annotations

import pytest

from terminald.sim.testpki import TestPkiManifest, build_test_pki


@pytest.fixture(scope="session")
def test_pki(tmp_path_factory: pytest.TempPathFactory) -> TestPkiManifest:
    """One test PKI per run: three root generations, good cards and every broken kind."""
    return build_test_pki(tmp_path_factory.mktemp("pki"), cards=3)


# --- hardware-in-the-loop opt-in (tests/contract, tests/hil; hw/hil.md) -------------------
# pytest only takes options from conftests loaded at start-up, so the hook lives here.


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--hil",
        action="store_true",
        default=False,
        help="also run hardware contract tests against the real GPIO backend "
        "(on a Raspberry Pi wired to the HIL rig; same as TERMINALD_HIL=1)",
    )
