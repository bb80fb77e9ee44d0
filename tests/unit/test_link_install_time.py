"""Installing a signed time pushed by the back office: the challenge, the backward-jump
rule, the trusted-time floor, and a clock the unit may not let the daemon set."""

from __future__ import annotations

import errno
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from terminald.core.trusted_time import SignedTime
from terminald.daemon.link_install import NonceIssuer
from terminald.daemon.link_install_support import CAP_SYS_TIME_NOTE
from terminald.link import messages
from terminald.sim.testpki import TestPkiManifest
from terminald.store.trusted_time import TrustedTimeFile

from .link_install_rig import NOW, Site, bundle, make_site, refused
from .revocation_support import T0


@pytest.fixture
def site(tmp_path: Path, test_pki: TestPkiManifest) -> Site:
    return make_site(tmp_path, test_pki)


# --- time ---------------------------------------------------------------------------------


def test_a_signed_time_advances_the_trusted_time_and_sets_the_clock(site: Site) -> None:
    outcome = site.installer.install_time(site.time(NOW + 100.25))
    assert outcome.installed and outcome.clock_set and outcome.notes == ()
    assert outcome.offset == pytest.approx(100.25)
    assert site.clock.set_to == [NOW + 100.25]
    assert site.trusted.floor.at == datetime.fromtimestamp(NOW + 100.25, UTC)
    assert TrustedTimeFile(site.trusted.path).floor.at == site.trusted.floor.at  # durable


def test_a_time_object_is_single_use(site: Site) -> None:
    data = site.time(NOW + 1)
    assert site.installer.install_time(data).installed
    refused(site.installer.install_time(data), "nonce")
    assert len(site.clock.set_to) == 1


def test_a_challenge_this_terminal_did_not_issue_is_refused(site: Site) -> None:
    site.installer.issue_nonce()
    outcome = refused(site.installer.install_time(site.time(NOW, nonce=bytes(16))), "nonce")
    assert "ask for a new one" in outcome.reason and site.clock.set_to == []


def test_an_expired_challenge_is_refused(site: Site) -> None:
    data = site.time(NOW + 1)
    site.clock.mono += 60.0
    refused(site.installer.install_time(data), "nonce")


def test_a_large_backward_jump_needs_force_and_keeps_the_challenge_for_it(site: Site) -> None:
    data = site.time(NOW - 600)
    outcome = refused(site.installer.install_time(data), "backward_jump")
    assert outcome.offset == pytest.approx(-600) and "force" in outcome.reason
    assert site.clock.set_to == []
    forced = site.installer.install_time(data, force=True)
    assert forced.installed and site.clock.set_to == [NOW - 600]


def test_a_small_backward_step_needs_no_force(site: Site) -> None:
    assert site.installer.install_time(site.time(NOW - 60)).installed


def test_a_time_behind_the_trusted_time_is_refused_even_forced(site: Site) -> None:
    site.trusted.advance(SignedTime(datetime.fromtimestamp(NOW + 3600, UTC), "a bundle"))
    outcome = refused(
        site.installer.install_time(site.time(NOW), force=True), "behind_trusted_time"
    )
    assert "a bundle" in outcome.reason and site.clock.set_to == []


def test_a_time_behind_the_installed_revocation_data_is_refused(site: Site) -> None:
    site.clock.now = (T0 + timedelta(days=1)).timestamp()
    assert site.installer.install_revocation(bundle(site, 5)).installed  # issued T0 + 5 h
    early = (T0 + timedelta(hours=4)).timestamp()
    outcome = refused(
        site.installer.install_time(site.time(early), force=True), "behind_trusted_time"
    )
    assert "revocation data version 5" in outcome.reason


def test_without_cap_sys_time_the_time_is_applied_and_the_clock_not_set(site: Site) -> None:
    site.clock.refuse = PermissionError(errno.EPERM, "Operation not permitted")
    outcome = site.installer.install_time(site.time(NOW + 5))
    assert outcome.installed and not outcome.clock_set
    assert outcome.notes == (CAP_SYS_TIME_NOTE,)
    assert site.trusted.floor.at == datetime.fromtimestamp(NOW + 5, UTC)
    reply = outcome.as_message(9)
    assert isinstance(reply, messages.TimeReply)
    assert messages.decode(messages.encode(reply)) == reply
    assert reply.applied and not reply.clock_set and "CAP_SYS_TIME" in reply.reason


def test_a_time_signed_by_another_key_or_for_another_terminal_is_refused(site: Site) -> None:
    other = Ed25519PrivateKey.generate()
    refused(site.installer.install_time(site.time(NOW, signing_key=other)), "unknown_key")
    refused(site.installer.install_time(site.time(NOW, terminal="gate-2")), "other_terminal")
    refused(site.installer.install_time(site.sign("config", "x")), "wrong_kind")
    refused(site.installer.install_time(b"\x00garbage"), "malformed")
    assert site.clock.set_to == []


def test_nonce_issuer_is_bounded_and_forgets_the_oldest() -> None:
    issuer = NonceIssuer(lifetime_s=60, max_outstanding=2)
    first, second, third = (issuer.issue(0.0) for _ in range(3))
    assert issuer.problem(first, 1.0) and not issuer.problem(third, 1.0)
    assert issuer.consume(second, 1.0) and not issuer.consume(second, 1.0)
    assert issuer.problem(None, 1.0) == "the time object carries no challenge"
