"""Partial bulk transfers kept on disk, so a transfer resumes after a line cut or a restart.

Per transfer, named by the SHA-256 of the whole content (docs/protocol.md §5):

- ``<sha256 hex>.part``: the content's size, preallocated (``posix_fallocate``, so a full
  disk is found at the offer, not mid-transfer); each chunk written in place (``os.pwrite``).
- ``<sha256 hex>.map``: ``b"TDSPOOL1" | size u64 BE | chunk size u32 BE | sha256 (32) |
  bitmap`` (bit i of byte i // 8, LSB first), replaced atomically (store/atomic_file.py).

Crash safety: a chunk is claimed by the map only after the data file was fsynced with it
in, so a map never claims a chunk whose bytes are not on disk — except through a lying disk,
which the final SHA-256 over the whole catches (the receiver then discards the transfer).
Syncing is batched: every ``sync_every`` chunks or ``sync_interval_s`` seconds (the caller
passes ``now``), at a status request, and at close; a crash loses at most one batch.

Bounded: at most ``max_transfers`` partials and ``max_bytes`` in all — opening a new one
drops the least recently written first — and :meth:`Spool.clean` removes partials untouched
for ``max_age_s`` seconds, orphans and temporaries. Errors are :class:`ChunkStoreFull`
(ENOSPC, or the limits) and :class:`ChunkStoreError` (any other I/O error), each naming the
file; a failed write never changes the map.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import struct
import time
from pathlib import Path

from terminald.files import read_limited
from terminald.link.bulk_errors import ChunkStoreError, ChunkStoreFull
from terminald.link.bulk_messages import SHA256_SIZE, chunk_count
from terminald.link.bulk_ranges import MAX_CHUNKS, Bitmap
from terminald.store.atomic_file import atomic_write, fsync_directory, remove_stale_temporaries

log = logging.getLogger(__name__)

_MAGIC = b"TDSPOOL1"
_HEADER = struct.Struct(">8sQI32s")
_MAX_MAP = _HEADER.size + MAX_CHUNKS // 8


def _error(action: str, path: Path, exc: OSError) -> ChunkStoreError:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return ChunkStoreFull(f"spool: no space to {action} {path} ({exc.strerror})")
    return ChunkStoreError(f"spool: cannot {action} {path} ({exc.strerror or exc})")


def _preallocate(fd: int, size: int) -> None:
    """Reserve the blocks now, so ENOSPC comes at the offer; a file system without
    fallocate (some FUSE, older NFS) gets a sparse file and may then fail at a write."""
    try:
        os.posix_fallocate(fd, 0, size)
    except OSError as exc:
        if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL):
            raise
        os.ftruncate(fd, size)


class SpoolFile:
    """One partial transfer (the ChunkFile of terminald.link.bulk_receiver)."""

    def __init__(self, spool: Spool, sha256: bytes, size: int, chunk_size: int) -> None:
        self._spool = spool
        self.sha256, self.size, self.chunk_size = sha256, size, chunk_size
        name = sha256.hex()
        self.part_path = spool.directory / f"{name}.part"
        self.map_path = spool.directory / f"{name}.map"
        self._held = Bitmap(chunk_count(size, chunk_size))
        self._unsynced = 0
        self._first_unsynced = 0.0
        self._fd = -1

    # -- opening ------------------------------------------------------------------------

    def _open(self) -> None:
        remove_stale_temporaries(self.map_path)
        held = self._read_map()
        try:
            existed = self.part_path.exists() and self.part_path.stat().st_size == self.size
            if held is None or not existed:
                held = None
                with contextlib.suppress(FileNotFoundError):
                    self.map_path.unlink()  # never a map over a data file it did not describe
            self._fd = os.open(self.part_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise _error("open", self.part_path, exc) from exc
        if held is not None:
            self._held = held
            return
        try:
            os.ftruncate(self._fd, 0)
            _preallocate(self._fd, self.size)
            os.fsync(self._fd)
            self._write_map(self._held)
        except OSError as exc:
            self.discard()
            raise _error("preallocate", self.part_path, exc) from exc

    def _read_map(self) -> Bitmap | None:
        try:
            data = read_limited(self.map_path, _MAX_MAP)
        except FileNotFoundError:
            return None
        except OSError as exc:
            log.warning(
                "spool: %s unreadable (%s): starting that transfer over", self.map_path, exc
            )
            return None
        try:
            magic, size, chunk_size, sha = _HEADER.unpack_from(data)
            if (magic, size, chunk_size, sha) != (_MAGIC, self.size, self.chunk_size, self.sha256):
                raise ValueError("header does not match the offer")
            return Bitmap.from_bytes(self._held.count, data[_HEADER.size :])
        except (struct.error, ValueError) as exc:  # BulkError is a ValueError
            log.warning(
                "spool: %s is not this transfer's map (%s): starting over", self.map_path, exc
            )
            return None

    def _write_map(self, held: Bitmap) -> None:
        header = _HEADER.pack(_MAGIC, self.size, self.chunk_size, self.sha256)
        atomic_write(self.map_path, header + held.to_bytes())

    # -- the ChunkFile protocol ---------------------------------------------------------

    @property
    def held(self) -> Bitmap:
        """Every chunk written so far (what is durable is what the map on disk says)."""
        return self._held

    def write(self, index: int, data: bytes, now: float) -> None:
        expected = min(self.chunk_size, self.size - index * self.chunk_size)
        if self._fd < 0 or not 0 <= index < self._held.count or len(data) != expected:
            raise ChunkStoreError(f"spool: chunk {index} ({len(data)} bytes) does not fit")
        try:
            written = os.pwrite(self._fd, data, index * self.chunk_size)
        except OSError as exc:
            raise _error("write", self.part_path, exc) from exc
        if written != len(data):
            raise ChunkStoreFull(f"spool: short write to {self.part_path}")
        if self._held.add(index):
            if not self._unsynced:
                self._first_unsynced = now
            self._unsynced += 1
        self.tick(now)

    def read(self, index: int) -> bytes:
        expected = min(self.chunk_size, self.size - index * self.chunk_size)
        try:
            data = os.pread(self._fd, expected, index * self.chunk_size)
        except OSError as exc:
            raise _error("read", self.part_path, exc) from exc
        if len(data) != expected:
            raise ChunkStoreError(f"spool: {self.part_path} is shorter than its transfer")
        return data

    def tick(self, now: float) -> None:
        spool = self._spool
        if self._unsynced and (
            self._unsynced >= spool.sync_every
            or now - self._first_unsynced >= spool.sync_interval_s
        ):
            self.sync()

    def sync(self) -> None:
        """Data first, then the map that claims it."""
        if self._fd < 0 or not self._unsynced:
            return
        try:
            os.fsync(self._fd)
        except OSError as exc:
            raise _error("sync", self.part_path, exc) from exc
        try:
            self._write_map(self._held)
        except OSError as exc:
            raise _error("write", self.map_path, exc) from exc
        self._unsynced = 0

    def close(self) -> None:
        """Make what was written durable and let go of the file (best effort: a failure to
        sync only loses the last batch)."""
        if self._fd < 0:
            return
        try:
            self.sync()
        except ChunkStoreError as exc:
            log.warning("%s", exc)
        os.close(self._fd)
        self._fd = -1
        self._spool._forget(self)

    def discard(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        self._spool._forget(self)
        for path in (self.map_path, self.part_path):  # the map first: never a claim alone
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        with contextlib.suppress(OSError):
            fsync_directory(self._spool.directory)


class Spool:
    """The spool directory (created 0700). ``open`` is the ChunkStore of the receiver."""

    def __init__(
        self,
        directory: Path,
        *,
        max_bytes: int,
        max_transfers: int = 4,
        max_age_s: float = 14 * 86400,
        sync_every: int = 32,
        sync_interval_s: float = 2.0,
    ) -> None:
        self.directory = directory
        self.max_bytes, self.max_transfers, self.max_age_s = max_bytes, max_transfers, max_age_s
        self.sync_every, self.sync_interval_s = sync_every, sync_interval_s
        self._open: dict[bytes, SpoolFile] = {}

    def open(self, sha256: bytes, size: int, chunk_size: int, now: float) -> SpoolFile:
        """The partial transfer of that content, resumed (held = what the map claims) or new.
        Drops the least recently written partials to stay within the limits. Raises
        ChunkStoreFull (too big, or ENOSPC at preallocation: nothing is left behind) or
        ChunkStoreError."""
        if len(sha256) != SHA256_SIZE or size < 1 or chunk_count(size, chunk_size) > MAX_CHUNKS:
            raise ChunkStoreError("spool: not a transfer (sha256, size, chunk size)")
        if size > self.max_bytes:
            raise ChunkStoreFull(f"spool: {size} bytes exceed the spool's {self.max_bytes}")
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise _error("create", self.directory, exc) from exc
        previous = self._open.get(sha256)
        if previous is not None:
            previous.close()
        self._make_room(sha256, size)
        handle = SpoolFile(self, sha256, size, chunk_size)
        handle._open()
        self._open[sha256] = handle
        return handle

    def _forget(self, handle: SpoolFile) -> None:
        if self._open.get(handle.sha256) is handle:
            del self._open[handle.sha256]

    def partials(self) -> list[tuple[float, bytes, int]]:
        """``(last written, wall-clock s; sha256; bytes)`` of each partial, oldest first."""
        found = []
        for part in self.directory.glob("*.part"):
            try:
                sha = bytes.fromhex(part.stem)
                info = part.stat()
            except (ValueError, OSError):
                continue
            try:
                mark = part.with_suffix(".map").stat().st_mtime
            except OSError:
                mark = info.st_mtime  # an orphan still takes room until clean() removes it
            if len(sha) == SHA256_SIZE:
                found.append((max(info.st_mtime, mark), sha, info.st_size))
        return sorted(found)

    def _make_room(self, sha256: bytes, size: int) -> None:
        others = [p for p in self.partials() if p[1] != sha256]
        total = sum(p[2] for p in others)
        while others and (len(others) >= self.max_transfers or total + size > self.max_bytes):
            _, old, old_size = others.pop(0)
            log.info("spool: dropping the partial transfer %s to make room", old.hex())
            self._drop(old)
            total -= old_size

    def _drop(self, sha256: bytes) -> None:
        handle = self._open.get(sha256)
        if handle is not None:
            handle.discard()
            return
        for suffix in (".map", ".part"):
            with contextlib.suppress(FileNotFoundError):
                (self.directory / f"{sha256.hex()}{suffix}").unlink()

    def clean(self, wall_now: float | None = None) -> list[Path]:
        """Remove partials untouched for max_age_s, orphan halves and crashed writers'
        temporaries (none of a transfer open now); returns what was removed."""
        wall_now = time.time() if wall_now is None else wall_now
        removed: list[Path] = []
        if not self.directory.is_dir():
            return removed
        open_names = {sha.hex() for sha in self._open}
        transfers: dict[str, list[Path]] = {}
        for path in sorted(self.directory.iterdir()):
            name = path.name.lstrip(".").split(".")[0]
            if name in open_names:
                continue
            if path.name.startswith(".") and path.suffix == ".tmp":
                transfers.setdefault(f"tmp:{path.name}", []).append(path)
            elif path.suffix in (".part", ".map"):
                transfers.setdefault(name, []).append(path)
        for name, paths in transfers.items():
            try:
                newest = max(path.stat().st_mtime for path in paths)
            except FileNotFoundError:
                newest = wall_now
            if name.startswith("tmp:") or len(paths) < 2 or newest < wall_now - self.max_age_s:
                for path in sorted(paths, key=lambda p: p.suffix != ".map"):  # the map first
                    with contextlib.suppress(FileNotFoundError):
                        path.unlink()
                        removed.append(path)
        return removed
