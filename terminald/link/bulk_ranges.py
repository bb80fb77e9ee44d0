"""Which chunks of a bulk transfer are held: a bitmap, and its bounded range form on the wire.

A bitmap (bit ``i`` of byte ``i // 8``, least significant bit first) is what the spool
persists; messages carry runs instead, as a flat list ``[start0, length0, start1, ...]``
of at most :data:`MAX_RANGES` runs, because a transfer of a million chunks would need a
128 KB bitmap while a real one (a line cut, a few lost frames) has a handful of runs.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from terminald.link.bulk_errors import BulkError

MAX_CHUNKS = 1 << 20  # bounds every bitmap to 128 KiB
MAX_RANGES = 256  # runs in one bulk.state / bulk.missing: ≤ 512 ints, ≤ 2.6 KB of msgpack

Range = tuple[int, int]  # (first chunk index, number of chunks)


class Bitmap:
    """A fixed-size set of chunk indices ``0 <= i < count``."""

    __slots__ = ("_bits", "_count", "_held")

    def __init__(self, count: int) -> None:
        if not 0 < count <= MAX_CHUNKS:
            raise BulkError(f"chunk count {count} outside 1..{MAX_CHUNKS}")
        self._count = count
        self._bits = bytearray((count + 7) // 8)
        self._held = 0

    @classmethod
    def from_bytes(cls, count: int, data: bytes) -> Bitmap:
        """Raises BulkError when ``data`` is not exactly the bitmap of ``count`` chunks (wrong
        length, or a bit set past the last chunk)."""
        bitmap = cls(count)
        if len(data) != len(bitmap._bits):
            raise BulkError(f"bitmap of {len(data)} bytes for {count} chunks")
        spare = len(data) * 8 - count
        if spare and data[-1] >> (8 - spare):
            raise BulkError("bitmap claims chunks past the last one")
        bitmap._bits[:] = data
        bitmap._held = sum(byte.bit_count() for byte in data)
        return bitmap

    @classmethod
    def full(cls, count: int) -> Bitmap:
        bitmap = cls(count)
        bitmap.add_range(0, count)
        return bitmap

    @property
    def count(self) -> int:
        return self._count

    @property
    def held(self) -> int:
        return self._held

    @property
    def complete(self) -> bool:
        return self._held == self._count

    def to_bytes(self) -> bytes:
        return bytes(self._bits)

    def copy(self) -> Bitmap:
        return Bitmap.from_bytes(self._count, self.to_bytes())

    def __contains__(self, index: object) -> bool:
        if not isinstance(index, int) or not 0 <= index < self._count:
            return False
        return bool(self._bits[index >> 3] & (1 << (index & 7)))

    def add(self, index: int) -> bool:
        """Mark ``index`` held; False when it already was. Raises BulkError out of range."""
        if not 0 <= index < self._count:
            raise BulkError(f"chunk {index} outside 0..{self._count - 1}")
        mask = 1 << (index & 7)
        if self._bits[index >> 3] & mask:
            return False
        self._bits[index >> 3] |= mask
        self._held += 1
        return True

    def remove(self, index: int) -> None:
        if index in self:
            self._bits[index >> 3] &= ~(1 << (index & 7)) & 0xFF
            self._held -= 1

    def add_range(self, start: int, length: int) -> None:
        for index in range(start, start + length):
            self.add(index)

    def clear(self) -> None:
        self._bits = bytearray(len(self._bits))
        self._held = 0

    def missing(self) -> Iterator[int]:
        for start, length in self.runs(held=False):
            yield from range(start, start + length)

    def runs(self, held: bool) -> Iterator[Range]:
        """Maximal runs of held (or missing) chunks, in index order. Whole bytes of one kind
        are skipped at once, so a mostly full or mostly empty bitmap of a million chunks
        takes milliseconds, not a second."""
        same, other = (0xFF, 0x00) if held else (0x00, 0xFF)
        start = -1
        for position, byte in enumerate(self._bits):
            base = position << 3
            if byte == same:
                if start < 0:
                    start = base
                continue
            if byte == other:
                if start >= 0:
                    yield (start, base - start)
                    start = -1
                continue
            for bit in range(8):
                if bool(byte & (1 << bit)) == held:
                    if start < 0:
                        start = base + bit
                elif start >= 0:
                    yield (start, base + bit - start)
                    start = -1
        if start >= 0 and start < self._count:
            yield (start, self._count - start)


def bounded_runs(runs: Iterable[Range], limit: int = MAX_RANGES) -> tuple[list[Range], bool]:
    """The first ``limit`` runs, and whether any were left off."""
    kept: list[Range] = []
    for run in runs:
        if len(kept) == limit:
            return kept, True
        kept.append(run)
    return kept, False


def flatten(runs: Iterable[Range]) -> list[int]:
    return [value for run in runs for value in run]


def parse_runs(values: object, count: int | None, what: str) -> list[Range]:
    """Check a flat ``[start, length, ...]`` list from the wire: at most MAX_RANGES runs,
    ascending, not touching or overlapping, each inside ``0..count-1`` when count is known.
    Raises BulkError naming ``what`` (the field) and the fault."""
    if not isinstance(values, list):
        raise BulkError(f"{what}: expected a list of integers")
    if len(values) % 2 or len(values) > 2 * MAX_RANGES:
        raise BulkError(
            f"{what}: {len(values)} integers, expected an even count ≤ {2 * MAX_RANGES}"
        )
    runs: list[Range] = []
    end = -1
    limit = MAX_CHUNKS if count is None else count
    for position in range(0, len(values), 2):
        start, length = values[position], values[position + 1]
        if type(start) is not int or type(length) is not int:
            raise BulkError(f"{what}: run {position // 2} is not two integers")
        if start <= end or length < 1 or start + length > limit:
            raise BulkError(f"{what}: run ({start}, {length}) overlaps, is empty or out of range")
        runs.append((start, length))
        end = start + length
    return runs
