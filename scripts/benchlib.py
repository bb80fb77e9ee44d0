"""What the scripts/bench-* share: the venv + sandbox re-exec, the machine line, percentiles.

Imported by a benchmark before anything else (this module needs only the standard
library, so the system interpreter can run it before the re-exec into the venv).
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
VENV = REPO / ".venv"


def reexec_in_sandbox(script: str, name: str, *, sandbox: bool = True) -> None:
    """Run ``script`` with the repo's venv, inside scripts/sandbox (the real pcscd needs a
    private /run/pcscd) unless ``sandbox`` is False. Returns only once both hold."""
    script = str(Path(script).resolve())
    python = sys.executable
    in_venv = Path(sys.prefix).resolve() == VENV.resolve()
    if not in_venv and (VENV / "bin" / "python").exists():
        python = str(VENV / "bin" / "python")
        if not sandbox or os.environ.get("TERMINALD_SANDBOX") == "1":
            os.execv(python, [python, script, *sys.argv[1:]])
    elif not in_venv:
        sys.exit(f"{name}: run scripts/bootstrap first (it creates {VENV})")
    if not sandbox or os.environ.get("TERMINALD_SANDBOX") == "1":
        return
    if os.geteuid() != 0:
        sys.exit(f"{name}: runs the real pcscd inside scripts/sandbox, which needs root")
    runner = str(REPO / "scripts" / "sandbox")
    os.execv(runner, [runner, python, script, *sys.argv[1:]])


def machine() -> list[str]:
    """Markdown lines naming the machine a table was measured on."""
    cpu = "unknown"
    with open("/proc/cpuinfo") as handle:
        for line in handle:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as handle:
        mem_kb = int(handle.readline().split()[1])
    pcscd = subprocess.run(
        ["dpkg-query", "-W", "-f", "${Version}", "pcscd"], capture_output=True, text=True
    ).stdout.strip()
    return [
        f"- nproc: {os.cpu_count()}; CPU: {cpu}; RAM: {mem_kb / 1024**2:.1f} GiB",
        f"- Python {platform.python_version()} ({platform.machine()}); pcscd {pcscd or '?'}",
    ]


def pct(values: list[float], q: float) -> float:
    """The ``q``-th percentile (0..100) by nearest rank; nan for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1))))
    return ordered[rank]
