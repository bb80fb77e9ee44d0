"""The benchmark scripts run and report what they count. Behaviour only: no timing is asserted."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from terminald.sim.pcscd import Pcscd

pytestmark = pytest.mark.pcscd

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


def run_quick(script: str) -> subprocess.CompletedProcess[str]:
    """``script --quick`` on this session's pcscd (it already owns /run/pcscd and vpcd)."""
    done = subprocess.run(
        [sys.executable, str(SCRIPTS / script), "--quick", "--reuse-pcscd"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return done


def apdu_cells(markdown: str, card: str) -> list[str]:
    """The APDUs cell of every row for ``card`` in every table that has an APDUs column."""
    cells, header = [], []
    for line in markdown.splitlines():
        if not line.startswith("|"):
            header = []
            continue
        row = [cell.strip() for cell in line.strip("|").split("|")]
        if not header:
            header = row
        elif "APDUs" in header and row[0] == card:
            cells.append(row[header.index("APDUs")])
    return cells


def test_bench_auth_quick_prints_its_tables_and_a_cached_card_takes_at_most_6_apdus(
    pcscd: Pcscd,
) -> None:
    done = run_quick("bench-auth")
    for heading in ("### In process", "### Through pcscd", "### OpenSC for comparison"):
        assert heading in done.stdout
    assert "| card | reads | APDUs | target |" in done.stdout
    cached = apdu_cells(done.stdout, "cached")
    assert len(cached) == 4  # short and extended reads, in process and through pcscd
    assert all(int(cell) <= 6 for cell in cached), cached


def test_bench_daemon_quick_prints_its_tables(pcscd: Pcscd) -> None:
    done = run_quick("bench-daemon")
    assert "| start to READY=1 (s) |" in done.stdout
    assert "| idle CPU over 2 s (% of one core) |" in done.stdout
    rows = [line for line in done.stdout.splitlines() if line.startswith(("| first", "| cached"))]
    assert [r.split("|")[1].strip() for r in rows] == ["first seen", "cached"]
    first, cached = ([c.strip() for c in r.strip("|").split("|")] for r in rows)
    assert (first[1], cached[1]) == ("3", "2")  # three first taps, two cached
    assert int(cached[2]) == 6  # a cached card: 6 APDUs through the daemon too
    assert float(cached[3]) > 350  # the modelled signature alone takes 350 ms


def test_bench_live_revocation_quick_picks_up_and_refuses_the_revoked_card(pcscd: Pcscd) -> None:
    done = run_quick("bench-live-revocation")
    assert "| version | bundle | `apply` | pickup after `apply` returned |" in done.stdout
    assert "card-001 tapped as the revoking `apply` returned: **cert_revoked**" in done.stdout
    assert "| while `apply` runs and the daemon picks it up |" in done.stdout


def test_bench_revocation_quick_runs_from_the_system_python_as_documented(tmp_path: Path) -> None:
    """As docs/benchmarks.md says: ``scripts/bench-revocation``, here with a Python that has
    none of the project's dependencies (it once failed: No module named 'msgpack'). It
    re-executes itself with the venv's Python; it needs no pcscd."""
    system_python = "/usr/bin/python3"
    bare = subprocess.run(
        [system_python, "-c", "import msgpack"], capture_output=True, text=True, check=False
    )
    assert bare.returncode != 0, "this test needs a Python without the project's packages"
    done = subprocess.run(
        [system_python, str(SCRIPTS / "bench-revocation"), "--quick"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,  # not the checkout: the script finds its own way
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "### Size (N = 1,000,000 serials; wire = the whole signed bundle)" in done.stdout
    assert "| uniform 5% | 50,000 |" in done.stdout
    assert "daily delta +550 (on 5 %)" in done.stdout
