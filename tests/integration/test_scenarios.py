"""Every scenario in tests/scenarios/ through the runner: the real daemon, pcscd and vpcd.

Adding a file to tests/scenarios/ is enough to have it run here. The runner finds the
suite's pcscd already listing the vpcd reader and does not start a second one. The
command itself (exit status, ``--json`` alone on stdout) is run as a child process.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from terminald.sim.pcscd import Pcscd
from terminald.sim.scenario import run_scenario
from terminald.sim.testpki import TestPkiManifest

pytestmark = pytest.mark.pcscd

SCENARIOS = sorted((Path(__file__).resolve().parents[1] / "scenarios").glob("*.toml"))


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_the_scenario_passes(path: Path, test_pki: TestPkiManifest, pcscd: Pcscd) -> None:
    out = io.StringIO()
    report = run_scenario(path, pki_dir=test_pki.directory, out=out)
    assert report.passed, out.getvalue()
    count = len(report.steps)
    assert f"{count}/{count} steps as expected: PASSED" in out.getvalue()


def _scenario(tmp_path: Path, text: str, pki: TestPkiManifest) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "scenario.toml"
    path.write_text(text)
    command = ["sim", "scenario", str(path), "--json", "--pki", str(pki.directory)]
    return subprocess.run(
        [sys.executable, "-m", "terminald", *command],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=os.environ,
    )


def test_a_failing_expectation_exits_1_and_names_the_step(
    tmp_path: Path, test_pki: TestPkiManifest, pcscd: Pcscd
) -> None:
    done = _scenario(
        tmp_path,
        'enrol = []\n[[step]]\ntap = "card-001"\n[[step]]\nexpect = "ok"\nwithin_s = 10\n'
        '[[step]]\nremove = true\n[[step]]\ncli = ["audit", "--db", "{state}/audit.sqlite"]\n',
        test_pki,
    )
    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)  # the JSON and nothing else
    assert report["passed"] is False
    steps = report["steps"]
    assert [(s["index"], s["action"], s["ok"]) for s in steps] == [
        (1, "tap", True),
        (2, "expect", False),
        (3, "remove", True),  # later steps still run
        (4, "cli", True),
    ]
    assert "refused not_enrolled" in steps[1]["saw"] and "expected ok" in steps[1]["saw"]
    assert "Traceback" not in done.stderr


def test_a_failed_setup_command_leaves_every_step_not_run(
    tmp_path: Path, test_pki: TestPkiManifest, pcscd: Pcscd
) -> None:
    done = _scenario(
        tmp_path,
        '[[setup]]\ncli = ["check-config", "{work}/absent.toml"]\n[[step]]\nrex = true\n',
        test_pki,
    )
    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)
    assert report == {
        "passed": False,
        "steps": [
            {
                "index": 1,
                "action": "rex",
                "ok": False,
                "saw": "not run: setup 1 exited 2, expected 0",
            }
        ],
    }
    assert "setup  1 FAIL terminald check-config" in done.stderr
