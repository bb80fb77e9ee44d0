"""The link benchmark's rig (terminald.sim.link_bench): terminals in their own processes,
and a HostLink that a late reply from an earlier transfer does not derail."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from terminald.link.bulk_messages import BulkResult
from terminald.sim.link_bench import broadcast, linked, push


def test_a_reply_from_an_earlier_transfer_does_not_end_the_push() -> None:
    data = os.urandom(8 * 1024)
    with linked(1) as setup:
        host = setup.host
        injected = []

        def progress(done: int, total: int) -> None:
            if not injected:  # mid-push: a late copy of another transfer's result
                injected.append(True)
                with host._input:
                    host._bulk.setdefault(1, []).append(BulkResult(b"\x00" * 8, False, "old"))

        host.open_session(1)
        outcome = host.push(1, "revocation", data, progress=progress, timeout=60)
        assert injected and outcome.installed, outcome
        assert setup.terminals[0].installed  # and the terminal got the real one
        again = push(setup, data)  # a second push right after the first one
        assert again.installed


def test_terminals_in_their_own_processes_take_a_broadcast_and_exit() -> None:
    with linked(2, bus=True, processes=True) as setup:
        processes = [t.process for t in setup.terminals]
        assert all(p is not None and p.poll() is None for p in processes)
        assert all(len(t.public) == 32 for t in setup.terminals)
        broadcast(setup, os.urandom(4 * 1024))  # raises unless both installed
    assert all(p is not None and p.returncode == 0 for p in processes)


def test_the_terminal_entry_point_names_a_bad_host_key(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "terminald.sim.link_bench_terminal", "--port", "/dev/null",
         "--address", "1", "--host-key", "not-a-key", "--dir", str(tmp_path)],
        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert done.returncode == 2
    assert "--host-key" in done.stderr and "Traceback" not in done.stderr
