"""BREAK2: the enrolment store under a technician's and an attacker's hands."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from terminald.enrolment.errors import EnrolmentRejected, RejectReason
from terminald.revocation.keys import TrustedKeys
from terminald.store.enrolment_db import EnrolmentStore
from tests.unit.enrolment_support import NOW, signed, small_content

KEY = Ed25519PrivateKey.from_private_bytes(bytes([11]) * 32)
TRUSTED = TrustedKeys([KEY.public_key()])
LATER = NOW + timedelta(hours=1)


def lose(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def test_the_same_set_goes_back_in_after_the_database_was_lost(tmp_path: Path) -> None:
    """Found: a damaged enrolment.sqlite moved aside could not get the newest set back:
    the mark refused its own version as a rollback, so every card stayed refused until
    the back office built a new version. The very set the mark records is not older."""
    path = tmp_path / "enrolment.sqlite"
    newest = signed(small_content(), KEY, 7)
    store = EnrolmentStore(path)
    store.install(newest, TRUSTED, LATER)
    store.close()
    lose(path)
    fresh = EnrolmentStore(path)
    assert fresh.install(newest, TRUSTED, LATER).version == 7
    fresh.close()
    lose(path)
    fresh = EnrolmentStore(path)
    # Still refused: an older version, and the same version issued at another time
    # (another set the back office signed with that number).
    for bundle in (
        signed(small_content(), KEY, 6),
        signed(small_content(), KEY, 7, issued=NOW - timedelta(minutes=1)),
        signed(small_content({"E9": 9}), KEY, 7, issued=NOW - timedelta(minutes=1)),
    ):
        with pytest.raises(EnrolmentRejected) as caught:
            fresh.install(bundle, TRUSTED, LATER)
        assert caught.value.reason is RejectReason.ROLLBACK
    fresh.close()


def test_the_same_version_is_still_refused_over_an_installed_set(tmp_path: Path) -> None:
    path = tmp_path / "enrolment.sqlite"
    store = EnrolmentStore(path)
    store.install(signed(small_content(), KEY, 7), TRUSTED, LATER)
    with pytest.raises(EnrolmentRejected) as caught:
        store.install(signed(small_content({"E9": 9}), KEY, 7), TRUSTED, LATER)
    assert caught.value.reason is RejectReason.ROLLBACK
    store.close()


def test_a_running_store_follows_a_database_replaced_under_it(tmp_path: Path) -> None:
    """Found: the daemon's store keeps one connection per thread on the file it opened.
    A technician who moves a damaged enrolment.sqlite aside and applies the set again
    (another process, a new file at the same path) left the daemon reading the old,
    damaged inode: every card refused ``enrolment_unavailable`` until a restart — a
    reload keeps the store too."""
    path = tmp_path / "enrolment.sqlite"
    path.write_bytes(b"SQLite format 3\x00" + b"\x5a" * 8192)
    daemon = EnrolmentStore(path)
    assert daemon.info() is None and daemon.problem()
    for suffix in ("", "-wal", "-shm"):  # the technician moves it aside...
        if Path(f"{path}{suffix}").exists():
            Path(f"{path}{suffix}").rename(tmp_path / f"bad{suffix}")
    cli = EnrolmentStore(path)  # ... and applies the set again
    cli.install(signed(small_content(), KEY, 7), TRUSTED, LATER)
    cli.close()
    info = daemon.info()
    assert info is not None and info.version == 7 and daemon.problem() == ""
    assert daemon.lookup(bytes.fromhex("1ac1" * 10), 4660) is not None
    # And a healthy database replaced by another healthy one is followed too.
    lose(path)
    again = EnrolmentStore(path)
    again.install(signed(small_content({"E9": 9}), KEY, 8), TRUSTED, LATER)
    again.close()
    info = daemon.info()
    assert info is not None and info.version == 8
    daemon.close()


def test_a_damaged_person_is_unavailable_not_an_unknown_certificate(tmp_path: Path) -> None:
    """Found: with the set's header readable but a person's row damaged (or the person
    table gone), ``lookup`` answered None, so the policy refused ``unknown_certificate``:
    the card was recorded as one the back office must relink, for every holder whose row
    does not read. A read that fails now raises (the policy refuses
    ``enrolment_unavailable``, as the protocol allows); a certificate really not in the set
    is still None."""
    import sqlite3

    from terminald.core.auth import CardIdentity
    from terminald.core.policy import Policy, PolicySettings, Presence
    from terminald.core.reasons import Reason
    from terminald.store.enrolment_rows import EnrolmentStoreError
    from tests.unit.enrolment_support import ROOT_A

    path = tmp_path / "enrolment.sqlite"
    store = EnrolmentStore(path)
    store.install(signed(small_content(), KEY, 7), TRUSTED, LATER)
    with sqlite3.connect(path) as db:
        db.execute("UPDATE person SET record = x'c1c1' WHERE subject = 'E1'")
    db.close()
    assert store.lookup(ROOT_A, 999) is None  # not enrolled: still None
    with pytest.raises(EnrolmentStoreError):
        store.lookup(ROOT_A, 4660)
    assert store.problem()
    from zoneinfo import ZoneInfo

    settings = PolicySettings(
        purpose="gate", timezone=ZoneInfo("Asia/Tokyo"), enrolment_required=True
    )
    policy = Policy(settings, store, Presence(), None)
    decision = policy.decide(CardIdentity(4660, ROOT_A), LATER, None)
    assert decision.reason is Reason.ENROLMENT_UNAVAILABLE, decision
    store.close()
