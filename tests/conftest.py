"""Fixtures shared by unit and integration tests."""

from __future__ import annotations

import pytest

from terminald.sim.testpki import TestPkiManifest, build_test_pki


@pytest.fixture(scope="session")
def test_pki(tmp_path_factory: pytest.TempPathFactory) -> TestPkiManifest:
    """One test PKI per run: three root generations, good cards and every broken kind."""
    return build_test_pki(tmp_path_factory.mktemp("pki"), cards=3)
