"""What a revocation store answers from: one immutable view of a replayed chain.

Per issuer, pyroaring bitmaps of the revoked and held serials and the covered CRL
partitions; the verdict objects lookups return (shared, so a lookup allocates nothing);
and the refusal for a card whose partition the data does not cover.
"""

from __future__ import annotations

import array
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
from pyroaring import BitMap, FrozenBitMap

from terminald.core.revocation_check import RevocationState, RevocationVerdict
from terminald.revocation.bundle import BundleHeader
from terminald.revocation.chain import Replayed
from terminald.revocation.coverage import name_text
from terminald.revocation.serials import SerialArray

if array.array("I").itemsize != 4:  # pragma: no cover - every Linux/ARM ABI we target
    raise ImportError("array('I') is not 32-bit on this platform")


# Serials per pyroaring call while a bitmap is built. The daemon builds bitmaps on a
# background thread while its event loop runs, and one C call holds the GIL for its
# whole length: 5 M serials in one call held it ~70 ms (scripts/bench-live-revocation
# saw REX wait for it); 64 Ki serials take under 1 ms.
_BITMAP_CHUNK = 65_536


def bitmap(serials: SerialArray) -> FrozenBitMap:
    # pyroaring reads an array.array in C, orders of magnitude faster than from numpy's
    # iterator. run_optimize turns runs of serials into run containers, which cost little.
    building = BitMap()
    flat = np.ascontiguousarray(serials)
    for start in range(0, flat.size, _BITMAP_CHUNK):
        values = array.array("I")
        values.frombytes(flat[start : start + _BITMAP_CHUNK].data.cast("B"))
        building.update(values)
    building.run_optimize()
    return FrozenBitMap(building)  # one copy of the containers: ~12 ms for 5 M serials


def verdict(state: RevocationState, in_grace: bool, detail: str = "") -> RevocationVerdict:
    return RevocationVerdict(state, in_grace, detail)


# Lookups return shared immutable verdicts, (revoked, on hold, good), fresh or in grace:
# no allocation and no enum hashing on the hot path.
_ANSWERS = tuple(
    tuple(
        verdict(state, grace)
        for state in (RevocationState.REVOKED, RevocationState.ON_HOLD, RevocationState.GOOD)
    )
    for grace in (False, True)
)
FRESH, IN_GRACE = _ANSWERS


def not_covered(
    issuer_key_id: bytes,
    partitions: frozenset[bytes],
    points: Sequence[bytes],
    answers: tuple[RevocationVerdict, ...],
) -> RevocationVerdict:
    # Off the hot path: a refusal, so the names are rendered for the log and the person.
    names = sorted(partitions)
    covered = "; ".join(name_text(p) for p in names[:3])
    if len(names) > 3:
        covered += f"; … {len(names)} partitions in all"
    if points:
        missing = " / ".join(name_text(p) for p in points)
        detail = f"revocation data does not cover CRL partition {missing}"
    else:
        detail = "the certificate names no CRL distribution point, and the data covers"
        detail += " only partitions of its issuer"
    return verdict(
        RevocationState.UNAVAILABLE,
        answers is IN_GRACE,
        f"{detail} (issuer key {issuer_key_id.hex()} covers: {covered})",
    )


@dataclass(frozen=True)
class View:
    """One complete, immutable answer set; replaced whole, never modified."""

    # Per issuer: (revoked, on hold, covered partitions); on hold is None when empty,
    # saving a lookup; partitions is None when the data covers the whole issuer.
    issuers: Mapping[bytes, tuple[FrozenBitMap, FrozenBitMap | None, frozenset[bytes] | None]]
    snapshot: BundleHeader
    latest: BundleHeader
    deltas: int
    digest: bytes
    valid_until: datetime
    stale_at: datetime
    stale: RevocationVerdict
    revoked: int
    hold: int


def build_view(replayed: Replayed, deltas: int, digest: bytes, grace: timedelta) -> View:
    """The view of a replayed chain: bitmaps per issuer, counts, and when it goes stale."""
    issuers = {
        key_id: (
            bitmap(entries.revoked),
            bitmap(entries.hold) if entries.hold.size else None,
            entries.coverage.partitions,
        )
        for key_id, entries in replayed.revocations.issuers.items()
    }
    revoked, hold = replayed.revocations.counts()
    latest = replayed.latest
    stale_at = latest.valid_until + grace
    stale = verdict(
        RevocationState.STALE,
        False,
        f"revocation data version {latest.version} expired at "
        f"{latest.valid_until.isoformat()} (grace {grace})",
    )
    return View(
        issuers,
        replayed.snapshot,
        latest,
        deltas,
        digest,
        latest.valid_until,
        stale_at,
        stale,
        revoked,
        hold,
    )
