"""Test doubles for the bulk layer: an in-memory chunk store and a recording installer."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field

from terminald.link.bulk_errors import ChunkStoreError, ChunkStoreFull
from terminald.link.bulk_messages import chunk_count
from terminald.link.bulk_ranges import Bitmap
from terminald.link.bulk_receiver import InstallVerdict


@dataclass
class _Entry:
    data: bytearray
    durable: Bitmap  # what survives a "restart"


class MemoryFile:
    def __init__(self, store: MemoryStore, sha256: bytes, entry: _Entry, chunk_size: int) -> None:
        self.store, self.sha256, self.entry, self.chunk_size = store, sha256, entry, chunk_size
        self._held = entry.durable.copy()
        self.writes = 0

    @property
    def held(self) -> Bitmap:
        return self._held

    def write(self, index: int, data: bytes, now: float) -> None:
        if self.store.fail_writes:
            raise self.store.fail_writes
        start = index * self.chunk_size
        self.entry.data[start : start + len(data)] = bytes(len(data)) if self.store.lie else data
        self._held.add(index)
        self.writes += 1
        self.store.writes += 1

    def read(self, index: int) -> bytes:
        start = index * self.chunk_size
        return bytes(self.entry.data[start : start + self.chunk_size])

    def tick(self, now: float) -> None:
        pass

    def sync(self) -> None:
        self.entry.durable = self._held.copy()

    def discard(self) -> None:
        self.store.entries.pop(self.sha256, None)
        self.store.discards += 1

    def close(self) -> None:
        self.sync()


@dataclass
class MemoryStore:
    """Chunks in a dict; only synced chunks come back at the next open (a "restart")."""

    entries: dict[bytes, _Entry] = field(default_factory=dict)
    full: bool = False
    fail_writes: ChunkStoreError | None = None
    lie: bool = False  # store zeros instead of the data (a disk that lies)
    writes: int = 0
    discards: int = 0

    def open(self, sha256: bytes, size: int, chunk_size: int, now: float) -> MemoryFile:
        if self.full:
            raise ChunkStoreFull("memory store: full")
        entry = self.entries.get(sha256)
        if entry is None:
            entry = _Entry(bytearray(size), Bitmap(chunk_count(size, chunk_size)))
            self.entries[sha256] = entry
        return MemoryFile(self, sha256, entry, chunk_size)


@dataclass
class Installer:
    """Records what it was given; answers ``verdict`` (None: decide later)."""

    verdict: InstallVerdict | None = field(default_factory=lambda: InstallVerdict(True))
    calls: list[tuple[str, bytes, bytes]] = field(default_factory=list)

    def __call__(self, kind: str, sha256: bytes, data: bytes) -> InstallVerdict | None:
        assert hashlib.sha256(data).digest() == sha256
        self.calls.append((kind, sha256, data))
        return self.verdict


def content(size: int, seed: int = 1) -> bytes:
    """Deterministic, non-zero-looking bytes (a zero-filled chunk must not pass for data)."""
    out = bytearray()
    block = seed.to_bytes(8, "big")
    while len(out) < size:
        block = hashlib.sha256(block).digest()
        out += block
    return bytes(out[:size])


def transfer_id() -> bytes:
    return os.urandom(8)
