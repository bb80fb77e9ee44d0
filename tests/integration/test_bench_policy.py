"""scripts/bench-policy --quick runs and prints its tables (behaviour only: no timing asserted)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "bench-policy"


def table(markdown: str, header: str) -> list[list[str]]:
    """The body rows of the table whose header line starts with ``header``."""
    lines = markdown.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


def test_bench_policy_quick_prints_its_three_tables() -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert out.startswith("Measured with `scripts/bench-policy --quick` on:")
    assert "### Decision time (10,000 people enrolled; 5,000 decisions a case" in out

    decisions = table(out, "| case | enrolment | p50 |")
    cases = [row[0].split(":")[0] for row in decisions]
    assert (
        cases
        == ["gate"] * 2
        + ["gate + anti-passback (entry, partner relaying)"] * 2
        + ["vending"] * 2
        + ["attendance"] * 2
    )
    assert [row[1] for row in decisions] == ["SQLite `EnrolmentStore`", "`MemoryEnrolment`"] * 4
    for row in decisions:
        assert all(cell.endswith(" µs") for cell in (*row[2:6], row[7])), row
        assert "unknown_certificate" in row[-1], row  # the ~10 % unknown certificates
    # The same probes through either backend decide alike.
    for sqlite_row, memory_row in zip(decisions[::2], decisions[1::2], strict=True):
        assert sqlite_row[-1] == memory_row[-1]
    assert "anti_passback" in decisions[2][-1]  # the passages made some entries refusals
    assert "ok" in decisions[4][-1]  # attestations sold the product

    (audit,) = table(out, "| events | cards | appends/s")
    assert audit[0] == "10,000"
    verified = audit[7]  # "0.5 s (10,201 records, 3,042 with evidence, all good)"
    assert "(10,201 records," in verified and verified.endswith("all good)"), verified
    with_evidence = int(verified.split("records, ")[1].split(" with")[0].replace(",", ""))
    assert 2_500 < with_evidence < 3_500  # audit_bench's mix: ~30 % grants with evidence

    full, delta = table(out, "| set | what | wire |")
    assert (full[0], delta[0]) == ("full", "delta")
    assert "50 people changed, 100 relinks" in delta[1]
    full_bytes = int(full[2].split(" B")[0].replace(",", ""))
    delta_bytes = int(delta[2].split(" B")[0].replace(",", ""))
    assert 0 < delta_bytes < full_bytes / 10
