"""The audit log's figures for the benchmarks (docs/benchmarks.md): appends per second
with ``synchronous=FULL`` and the file's size per 100,000 events.

The mix is a busy site's: 70 % of events are refusals and grants without evidence (a
refusal before the PIN, a PIN-less vend, door and attendance rows), 30 % are grants with
evidence: the challenge message the card signed (terminald.pki.challenge, ~110 bytes), a
256-byte RSA-2048 signature and the card's certificate, ~1.6 KB of DER stored once per
certificate (``people`` distinct cards; a JPKI user certificate is about that size,
docs/jpki-card.md). The certificate bytes are random: storage, not verification, is
measured here.

``python -m terminald.sim.audit_bench [EVENTS]`` prints the table.
"""

from __future__ import annotations

import random
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from terminald.pki.challenge import Challenge
from terminald.store.audit import AuditEntry, AuditLog

CERTIFICATE_BYTES = 1600
SIGNATURE_BYTES = 256
EVIDENCE_SHARE = 0.30


@dataclass(frozen=True)
class AuditBenchResult:
    """``rows_per_s``: events appended and committed per second, the writer thread
    batching them (up to 256 a transaction, each synced: synchronous=FULL).
    ``commit_ms_p50``: one event appended and flushed at a time (a quiet gate: one
    transaction and its syncs per event), the median. ``bytes_per_100k``: the database
    (main file + WAL, after the writer closed it) scaled to 100,000 events."""

    events: int
    people: int
    seconds: float
    rows_per_s: float
    commit_ms_p50: float
    file_bytes: int
    bytes_per_100k: int


def events(count: int, people: int, seed: int = 11) -> Iterator[AuditEntry]:
    """``count`` events of the mix above, deterministic for a seed."""
    rng = random.Random(seed)  # noqa: S311 - reproducible test data, not secrets
    certificates = [rng.randbytes(CERTIFICATE_BYTES) for _ in range(people)]
    issuer = rng.randbytes(20)
    start = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
    for i in range(count):
        at = start + timedelta(seconds=3 * i)
        who = rng.randrange(people)
        serial = 0x100000 + who
        subject = f"E{1000 + who}"
        if rng.random() < EVIDENCE_SHARE:
            message = Challenge("gate-1", "gate", at, rng.randbytes(32)).message
            yield AuditEntry(
                at, "gate-1", "granted", "ok", serial, f"person {who}", "",
                (message, rng.randbytes(SIGNATURE_BYTES), certificates[who]), issuer,
                location="lobby", subject=subject, attrs=(("door", "open"),), pin_verified=True,
            )  # fmt: skip
        elif rng.random() < 0.5:
            yield AuditEntry(
                at, "gate-1", "refused", "outside_schedule", serial, None,
                "outside the schedule", None, issuer, location="lobby", subject=subject,
            )  # fmt: skip
        else:
            yield AuditEntry(
                at, "gate-1", "attendance", "ok", serial, f"person {who}", "", None, issuer,
                location="lobby", subject=subject, attrs=(("attendance", "clock_in"),),
            )  # fmt: skip


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists())


def run(count: int = 100_000, people: int = 1000, singles: int = 200) -> AuditBenchResult:
    """Write ``count`` events to a new log in a temporary directory (on the file system
    of ``tempfile.gettempdir()``: run it where the state directory lives) and measure."""
    with tempfile.TemporaryDirectory(prefix="terminald-audit-bench-") as directory:
        path = Path(directory) / "audit.sqlite"
        log = AuditLog(path, keep=count + singles + 1, queue_rows=count + 2)
        log.append(AuditEntry(datetime.now(UTC), "gate-1", "mode", detail="bench start"))
        assert log.flush(60)  # the file exists: only appends are timed
        batch = list(events(count, people))
        began = time.perf_counter()
        for entry in batch:
            log.append(entry)
        if not log.flush(600):
            raise RuntimeError(f"audit bench: the writer did not finish ({log.problem})")
        seconds = time.perf_counter() - began
        commits = []
        for entry in events(singles, people, seed=12):
            one = time.perf_counter()
            log.append(entry)
            log.flush(60)
            commits.append(time.perf_counter() - one)
        log.close()
        size = _size(path)
    commits.sort()
    return AuditBenchResult(
        count,
        people,
        seconds,
        count / seconds,
        1000 * commits[len(commits) // 2],
        size,
        round(size * 100_000 / (count + singles + 1)),
    )


def main(argv: list[str]) -> int:
    count = int(argv[0]) if argv else 100_000
    r = run(count)
    print("| events | people | rows/s (batched, FULL) | one event p50 (ms) | MB per 100,000 |")
    print("|---:|---:|---:|---:|---:|")
    print(
        f"| {r.events:,} | {r.people:,} | {r.rows_per_s:,.0f} | {r.commit_ms_p50:.2f} "
        f"| {r.bytes_per_100k / 1e6:.1f} |"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
