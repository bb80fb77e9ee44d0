"""The terminal store: verdicts, freshness, atomic installs, failing closed."""

from __future__ import annotations

import os
import tempfile
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from terminald.core.revocation_check import RevocationCheck, RevocationState
from terminald.revocation import (
    BundleRejected,
    FreshnessPolicy,
    RejectReason,
    TrustedKeys,
    diff,
)
from terminald.revocation.keys import public_key_pem
from terminald.store.revocation_store import (
    RevocationStore,
    RevocationStoreConfig,
    load_trusted_keys,
)

from .revocation_support import DAY, ISSUER_A, ISSUER_B, T0, delta, revocations, snapshot

KEY = Ed25519PrivateKey.from_private_bytes(bytes([3]) * 32)
OTHER = Ed25519PrivateKey.from_private_bytes(bytes([4]) * 32)
V1 = revocations({ISSUER_A: ({10, 20, 30}, {40}), ISSUER_B: ((), ())})
V2 = revocations({ISSUER_A: ({10, 30, 40}, {41}), ISSUER_B: ({5}, ())})
GOOD, REVOKED, HOLD = RevocationState.GOOD, RevocationState.REVOKED, RevocationState.ON_HOLD
UNAVAILABLE, STALE = RevocationState.UNAVAILABLE, RevocationState.STALE


def make_store(
    tmp_path: Path, grace: timedelta = timedelta(0), *keys: Ed25519PrivateKey
) -> RevocationStore:
    trusted = TrustedKeys([k.public_key() for k in (keys or (KEY,))])
    config = RevocationStoreConfig(tmp_path / "revocation.state", trusted, FreshnessPolicy(grace))
    return RevocationStore(config)


def states(
    store: RevocationCheck, issuer: bytes, serials: list[int], now: datetime = T0
) -> list[RevocationState]:
    return [store.check(issuer, s, now).state for s in serials]


def test_no_data_fails_closed(tmp_path: Path) -> None:
    store = make_store(tmp_path)
    verdict = store.check(ISSUER_A, 10, T0)
    assert verdict.state is UNAVAILABLE
    assert "no revocation data yet" in verdict.detail
    assert store.status(T0).alarm


def test_snapshot_answers_and_survives_restart(tmp_path: Path) -> None:
    store = make_store(tmp_path)
    header = store.apply(snapshot(V1, KEY, 1), T0)
    assert header.version == 1
    expected = [REVOKED, REVOKED, HOLD, GOOD, GOOD]
    assert states(store, ISSUER_A, [10, 30, 40, 41, 0]) == expected
    assert states(store, ISSUER_B, [10]) == [GOOD]
    restarted = make_store(tmp_path)
    assert states(restarted, ISSUER_A, [10, 30, 40, 41, 0]) == expected
    status = restarted.status(T0)
    assert (status.version, status.revoked, status.hold, status.alarm) == (1, 3, 1, False)


def test_unknown_issuer_and_out_of_range_serial_fail_closed(tmp_path: Path) -> None:
    store = make_store(tmp_path)
    store.apply(snapshot(V1, KEY, 1), T0)
    unknown = store.check(b"\x01\x02", 10, T0)
    assert (
        unknown.state is UNAVAILABLE and "no revocation data for issuer key 0102" in unknown.detail
    )
    assert store.check(ISSUER_A, 2**32, T0).state is UNAVAILABLE
    assert store.check(ISSUER_A, -1, T0).state is UNAVAILABLE


def test_delta_applies_and_chain_reloads(tmp_path: Path) -> None:
    store = make_store(tmp_path)
    store.apply(snapshot(V1, KEY, 1), T0)
    store.apply(delta(diff(V1, V2), KEY, 2, 1, issued=T0 + DAY), T0 + DAY)
    expected = [REVOKED, GOOD, REVOKED, HOLD, REVOKED]
    assert states(store, ISSUER_A, [10, 20, 40, 41, 30], T0 + DAY) == expected
    restarted = make_store(tmp_path)
    assert states(restarted, ISSUER_A, [10, 20, 40, 41, 30], T0 + DAY) == expected
    assert states(restarted, ISSUER_B, [5], T0 + DAY) == [REVOKED]
    assert restarted.status(T0 + DAY).deltas == 1


@pytest.mark.parametrize(
    ("bundle", "reason"),
    [
        (snapshot(V2, KEY, 1), RejectReason.ROLLBACK),
        (delta(diff(V1, V2), KEY, 3, 2), RejectReason.WRONG_BASE),
        (snapshot(V2, OTHER, 2), RejectReason.UNKNOWN_KEY),
        (snapshot(V2, KEY, 2, issued=T0 - 10 * DAY), RejectReason.EXPIRED),
        (delta(diff(V2, V1), KEY, 2, 1), RejectReason.INCONSISTENT_DELTA),
    ],
    ids=["rollback", "wrong-base", "unknown-key", "frozen", "delta-for-other-content"],
)
def test_refused_bundles_leave_the_installed_data(
    tmp_path: Path, bundle: bytes, reason: RejectReason
) -> None:
    store = make_store(tmp_path)
    store.apply(snapshot(V1, KEY, 1), T0)
    before = (tmp_path / "revocation.state").read_bytes()
    with pytest.raises(BundleRejected) as info:
        store.apply(bundle, T0)
    assert info.value.reason is reason
    assert (tmp_path / "revocation.state").read_bytes() == before
    assert states(store, ISSUER_A, [20, 40]) == [REVOKED, HOLD]


def test_key_rotation(tmp_path: Path) -> None:
    store = make_store(tmp_path, timedelta(0), KEY, OTHER)
    store.apply(snapshot(V1, KEY, 1), T0)
    store.apply(delta(diff(V1, V2), OTHER, 2, 1), T0)  # new key signs the next delta
    assert states(store, ISSUER_B, [5]) == [REVOKED]
    # The old key is retired: the chain it signed no longer verifies, so fail closed...
    retired = make_store(tmp_path, timedelta(0), OTHER)
    assert retired.check(ISSUER_A, 10, T0).state is UNAVAILABLE
    assert "unknown_key" in retired.problem
    # ...until a snapshot signed by the new key arrives.
    retired.apply(snapshot(V2, OTHER, 3), T0)
    assert states(retired, ISSUER_B, [5]) == [REVOKED]


def test_stale_data_fails_closed_and_alarms(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = make_store(tmp_path)
    store.apply(snapshot(V1, KEY, 1, valid=DAY), T0)
    assert states(store, ISSUER_A, [0], T0 + DAY - timedelta(seconds=1)) == [GOOD]
    verdict = store.check(ISSUER_A, 0, T0 + DAY)
    assert verdict.state is STALE and not verdict.in_grace
    assert "expired" in verdict.detail
    assert "ALARM" in caplog.text
    assert store.status(T0 + DAY).alarm


def test_grace_admits_flagged_then_fails_closed(tmp_path: Path) -> None:
    store = make_store(tmp_path, timedelta(hours=6))
    store.apply(snapshot(V1, KEY, 1, valid=DAY), T0)
    inside = T0 + DAY + timedelta(hours=5)
    good = store.check(ISSUER_A, 0, inside)
    assert (good.state, good.in_grace) == (GOOD, True)
    assert store.check(ISSUER_A, 10, inside).state is REVOKED  # still refused in grace
    assert not store.check(ISSUER_A, 0, T0).in_grace
    assert store.check(ISSUER_A, 0, T0 + DAY + timedelta(hours=6)).state is STALE


def test_grace_is_bounded() -> None:
    with pytest.raises(ValueError, match="grace must be between"):
        FreshnessPolicy(timedelta(days=8))


@pytest.mark.parametrize("damage", ["truncate", "flip", "empty", "garbage"])
def test_damaged_state_file_fails_closed_at_start(tmp_path: Path, damage: str) -> None:
    store = make_store(tmp_path)
    store.apply(snapshot(V1, KEY, 1), T0)
    path = tmp_path / "revocation.state"
    data = bytearray(path.read_bytes())
    if damage == "truncate":
        data = data[: len(data) // 2]
    elif damage == "flip":
        data[len(data) // 3] ^= 0x04
    elif damage == "empty":
        data = bytearray()
    else:
        data = bytearray(b"\0" * 100)
    path.write_bytes(bytes(data))
    restarted = make_store(tmp_path)
    for serial in (0, 10, 40):
        assert restarted.check(ISSUER_A, serial, T0).state is UNAVAILABLE
    assert "unusable, failing closed" in restarted.problem
    # A fresh snapshot recovers the terminal.
    restarted.apply(snapshot(V2, KEY, 2), T0)
    assert states(restarted, ISSUER_B, [5]) == [REVOKED]


def test_failed_disk_write_keeps_old_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = make_store(tmp_path)
    store.apply(snapshot(V1, KEY, 1), T0)

    def broken_replace(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="No space"):
        store.apply(snapshot(V2, KEY, 2), T0)
    monkeypatch.undo()
    assert states(store, ISSUER_B, [5]) == [GOOD]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "revocation.state",
        "revocation.state.high",
    ]
    assert states(make_store(tmp_path), ISSUER_B, [5]) == [GOOD]


def test_stray_temporaries_are_removed_at_start(tmp_path: Path) -> None:
    (tmp_path / ".revocation.state.abc123.tmp").write_bytes(b"half a file")
    make_store(tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_trusted_keys_from_pem_files(tmp_path: Path) -> None:
    (tmp_path / "a.pub").write_bytes(public_key_pem(KEY.public_key()))
    (tmp_path / "b.pub").write_bytes(public_key_pem(OTHER.public_key()))
    assert len(load_trusted_keys([tmp_path / "a.pub", tmp_path / "b.pub"])) == 2


sets = st.sets(st.integers(0, 3000), max_size=200)


@given(sets, sets, sets, sets, st.lists(st.integers(0, 3100), max_size=50))
@settings(max_examples=40, deadline=None)
def test_store_agrees_with_a_reference_set(
    r1: set[int], h1: set[int], r2: set[int], h2: set[int], probes: list[int]
) -> None:
    h1, h2 = h1 - r1, h2 - r2
    first = revocations({ISSUER_A: (r1, h1)})
    second = revocations({ISSUER_A: (r2, h2)})
    with tempfile.TemporaryDirectory() as tmp:
        store = make_store(Path(tmp))
        for version, (content, revoked, hold) in enumerate(
            [(first, r1, h1), (second, r2, h2)], start=1
        ):
            if version == 1:
                store.apply(snapshot(content, KEY, 1), T0)
            else:
                store.apply(delta(diff(first, second), KEY, 2, 1), T0)
            for reader in (store, make_store(Path(tmp))):
                for serial in [*probes, *revoked, *hold]:
                    expected = REVOKED if serial in revoked else HOLD if serial in hold else GOOD
                    assert reader.check(ISSUER_A, serial, T0).state is expected


def test_readers_during_installs_never_see_a_partial_set(tmp_path: Path) -> None:
    import threading

    store = make_store(tmp_path)
    store.apply(snapshot(revocations({ISSUER_A: ({7}, ())}), KEY, 1), T0)
    seen: set[tuple[RevocationState, RevocationState]] = set()
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            # 7 is revoked and 8 good in every version; only the other serials change.
            seen.add((store.check(ISSUER_A, 7, T0).state, store.check(ISSUER_A, 8, T0).state))

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for version in range(2, 30):
            others = set(range(100, 100 + 50 * version, version))
            store.apply(snapshot(revocations({ISSUER_A: ({7} | others, ())}), KEY, version), T0)
    finally:
        stop.set()
        thread.join()
    assert seen == {(REVOKED, GOOD)}
