"""No path takes a terminal's revocation data back to an older version (issue 8, as an
attacker tried it): not a live pickup of an older file, not an apply with other keys,
not a lost state file, not two installs at once."""

from __future__ import annotations

import os
import shutil
from datetime import timedelta
from pathlib import Path

import pytest

from terminald.core.revocation_check import RevocationState
from terminald.revocation import BundleRejected, RejectReason
from terminald.store.atomic_file import atomic_write

from .revocation_support import DAY, ISSUER_B, T0, snapshot
from .test_revocation_store import KEY, OTHER, V1, V2, make_store

REVOKED, GOOD = RevocationState.REVOKED, RevocationState.GOOD


def test_an_older_file_copied_in_is_not_picked_up_live(tmp_path: Path) -> None:
    (tmp_path / "old").mkdir()
    make_store(tmp_path / "old").apply(snapshot(V1, KEY, 1), T0)  # an old copy, kept aside
    running = make_store(tmp_path)
    running.apply(snapshot(V2, KEY, 2, issued=T0 + DAY), T0 + DAY)
    shutil.copy(tmp_path / "old" / "revocation.state", tmp_path / "revocation.state.new")
    os.replace(tmp_path / "revocation.state.new", tmp_path / "revocation.state")
    outcome = running.refresh()
    assert outcome is not None and outcome.installed is None
    assert "older than installed 2" in outcome.problem
    assert running.check(ISSUER_B, 5, T0 + DAY).state is REVOKED  # version 2 stays
    # At the next start the mark refuses the old file too: fail closed, never GOOD.
    restarted = make_store(tmp_path)
    assert restarted.check(ISSUER_B, 5, T0 + DAY).state is RevocationState.UNAVAILABLE
    assert "rollback" in restarted.problem and "revocation.state.high" in restarted.problem


def test_apply_with_other_keys_cannot_roll_back(tmp_path: Path) -> None:
    both = make_store(tmp_path, timedelta(0), KEY, OTHER)
    both.apply(snapshot(V2, KEY, 2, issued=T0 + DAY), T0 + DAY)  # revokes ISSUER_B 5
    # An apply given only OTHER cannot verify the installed chain, so it sees no data...
    other_only = make_store(tmp_path, timedelta(0), OTHER)
    assert other_only.problem
    # ...but the mark of what was installed still refuses the older snapshot.
    with pytest.raises(BundleRejected) as refused:
        other_only.apply(snapshot(V1, OTHER, 1), T0 + DAY)
    assert refused.value.reason is RejectReason.ROLLBACK
    assert "installed before" in str(refused.value)
    assert make_store(tmp_path, timedelta(0), KEY, OTHER).check(ISSUER_B, 5, T0 + DAY).state is (
        REVOKED
    )
    # A newer snapshot signed by the new key is how a rotation goes on.
    other_only.apply(snapshot(V2, OTHER, 3, issued=T0 + DAY), T0 + DAY)
    assert other_only.check(ISSUER_B, 5, T0 + DAY).state is REVOKED


def test_a_lost_state_file_lets_no_older_snapshot_in(tmp_path: Path) -> None:
    store = make_store(tmp_path)
    store.apply(snapshot(V2, KEY, 2, issued=T0 + DAY), T0 + DAY)
    (tmp_path / "revocation.state").unlink()
    fresh = make_store(tmp_path)
    with pytest.raises(BundleRejected, match="rollback"):
        fresh.apply(snapshot(V1, KEY, 1), T0 + DAY)
    with pytest.raises(BundleRejected, match="rollback"):  # same version, earlier issue
        fresh.apply(snapshot(V1, KEY, 3), T0 + DAY)
    fresh.apply(snapshot(V2, KEY, 3, issued=T0 + DAY), T0 + DAY)
    assert fresh.check(ISSUER_B, 5, T0 + DAY).state is REVOKED


def test_two_installs_at_once_never_undo_each_other(tmp_path: Path) -> None:
    make_store(tmp_path).apply(snapshot(V1, KEY, 1), T0)
    first, second = make_store(tmp_path), make_store(tmp_path)  # two `apply` processes
    first.apply(snapshot(V2, KEY, 3, issued=T0 + DAY), T0 + DAY)
    with pytest.raises(BundleRejected) as refused:  # second still holds version 1 in memory
        second.apply(snapshot(V1, KEY, 2, issued=T0 + DAY), T0 + DAY)
    assert refused.value.reason is RejectReason.ROLLBACK
    assert make_store(tmp_path).status(T0 + DAY).version == 3


def test_a_fifo_or_a_device_is_reported_once_not_at_every_poll(tmp_path: Path) -> None:
    store = make_store(tmp_path)
    store.apply(snapshot(V1, KEY, 1), T0)
    state = tmp_path / "revocation.state"
    state.unlink()
    os.mkfifo(state)
    outcome = store.refresh()
    assert outcome is not None and "not a regular file" in outcome.problem
    assert store.refresh() is None and store.refresh() is None
    state.unlink()
    state.symlink_to("/dev/zero")
    outcome = store.refresh()
    assert outcome is not None and "not a regular file" in outcome.problem
    assert store.refresh() is None
    state.unlink()
    outcome = store.refresh()
    assert outcome is not None and "removed" in outcome.problem
    assert store.refresh() is None
    assert store.status(T0).version == 1


def test_an_oversized_file_is_refused_without_reading_it(tmp_path: Path) -> None:
    store = make_store(tmp_path)
    store.apply(snapshot(V1, KEY, 1), T0)
    with (tmp_path / "big").open("wb") as handle:
        handle.truncate(100 * 1024 * 1024)  # sparse: costs no disk
    os.replace(tmp_path / "big", tmp_path / "revocation.state")
    outcome = store.refresh()
    assert outcome is not None and "more than" in outcome.problem
    assert store.status(T0).version == 1


def test_an_unreadable_mark_is_reported_and_rewritten(tmp_path: Path) -> None:
    store = make_store(tmp_path)
    store.apply(snapshot(V1, KEY, 1), T0)
    atomic_write(tmp_path / "revocation.state.high", b"{not json")
    again = make_store(tmp_path)  # logs the bad mark, keeps working from the state file
    assert again.check(ISSUER_B, 5, T0).state is GOOD
    again.apply(snapshot(V2, KEY, 2), T0)
    assert b'"version": 2' in (tmp_path / "revocation.state.high").read_bytes()
