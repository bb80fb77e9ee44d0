"""README.md "Trying it by hand", run as a new user would type it, and cleaned up after.

The lines come from the README itself, so the test follows the text as it stands. The
only changes: the test PKI goes to a private directory instead of /tmp/pki (other runs
share /tmp), the PIN comes on stdin (no terminal), and each command's exit status is
echoed. The sandbox is a fresh nested one, with its own pcscd, as for a person; when it
ends nothing may be left running in it.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"

pytestmark = pytest.mark.pcscd


def by_hand_lines() -> list[str]:
    text = README.read_text(encoding="utf-8")
    section = text.split("\n### Trying it by hand\n", 1)[1].split("\n## ", 1)[0]
    block = section.split("```sh\n", 1)[1].split("```", 1)[0]
    # Drop the comments a person reads: two spaces or more, then #.
    return [re.sub(r"\s{2,}#.*$", "", line).rstrip() for line in block.splitlines()]


def processes_in(netns: str, pids: list[int]) -> list[str]:
    """Those of ``pids`` still alive in the network namespace ``netns`` (both must hold:
    a pid or a namespace inode alone may be reused by another run meanwhile)."""
    found = []
    for pid in pids:
        proc = Path("/proc") / str(pid)
        try:
            if os.readlink(proc / "ns" / "net") == netns:
                cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ")
                found.append(f"{proc.name}: {cmdline.decode(errors='replace')}")
        except OSError:
            continue  # gone meanwhile, or not ours to read
    return found


def test_the_readme_by_hand_lines_work_and_leave_nothing_running(tmp_path: Path) -> None:
    lines = by_hand_lines()
    assert lines[0] == "scripts/bootstrap", "a fresh clone has no venv: bootstrap first"
    assert lines[1] == "scripts/sandbox bash"
    assert lines[-1] == "exit"
    assert any(line.startswith("kill ") for line in lines), "the README must stop what it starts"

    bootstrap = subprocess.run(
        ["scripts/bootstrap"], cwd=REPO, capture_output=True, text=True, timeout=600
    )
    assert bootstrap.returncode == 0, bootstrap.stderr

    pki = tmp_path / "pki"
    script = ["readlink /proc/$$/ns/net"]
    for number, line in enumerate(lines[2:-1], 3):
        line = line.replace("/tmp/pki", str(pki))
        status = "::bg $!" if line.endswith("&") else f"::line {number} rc=$?"
        script.append(f'{line}\necho "{status}"')
    (tmp_path / "by-hand.sh").write_text("\n".join(script) + "\n")

    env = {k: v for k, v in os.environ.items() if k != "TERMINALD_SANDBOX"}  # a new sandbox
    # The PIN is card-001's in the PKI the script builds: a feeder waits for the manifest
    # and writes it to the script's stdin, where `auth` reads it.
    pin_feeder = (
        "import json,sys,time,pathlib\n"
        f"p=pathlib.Path({str(pki / 'manifest.json')!r})\n"
        "for _ in range(600):\n"
        "    if p.exists(): break\n"
        "    time.sleep(0.1)\n"
        "m=json.loads(p.read_text())\n"
        "print(next(c['pin'] for c in m['cards'] if c['name']=='card-001'), flush=True)\n"
    )
    feeder = subprocess.Popen(
        [str(REPO / ".venv/bin/python"), "-c", pin_feeder], stdout=subprocess.PIPE
    )
    # Output to a file, not a pipe: a process left running would hold a pipe open and
    # hide the leak behind a timeout.
    log = tmp_path / "by-hand.out"
    try:
        with log.open("w") as output:
            run = subprocess.run(
                ["scripts/sandbox", "bash", str(tmp_path / "by-hand.sh")],
                cwd=REPO,
                env=env,
                stdin=feeder.stdout,
                stdout=output,
                stderr=subprocess.STDOUT,
                timeout=180,
                start_new_session=True,  # no controlling terminal: getpass reads stdin
            )
    finally:
        feeder.wait(10)
    out = log.read_text()
    assert run.returncode == 0, out
    statuses = re.findall(r"^::line (\d+) rc=(\d+)$", out, flags=re.MULTILINE)
    expected_lines = [n for n, line in enumerate(lines[2:-1], 3) if not line.endswith("&")]
    assert [int(n) for n, _ in statuses] == expected_lines, out
    assert [rc for _, rc in statuses] == ["0"] * len(statuses), out
    assert "Verdict: ok" in out, out
    assert "terminald.toml: ok" in out, out

    # What the README started is gone with the sandbox: nothing lives in its namespace.
    netns = out.splitlines()[0]
    assert netns.startswith("net:["), out
    started = [int(pid) for pid in re.findall(r"^::bg (\d+)$", out, flags=re.MULTILINE)]
    assert len(started) == sum(line.endswith("&") for line in lines), out
    left = processes_in(netns, started)
    for entry in left:  # a failing run must not leak them into the next tests
        with contextlib.suppress(OSError):
            os.kill(int(entry.split(":", 1)[0]), signal.SIGKILL)
    assert left == [], "still running after the README's lines: " + "; ".join(left)
    manifest = json.loads((pki / "manifest.json").read_text())
    assert any(card["name"] == "card-001" for card in manifest["cards"])
