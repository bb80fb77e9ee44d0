"""The real ``terminald run`` killed with SIGKILL at random points while enrolment sets are
pushed into it over the link and its audit trail is appended and acknowledged: after every
kill the enrolment database opens and holds the old set or the new one, the chain
verifies, no acknowledged record is lost, and the daemon starts again (issue 11, "Must
show").

This runs scripts/kill-daemon itself (with its driver, scripts/kill_daemon_driver.py: the
same code as the 200-run table in docs/testing.md) for as many runs as fit in about 40 s,
on this session's pcscd, and holds it to zero failures. The checks are the script's (its
docstring lists them); here the table is read back, so a check the script stopped making
would show as a run count or kill count that does not add up.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from terminald.sim.pcscd import Pcscd

pytestmark = pytest.mark.pcscd

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "kill-daemon"
RUNS = 10  # about 3.5 s a run (a daemon start, a driver, a kill, the checks)


def table_row(markdown: str) -> dict[str, str]:
    """The results table's one data row, by column heading."""
    lines = [line for line in markdown.splitlines() if line.startswith("|")]
    header, _, row = lines[:3]
    names = [cell.strip() for cell in header.strip("|").split("|")]
    cells = [cell.strip().replace(",", "") for cell in row.strip("|").split("|")]
    return dict(zip(names, cells, strict=True))


def test_sigkill_of_the_daemon_during_installs_and_appends_loses_nothing(pcscd: Pcscd) -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--runs", str(RUNS), "--reuse-pcscd"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr[-4000:]
    row = table_row(done.stdout)
    assert "FAILURE" not in done.stdout
    assert int(row["failures"]) == 0
    assert int(row["runs"]) == RUNS
    kills = [
        "kills during installs",
        "during appends",
        "during pull/ack",
        "before the first request",
    ]
    assert sum(int(row[k]) for k in kills) == RUNS  # every run ended in one counted kill
    assert sum(int(row[k]) for k in kills[:3]) >= 1  # and kills landed during the work
    assert int(row["records (head seq)"]) > 0  # the daemon wrote records that were checked
