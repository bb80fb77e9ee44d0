"""The spool of partial bulk transfers (terminald/store/spool.py): resume, crashes, limits."""

from __future__ import annotations

import errno
import hashlib
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest

import terminald.store.spool as spool_module
from terminald.link.bulk import (
    BulkOffer,
    BulkReceiver,
    BulkSender,
    BulkStatus,
    ChunkStoreError,
    ChunkStoreFull,
)
from terminald.store.spool import Spool
from tests.unit.link_bulk_support import Installer, content, transfer_id

REPO = Path(__file__).resolve().parents[2]
CHUNK = 256
SIZE = 40 * CHUNK + 100
DATA = content(SIZE)
SHA = hashlib.sha256(DATA).digest()


def chunk(index: int) -> bytes:
    return DATA[index * CHUNK : (index + 1) * CHUNK]


def make(directory: Path, **options: object) -> Spool:
    settings: dict[str, object] = {"max_bytes": 1 << 20, "sync_every": 4}
    settings.update(options)
    return Spool(directory, **settings)  # type: ignore[arg-type]


def test_chunks_come_back_after_a_reopen_and_read_back(tmp_path: Path) -> None:
    handle = make(tmp_path).open(SHA, SIZE, CHUNK, 0.0)
    assert handle.held.held == 0
    assert handle.part_path.stat().st_size == SIZE  # preallocated
    for index in (0, 3, 40):
        handle.write(index, chunk(index), 0.0)
    handle.close()
    again = make(tmp_path).open(SHA, SIZE, CHUNK, 0.0)
    assert sorted(i for i in range(41) if i in again.held) == [0, 3, 40]
    assert again.read(40) == chunk(40) and len(again.read(40)) == 100
    assert oct(again.part_path.stat().st_mode & 0o777) == "0o600"


def test_a_chunk_is_claimed_only_once_its_batch_is_synced(tmp_path: Path) -> None:
    handle = make(tmp_path, sync_every=4, sync_interval_s=10.0).open(SHA, SIZE, CHUNK, 0.0)
    for index in range(3):
        handle.write(index, chunk(index), now=1.0)
    # A crash now (another process opens the spool): nothing is claimed yet.
    assert make(tmp_path).open(SHA, SIZE, CHUNK, 0.0).held.held == 0
    handle = make(tmp_path, sync_every=4, sync_interval_s=10.0).open(SHA, SIZE, CHUNK, 0.0)
    for index in range(4):
        handle.write(index, chunk(index), now=1.0)
    assert make(tmp_path).open(SHA, SIZE, CHUNK, 0.0).held.held == 4  # the 4th synced
    handle = make(tmp_path, sync_every=100, sync_interval_s=10.0).open(SHA, SIZE, CHUNK, 0.0)
    handle.write(10, chunk(10), now=1.0)
    handle.tick(now=5.0)
    assert 10 not in make(tmp_path).open(SHA, SIZE, CHUNK, 0.0).held
    handle = make(tmp_path, sync_every=100, sync_interval_s=10.0).open(SHA, SIZE, CHUNK, 0.0)
    handle.write(10, chunk(10), now=1.0)
    handle.tick(now=11.0)  # the interval passed
    assert 10 in make(tmp_path).open(SHA, SIZE, CHUNK, 0.0).held


@pytest.mark.parametrize(
    "damage",
    [
        lambda map_path, part_path: map_path.write_bytes(b"garbage"),
        lambda map_path, part_path: map_path.write_bytes(map_path.read_bytes()[:-1]),
        lambda map_path, part_path: os.truncate(part_path, SIZE - 1),
        lambda map_path, part_path: part_path.unlink(),
    ],
    ids=["map garbage", "map short", "data short", "data gone"],
)
def test_a_damaged_partial_starts_over(tmp_path: Path, damage: object) -> None:
    handle = make(tmp_path).open(SHA, SIZE, CHUNK, 0.0)
    for index in range(8):
        handle.write(index, chunk(index), 0.0)
    handle.close()
    damage(handle.map_path, handle.part_path)  # type: ignore[operator]
    again = make(tmp_path).open(SHA, SIZE, CHUNK, 0.0)
    assert again.held.held == 0 and again.part_path.stat().st_size == SIZE


def test_a_map_of_another_shape_is_not_trusted(tmp_path: Path) -> None:
    handle = make(tmp_path).open(SHA, SIZE, CHUNK, 0.0)
    handle.write(0, chunk(0), 0.0)
    handle.close()
    assert make(tmp_path).open(SHA, SIZE, 2 * CHUNK, 0.0).held.held == 0


def test_the_oldest_partials_make_room(tmp_path: Path) -> None:
    spool = make(tmp_path, max_transfers=2, max_bytes=3 * SIZE - 1)
    shas = [bytes([n]) * 32 for n in range(3)]
    for age, sha in enumerate(shas):
        spool.open(sha, SIZE, CHUNK, 0.0).close()
        for path in (tmp_path / f"{sha.hex()}.part", tmp_path / f"{sha.hex()}.map"):
            os.utime(path, (1000.0 + age, 1000.0 + age))
    assert [p[1] for p in spool.partials()] == shas[1:]  # the first one went for the third
    big = bytes([9]) * 32
    spool.open(big, 2 * SIZE, CHUNK, 0.0)
    assert [p[1] for p in spool.partials()] == [big]  # size: both others had to go
    with pytest.raises(ChunkStoreFull, match="exceed"):
        spool.open(bytes([8]) * 32, 3 * SIZE, CHUNK, 0.0)


def test_clean_removes_stale_orphans_and_temporaries(tmp_path: Path) -> None:
    spool = make(tmp_path, max_age_s=100.0)
    old, fresh, active = (bytes([n]) * 32 for n in (1, 2, 3))
    for sha in (old, fresh):
        spool.open(sha, SIZE, CHUNK, 0.0).close()
    os.utime(tmp_path / f"{old.hex()}.part", (10.0, 10.0))
    os.utime(tmp_path / f"{old.hex()}.map", (10.0, 10.0))
    spool.open(active, SIZE, CHUNK, 0.0)  # open: never cleaned
    os.utime(tmp_path / f"{active.hex()}.part", (10.0, 10.0))
    orphan = tmp_path / f"{bytes([4]).hex() * 32}.part"
    orphan.write_bytes(b"x")
    temporary = tmp_path / f".{fresh.hex()}.map.abc.tmp"
    temporary.write_bytes(b"x")
    removed = spool.clean(wall_now=1000.0)
    names = {p.name for p in removed}
    assert names == {f"{old.hex()}.part", f"{old.hex()}.map", orphan.name, temporary.name}


def test_no_space_at_preallocation_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(fd: int, offset: int, length: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(spool_module.os, "posix_fallocate", full)
    with pytest.raises(ChunkStoreFull, match="no space"):
        make(tmp_path).open(SHA, SIZE, CHUNK, 0.0)
    assert list(tmp_path.iterdir()) == []


def test_no_space_for_a_chunk_or_the_map_changes_no_claim(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    handle = make(tmp_path, sync_every=1).open(SHA, SIZE, CHUNK, 0.0)
    handle.write(0, chunk(0), 0.0)
    before = handle.map_path.read_bytes()

    def full(*args: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    with monkeypatch.context() as patch:
        patch.setattr(spool_module.os, "pwrite", full)
        with pytest.raises(ChunkStoreFull):
            handle.write(1, chunk(1), 0.0)
    assert 1 not in handle.held
    with monkeypatch.context() as patch:
        patch.setattr(spool_module, "atomic_write", full)
        with pytest.raises(ChunkStoreFull):
            handle.write(2, chunk(2), 0.0)
    assert handle.map_path.read_bytes() == before  # the old map stands
    assert make(tmp_path).open(SHA, SIZE, CHUNK, 0.0).held.held == 1


def test_a_receiver_over_the_spool_resumes_after_a_restart_and_cleans_up(tmp_path: Path) -> None:
    installer = Installer()
    sender = BulkSender(DATA, "revocation", transfer_id(), chunk_size=CHUNK)
    receiver = BulkReceiver(make(tmp_path), installer, max_size=1 << 20)
    for _ in range(21):  # the offer and 20 chunks
        message = sender.next_message()
        assert message is not None
        for reply in receiver.on_message(message, 0.0):  # type: ignore[arg-type]
            sender.on_reply(reply)  # type: ignore[arg-type]
    receiver.on_message(BulkStatus(sender.offer.transfer_id), 0.0)  # syncs
    # Both sides restart: a new host sender (new id), a new receiver over the same directory.
    sender = BulkSender(DATA, "revocation", transfer_id(), chunk_size=CHUNK)
    receiver = BulkReceiver(make(tmp_path), installer, max_size=1 << 20)
    sent = []
    while (message := sender.next_message()) is not None:
        sent.append(message)
        for reply in receiver.on_message(message, 0.0):  # type: ignore[arg-type]
            sender.on_reply(reply)  # type: ignore[arg-type]
    assert isinstance(sent[0], BulkOffer)
    assert [m.index for m in sent[1:] if hasattr(m, "index")] == list(range(20, 41))
    assert sender.outcome is not None and sender.outcome.installed
    assert installer.calls[-1][2] == DATA
    assert list(tmp_path.iterdir()) == []  # installed: the partial is gone


def test_a_claimed_chunk_that_is_wrong_on_disk_fails_the_sha_and_is_discarded(
    tmp_path: Path,
) -> None:
    installer = Installer()
    sender = BulkSender(DATA, "revocation", transfer_id(), chunk_size=CHUNK)
    receiver = BulkReceiver(make(tmp_path, sync_every=1), installer, max_size=1 << 20)
    replies = []
    damaged = False
    while (message := sender.next_message()) is not None:
        if not damaged and getattr(message, "index", None) == 40:
            damaged = True
            part = next(tmp_path.glob("*.part"))
            with part.open("r+b") as handle:
                handle.write(bytes([DATA[0] ^ 0xFF]))  # the disk "forgets" chunk 0
        for reply in receiver.on_message(message, 0.0):  # type: ignore[arg-type]
            replies.append(reply)
            sender.on_reply(reply)  # type: ignore[arg-type]
    outcomes = [r.outcome for r in replies if type(r).__name__ == "BulkDone"]
    assert outcomes == ["sha-mismatch", "ok"]
    assert sender.outcome is not None and sender.outcome.installed
    assert installer.calls[-1][2] == DATA


def test_errors_name_the_file(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_bytes(b"")
    with pytest.raises(ChunkStoreError, match="file"):
        make(blocker / "spool").open(SHA, SIZE, CHUNK, 0.0)


CHILD = """
import hashlib, random, sys
from pathlib import Path
sys.path.insert(0, sys.argv[3])
from terminald.store.spool import Spool
from tests.unit.link_bulk_support import content
directory, seed = Path(sys.argv[1]), int(sys.argv[2])
CHUNK, SIZE = 256, 64 * 256 + 100
data = content(SIZE, 11)
sha = hashlib.sha256(data).digest()
spool = Spool(directory, max_bytes=1 << 20, sync_every=3, sync_interval_s=1e9)
rng = random.Random(seed)
print("ready", flush=True)
while True:
    handle = spool.open(sha, SIZE, CHUNK, 0.0)
    missing = list(handle.held.missing())
    rng.shuffle(missing)
    for index in missing:
        handle.write(index, data[index * CHUNK : (index + 1) * CHUNK], 0.0)
    handle.sync()
    handle.discard()
"""


def test_kill_9_at_random_moments_never_leaves_a_false_claim(tmp_path: Path) -> None:
    rng = random.Random(2026)
    size, chunk_size = 64 * 256 + 100, 256
    data = content(size, 11)
    sha = hashlib.sha256(data).digest()
    claimed_total = 0
    for iteration in range(30):
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(tmp_path), str(iteration), str(REPO)],
            stdout=subprocess.PIPE,
        )
        assert child.stdout is not None and child.stdout.readline() == b"ready\n"
        time.sleep(rng.uniform(0.0, 0.15))
        child.kill()
        child.wait()
        handle = Spool(tmp_path, max_bytes=1 << 20).open(sha, size, chunk_size, 0.0)
        for index in range(handle.held.count):
            if index in handle.held:
                assert handle.read(index) == data[index * chunk_size : (index + 1) * chunk_size]
        claimed_total += handle.held.held
        handle.close()
        assert not list(tmp_path.glob(".*.tmp"))  # the reopen cleared a torn map write
    assert claimed_total > 0  # the kills did land while chunks were being claimed


def test_a_file_system_without_fallocate_gets_a_sparse_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unsupported(fd: int, offset: int, length: int) -> None:
        raise OSError(errno.EOPNOTSUPP, "Operation not supported")

    monkeypatch.setattr(spool_module.os, "posix_fallocate", unsupported)
    handle = make(tmp_path).open(SHA, SIZE, CHUNK, 0.0)
    assert handle.part_path.stat().st_size == SIZE
    handle.write(40, chunk(40), 0.0)
    assert handle.read(40) == chunk(40)
