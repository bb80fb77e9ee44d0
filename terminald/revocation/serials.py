"""Sorted serial lists and the revocation set keyed by (issuer key id, serial).

Serials are kept as sorted, duplicate-free, read-only ``uint32`` numpy arrays: JPKI
user-authentication serials are 4-byte integers from one sequential counter
(DESIGN.md §2), and arrays keep millions of them compact and fast to code.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from terminald.revocation.coverage import WHOLE, Coverage, coverage_change, widen
from terminald.revocation.errors import RevocationFormatError

SerialArray = npt.NDArray[np.uint32]

MAX_SERIAL = 0xFFFF_FFFF
MAX_KEY_ID_LENGTH = 64
DIGEST_SIZE = 32
_DIGEST_TAG = b"terminald revocation set 1\x00"
_U32 = struct.Struct(">I")
_U16 = struct.Struct(">H")


def serial_array(serials: Iterable[int] | npt.NDArray[np.integer]) -> SerialArray:
    """A sorted, duplicate-free, read-only array of the given serials (each 0..2**32-1)."""
    if isinstance(serials, np.ndarray):
        raw = serials
    else:
        try:
            raw = np.fromiter((int(s) for s in serials), dtype=np.int64)
        except OverflowError:
            raise ValueError("a serial is outside 0..2**32-1") from None
    if raw.size and (int(raw.min()) < 0 or int(raw.max()) > MAX_SERIAL):
        raise ValueError("a serial is outside 0..2**32-1")
    # Sort then drop neighbours that repeat: faster than np.unique's hashing on millions.
    ordered = np.sort(raw.astype(np.uint32, copy=False))
    keep = np.ones(ordered.size, dtype=bool)
    keep[1:] = ordered[1:] != ordered[:-1]
    out = ordered[keep] if not keep.all() else ordered
    out.setflags(write=False)
    return out


def _find(
    haystack: SerialArray, needles: SerialArray
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.bool_]]:
    """Where each needle is or would go in the sorted haystack, and whether it is there.

    Binary search: O(m log n), so a 55,000-serial delta against 5 M is milliseconds.
    """
    index = np.searchsorted(haystack, needles)
    found = index < haystack.size
    found[found] = haystack[index[found]] == needles[found]
    return index, found


def overlaps(a: SerialArray, b: SerialArray) -> bool:
    small, large = (a, b) if a.size <= b.size else (b, a)
    return bool(_find(large, small)[1].any())


def empty_serials() -> SerialArray:
    return serial_array(np.empty(0, dtype=np.uint32))


def check_key_id(key_id: bytes) -> None:
    if not 1 <= len(key_id) <= MAX_KEY_ID_LENGTH:
        raise ValueError(f"issuer key id must be 1..{MAX_KEY_ID_LENGTH} bytes, got {len(key_id)}")


@dataclass(frozen=True, eq=False)
class IssuerEntries:
    """Revoked and on-hold serials of one issuer key (never overlapping), and what the
    CRLs they came from cover: the whole issuer, or named partitions (coverage.py)."""

    revoked: SerialArray
    hold: SerialArray
    coverage: Coverage = WHOLE

    def __post_init__(self) -> None:
        if overlaps(self.revoked, self.hold):
            raise ValueError("a serial is both revoked and on hold")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, IssuerEntries):
            return NotImplemented
        return (
            self.coverage == other.coverage
            and np.array_equal(self.revoked, other.revoked)
            and np.array_equal(self.hold, other.hold)
        )

    __hash__ = None  # type: ignore[assignment]


@dataclass(frozen=True)
class RevocationSet:
    """Everything revoked or on hold, per issuer key id.

    An issuer present with empty lists means "its CRL was read and nothing is revoked";
    an absent issuer means "no data", which a terminal must treat as unknown.
    """

    issuers: Mapping[bytes, IssuerEntries]

    def __post_init__(self) -> None:
        for key_id in self.issuers:
            check_key_id(key_id)

    def covers(self, issuer_key_id: bytes, points: Sequence[bytes] = ()) -> bool:
        """Whether the set answers for a certificate of this issuer naming ``points``."""
        entries = self.issuers.get(issuer_key_id)
        return entries is not None and entries.coverage.covers(points)

    def status(self, issuer_key_id: bytes, serial: int, points: Sequence[bytes] = ()) -> str | None:
        """``revoked``, ``hold``, ``good``, or None when the set does not cover the certificate
        (issuer absent, or none of its distribution ``points`` covered)."""
        entries = self.issuers.get(issuer_key_id)
        if entries is None or not entries.coverage.covers(points):
            return None
        for name, serials in (("revoked", entries.revoked), ("hold", entries.hold)):
            i = int(np.searchsorted(serials, serial))
            if i < serials.size and int(serials[i]) == serial:
                return name
        return "good"

    def counts(self) -> tuple[int, int]:
        """(revoked, on hold) over all issuers."""
        revoked = sum(int(e.revoked.size) for e in self.issuers.values())
        hold = sum(int(e.hold.size) for e in self.issuers.values())
        return revoked, hold

    def digest(self) -> bytes:
        """SHA-256 of the set's canonical content, coverage included (docs/revocation.md,
        "Base digest"): what a delta names as its base, whatever chain produced the set."""
        return content_digest(self)


def content_digest(revocations: RevocationSet) -> bytes:
    """SHA-256 over the tag, then per issuer in increasing key-id order: key id length u8,
    key id, coverage (mode u8 1 = whole / 2 = partitions, name count u16, then per name in
    byte order its length u16 and DER), then revoked and on hold, each as count u32 and the
    serials as u32, ascending. Every field is length-prefixed, so one set has one digest."""
    digest = hashlib.sha256(_DIGEST_TAG)
    digest.update(_U32.pack(len(revocations.issuers)))
    for key_id in sorted(revocations.issuers):
        entries = revocations.issuers[key_id]
        names = entries.coverage.names()
        digest.update(bytes([len(key_id)]) + key_id)
        digest.update(bytes([1 if entries.coverage.whole else 2]) + _U16.pack(len(names)))
        for name in names:
            digest.update(_U16.pack(len(name)) + name)
        for serials in (entries.revoked, entries.hold):
            digest.update(_U32.pack(int(serials.size)))
            digest.update(np.ascontiguousarray(serials, dtype=">u4").tobytes())
    return digest.digest()


@dataclass(frozen=True, eq=False)
class IssuerChanges:
    """What changed for one issuer between a base version and a new one.

    ``coverage_added``: None when coverage is unchanged, WHOLE when it widens to the whole
    issuer, or the partitions it gains. An issuer new since the base states its coverage.
    """

    revoked_added: SerialArray
    revoked_removed: SerialArray
    hold_added: SerialArray
    hold_removed: SerialArray
    coverage_added: Coverage | None = None

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, IssuerChanges):
            return NotImplemented
        return self.coverage_added == other.coverage_added and all(
            np.array_equal(a, b) for a, b in zip(self.lists(), other.lists(), strict=True)
        )

    __hash__ = None  # type: ignore[assignment]

    def lists(self) -> tuple[SerialArray, SerialArray, SerialArray, SerialArray]:
        return (self.revoked_added, self.revoked_removed, self.hold_added, self.hold_removed)


@dataclass(frozen=True)
class RevocationDelta:
    """Changes per issuer; an issuer absent here is unchanged.

    ``base_digest``: the :func:`content_digest` of the exact set the delta was computed
    from; :func:`apply_delta` refuses any other base, even one with the same version.
    """

    issuers: Mapping[bytes, IssuerChanges]
    base_digest: bytes

    def __post_init__(self) -> None:
        for key_id in self.issuers:
            check_key_id(key_id)
        if len(self.base_digest) != DIGEST_SIZE:
            raise ValueError(f"a delta's base digest is {DIGEST_SIZE} bytes")

    def counts(self) -> tuple[int, int]:
        """(revoked added, on hold added) over all issuers."""
        revoked = sum(int(c.revoked_added.size) for c in self.issuers.values())
        hold = sum(int(c.hold_added.size) for c in self.issuers.values())
        return revoked, hold

    def removed_counts(self) -> tuple[int, int]:
        revoked = sum(int(c.revoked_removed.size) for c in self.issuers.values())
        hold = sum(int(c.hold_removed.size) for c in self.issuers.values())
        return revoked, hold


def _frozen(array: npt.NDArray[np.uint32]) -> SerialArray:
    array.setflags(write=False)
    return array


def diff(base: RevocationSet, new: RevocationSet) -> RevocationDelta:
    """The delta that turns ``base`` into ``new``.

    Every issuer of ``base`` must still be in ``new``, covering at least as much: a delta
    cannot say "this issuer or partition is no longer covered" (a snapshot must).
    """
    missing = set(base.issuers) - set(new.issuers)
    if missing:
        names = ", ".join(sorted(k.hex() for k in missing))
        raise ValueError(f"issuer(s) {names} are in the base but not in the new set")
    empty = empty_serials()
    changes: dict[bytes, IssuerChanges] = {}
    for key_id, entries in new.issuers.items():
        previous = base.issuers.get(key_id)
        old = previous if previous is not None else IssuerEntries(empty, empty)
        try:
            added = (
                coverage_change(old.coverage, entries.coverage)
                if previous is not None
                else entries.coverage
            )
        except ValueError:
            raise ValueError(f"issuer {key_id.hex()} covers less than in the base") from None
        change = IssuerChanges(
            revoked_added=_frozen(np.setdiff1d(entries.revoked, old.revoked, assume_unique=True)),
            revoked_removed=_frozen(np.setdiff1d(old.revoked, entries.revoked, assume_unique=True)),
            hold_added=_frozen(np.setdiff1d(entries.hold, old.hold, assume_unique=True)),
            hold_removed=_frozen(np.setdiff1d(old.hold, entries.hold, assume_unique=True)),
            coverage_added=added,
        )
        if previous is None or added is not None or any(a.size for a in change.lists()):
            changes[key_id] = change
    return RevocationDelta(changes, content_digest(base))


def _apply_list(
    old: SerialArray, added: SerialArray, removed: SerialArray, what: str
) -> SerialArray:
    if _find(old, added)[1].any():
        raise RevocationFormatError(f"delta adds {what} serials the base already has")
    where, found = _find(old, removed)
    if not found.all():
        raise RevocationFormatError(f"delta removes {what} serials the base does not have")
    kept = np.delete(old, where)
    return _frozen(np.insert(kept, np.searchsorted(kept, added), added))


def apply_delta(base: RevocationSet, delta: RevocationDelta) -> RevocationSet:
    """``base`` with ``delta`` applied; refuses a delta that does not fit the base exactly:
    built from another set (base digest), or adding what is there, removing what is not."""
    actual = content_digest(base)
    if actual != delta.base_digest:
        raise RevocationFormatError(
            f"delta was built from other data than this base (base digest "
            f"{delta.base_digest.hex()[:16]}…, this data {actual.hex()[:16]}…): rebuild it "
            "against the snapshot of what is installed, or send a snapshot"
        )
    empty = empty_serials()
    issuers = dict(base.issuers)
    for key_id, change in delta.issuers.items():
        previous = issuers.get(key_id)
        old = previous if previous is not None else IssuerEntries(empty, empty)
        try:
            base_coverage = previous.coverage if previous is not None else None
            coverage = widen(base_coverage, change.coverage_added)
        except ValueError as exc:
            raise RevocationFormatError(f"delta for issuer {key_id.hex()}: {exc}") from exc
        revoked = _apply_list(old.revoked, change.revoked_added, change.revoked_removed, "revoked")
        hold = _apply_list(old.hold, change.hold_added, change.hold_removed, "on-hold")
        try:
            issuers[key_id] = IssuerEntries(revoked, hold, coverage)
        except ValueError as exc:
            raise RevocationFormatError(f"delta result: {exc}") from exc
    return RevocationSet(issuers)
