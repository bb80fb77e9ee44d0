"""What the scripts/bench-* share: the venv + sandbox re-exec, the machine line, percentiles.

Imported by a benchmark before anything else (this module needs only the standard
library, so the system interpreter can run it before the re-exec into the venv).
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
VENV = REPO / ".venv"


def reexec_in_sandbox(script: str, name: str, *, sandbox: bool = True) -> None:
    """Run ``script`` with the repo's venv, inside scripts/sandbox (the real pcscd needs a
    private /run/pcscd) unless ``sandbox`` is False. Returns only once both hold.

    Outside the venv it first runs scripts/bootstrap (as scripts/run and scripts/test
    do; quick when nothing changed), so a fresh clone runs the benchmark as documented."""
    script = str(Path(script).resolve())
    python = sys.executable
    in_venv = Path(sys.prefix).resolve() == VENV.resolve()
    if not in_venv:
        bootstrap = subprocess.run([str(REPO / "scripts" / "bootstrap")], check=False)
        if bootstrap.returncode != 0 or not (VENV / "bin" / "python").exists():
            sys.exit(f"{name}: scripts/bootstrap failed, so there is no venv at {VENV}")
        python = str(VENV / "bin" / "python")
        if not sandbox or os.environ.get("TERMINALD_SANDBOX") == "1":
            os.execv(python, [python, script, *sys.argv[1:]])
    if not sandbox or os.environ.get("TERMINALD_SANDBOX") == "1":
        return
    if os.geteuid() != 0:
        sys.exit(f"{name}: runs the real pcscd inside scripts/sandbox, which needs root")
    runner = str(REPO / "scripts" / "sandbox")
    os.execv(runner, [runner, python, script, *sys.argv[1:]])


def machine(
    packages: Sequence[str] = ("pcscd",), libraries: Mapping[str, str] | None = None
) -> list[str]:
    """Markdown lines naming the machine a table was measured on: CPU and RAM, Python and
    ``libraries`` (name → version), and the Debian ``packages``' versions."""
    cpu = "unknown"
    with open("/proc/cpuinfo") as handle:
        for line in handle:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as handle:
        mem_kb = int(handle.readline().split()[1])
    software = f"Python {platform.python_version()} ({platform.machine()})"
    software += "".join(f", {name} {version}" for name, version in (libraries or {}).items())
    versions = []
    for package in packages:
        found = subprocess.run(
            ["dpkg-query", "-W", "-f", "${Version}", package],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
        versions.append(f"{package} {found or 'not installed'}")
    return [
        f"- nproc: {os.cpu_count()}; CPU: {cpu}; RAM: {mem_kb / 1024**2:.1f} GiB",
        "- " + "; ".join([software, ", ".join(versions)] if versions else [software]),
    ]


def pct(values: list[float], q: float) -> float:
    """The ``q``-th percentile (0..100) by nearest rank; nan for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1))))
    return ordered[rank]
