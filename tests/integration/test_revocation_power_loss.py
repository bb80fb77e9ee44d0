"""Power loss while installing: a writer process is SIGKILLed at random instants, many
times, and the store must then load exactly one of the versions it was given, never a mix
and never an accidental "nothing is revoked".

SIGKILL stops the writer between any two instructions, including mid-write and between
write, fsync, rename and the directory fsync. (It does not drop the page cache the way a
real power cut does; the fsyncs are what covers that, and the order is the argument in
docs/revocation.md.)
"""

from __future__ import annotations

import os
import random
import signal
import time
from pathlib import Path

import numpy as np
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from terminald.core.revocation_check import RevocationState
from terminald.revocation import IssuerEntries, RevocationSet, TrustedKeys, diff, serial_array
from terminald.revocation.chain import decode_chain, replay
from terminald.store.high_water import read_high_water
from terminald.store.revocation_store import RevocationStore, RevocationStoreConfig
from tests.unit.revocation_support import DAY, T0, delta, snapshot

KEY = Ed25519PrivateKey.from_private_bytes(bytes([9]) * 32)
TRUSTED = TrustedKeys([KEY.public_key()])
ISSUER = bytes.fromhex("c3" * 20)
ITERATIONS = 80


def _versions() -> dict[int, RevocationSet]:
    """Six versions whose sets all differ, each with tens of thousands of serials."""
    rng = np.random.default_rng(2024)
    out = {}
    for version in range(1, 7):
        revoked = serial_array(rng.choice(2_000_000, 40_000, replace=False))
        hold = serial_array(np.setdiff1d(rng.choice(2_000_000, 500, replace=False), revoked))
        out[version] = RevocationSet({ISSUER: IssuerEntries(revoked, hold)})
    return out


def _bundles(versions: dict[int, RevocationSet]) -> list[bytes]:
    """v1 snapshot, v2 and v3 deltas, v4 snapshot, v5 and v6 deltas."""
    out = []
    for version, content in versions.items():
        issued = T0 + version * DAY / 24
        if version in (1, 4):
            out.append(snapshot(content, KEY, version, issued=issued))
        else:
            change = diff(versions[version - 1], content)
            out.append(delta(change, KEY, version, version - 1, issued=issued))
    return out


def _config(directory: Path) -> RevocationStoreConfig:
    return RevocationStoreConfig(directory / "revocation.state", TRUSTED)


def _writer(directory: Path, bundles: list[bytes]) -> None:
    """In the child: install every bundle newer than what is on disk, then start over."""
    now = T0 + DAY
    while True:
        store = RevocationStore(_config(directory))
        installed = store.status(now).version or 0
        for data in bundles[installed:]:
            store.apply(data, now)
        # Starting over from version 1 is a back office starting over: the rollback
        # mark goes first (on purpose), then the state.
        (directory / "revocation.state.high").unlink()
        (directory / "revocation.state").unlink()


def test_killed_writer_never_leaves_a_mixed_or_empty_set(tmp_path: Path) -> None:
    versions = _versions()
    bundles = _bundles(versions)
    rng = random.Random(7)
    seen: set[int | None] = set()
    for _ in range(ITERATIONS):
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child never returns
            try:
                _writer(tmp_path, bundles)
            finally:
                os._exit(1)
        time.sleep(rng.uniform(0.0, 0.2))  # each install also fsyncs the rollback mark
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)

        store = RevocationStore(_config(tmp_path))
        status = store.status(T0 + DAY)
        seen.add(status.version)
        state_file = tmp_path / "revocation.state"
        if status.version is None:
            # Only acceptable when the writer had just deleted the file to start over.
            assert not state_file.exists(), store.problem
            assert store.check(ISSUER, 1, T0 + DAY).state is RevocationState.UNAVAILABLE
            continue
        replayed = replay(decode_chain(state_file.read_bytes()), TRUSTED)
        assert replayed.revocations == versions[status.version]
        expected = versions[status.version].issuers[ISSUER]
        for serial in (*expected.revoked[:50], *expected.hold[:20]):
            assert store.check(ISSUER, int(serial), T0 + DAY).state is not RevocationState.GOOD
        assert {p.name for p in tmp_path.iterdir()} <= {"revocation.state", "revocation.state.high"}
        # The state is written before the mark, so a kill between leaves the mark behind
        # (the load raises it), never ahead: a mark ahead would refuse the state itself.
        mark = read_high_water(tmp_path / "revocation.state.high")
        assert mark is None or mark.version <= status.version
    # The kills landed at several points of the sequence, not always the same one.
    assert len(seen) >= 3, seen
