"""Installing a revocation bundle pushed over the link: through the running store, as
`terminald revocation apply` does; and no installer raises or writes on garbage."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from terminald.daemon.link_install_support import InstallOutcome
from terminald.sim.testpki import TestPkiManifest

from .link_install_rig import Site, bundle, make_site, refused
from .revocation_support import T0


@pytest.fixture
def site(tmp_path: Path, test_pki: TestPkiManifest) -> Site:
    return make_site(tmp_path, test_pki)


# --- revocation ---------------------------------------------------------------------------


def test_a_revocation_bundle_is_installed_through_the_store(site: Site) -> None:
    site.clock.now = (T0 + timedelta(days=1)).timestamp()
    outcome = site.installer.install_revocation(bundle(site, 2))
    assert outcome.installed and outcome.version == 2 and "snapshot version 2" in outcome.reason
    assert site.store.status(T0 + timedelta(days=1)).version == 2
    assert site.store.config.state_path.exists()
    again = site.installer.install_revocation(bundle(site, 2))
    assert again.installed and again.reason == "version 2 is already installed"
    refused(site.installer.install_revocation(bundle(site, 1)), "rollback")
    assert site.store.status(T0 + timedelta(days=1)).version == 2


def test_a_bad_revocation_bundle_is_refused_and_the_data_stays(site: Site) -> None:
    site.clock.now = (T0 + timedelta(days=1)).timestamp()
    assert site.installer.install_revocation(bundle(site, 1)).installed
    before = site.files()
    refused(
        site.installer.install_revocation(bundle(site, 2, Ed25519PrivateKey.generate())),
        "unknown_key",
    )
    refused(site.installer.install_revocation(b"TDRV" + bytes(200)), "malformed")
    site.clock.now = (T0 + timedelta(days=30)).timestamp()
    refused(site.installer.install_revocation(bundle(site, 3)), "expired")
    assert site.files() == before


def test_without_a_store_a_bundle_is_refused(site: Site) -> None:
    installer = site.installer_with(store=lambda: None)
    outcome = refused(installer.install_revocation(bundle(site, 1)), "no_store")
    assert "[revocation]" in outcome.reason


def test_outcomes_never_raise_on_arbitrary_bytes(site: Site) -> None:
    install: list[Callable[[bytes], InstallOutcome]] = [
        site.installer.install_time,
        site.installer.install_config,
        site.installer.install_enrolment,
        site.installer.install_revocation,
    ]
    before = site.files()
    for call in install:
        for data in (b"", b"\xc1", b"\x80", bytes(300)):
            assert not call(data).installed
    assert site.files() == before and site.reloads == []
