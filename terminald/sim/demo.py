"""The demo behind the README's run command: the real gate daemon, watched and driven.

It builds a test PKI, starts pcscd with the vpcd driver (inside scripts/sandbox) and
runs the gate daemon that ``terminald run`` runs, on gpiozero's MockFactory, with
virtual My Number Cards on the virtual reader (``demo_rig``). With a terminal on stdin
and stdout a person drives it from a curses screen (``demo_ui``): tap cards, type
PINs on the keypad, open the door, press REX, flip tamper, change the mode, and watch
the LEDs, the relay, the buzzer and the log. Otherwise, or with ``--tour``, a scripted
tour walks through every outcome, reads each one from the daemon's own records and the
mock pins, and fails (exit 1) when one differs from what it should be.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import TextIO

from terminald.sim.demo_rig import (
    GOOD,
    MISTYPED,
    NOT_ENROLLED_CARD,
    TOUR_TIMINGS,
    DemoRig,
    DemoTimings,
)
from terminald.sim.demo_tour import run_tour
from terminald.sim.testpki import TestPkiManifest, build_test_pki

# The cards the tour's own stories need; every other card on the desk gets its step too.
TOUR_CARDS = (GOOD, MISTYPED, NOT_ENROLLED_CARD)


class DemoError(Exception):
    """The demo cannot run as asked (outside the sandbox, or with an unusable test PKI)."""


def _check_sandbox() -> None:
    # Before the test PKI is built: say at once what to run instead.
    if os.environ.get("TERMINALD_SANDBOX") != "1":
        raise DemoError(
            "the demo runs the real pcscd with its vpcd reader, which needs the test sandbox "
            "(TERMINALD_SANDBOX=1 is not set): run `scripts/run` as root, or "
            "`scripts/sandbox .venv/bin/terminald sim demo ...` after scripts/bootstrap"
        )


def _load_pki(pki_dir: Path) -> TestPkiManifest:
    try:
        return TestPkiManifest.load(pki_dir)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DemoError(
            f"--pki {pki_dir}: not a test PKI directory ({exc}); build one with "
            "`terminald sim pki --out DIR`, or leave --pki out"
        ) from exc


def run_demo(
    *,
    pki_dir: Path | None,
    interactive: bool,
    pace: float,
    realtime: bool,
    out: TextIO = sys.stdout,
) -> int:
    """The whole demo; returns the exit code (1 when a tour step went wrong)."""
    _check_sandbox()
    with tempfile.TemporaryDirectory(prefix="terminald-demo-") as tmp:
        if pki_dir is None:
            print("Building a test PKI: three root generations, virtual cards ...", file=out)
            manifest = build_test_pki(Path(tmp) / "pki", cards=3)
        else:
            manifest = _load_pki(pki_dir)
        missing = sorted({*TOUR_CARDS} - {c.name for c in manifest.cards})
        if missing and not interactive:
            raise DemoError(
                f"the tour needs the cards {', '.join(missing)}: use a test PKI built with "
                "`terminald sim pki --cards 3` (or more), or no --pki"
            )
        timings = DemoTimings() if interactive else TOUR_TIMINGS
        rig = DemoRig(Path(tmp) / "terminal", manifest, timings=timings, realtime=realtime)
        print("Starting pcscd with the vpcd reader, and the gate daemon on mock GPIO ...", file=out)
        out.flush()
        with rig:
            if interactive:
                from terminald.sim.demo_ui import run_ui

                code = run_ui(rig)
                print("Stopping: the daemon de-energises the relay; pcscd stops.", file=out)
                return code
            print(
                f"Gate daemon {rig.the_daemon.config.terminal.id!r} running "
                f"(config {rig.config_path}, state {rig.config.state.dir}); "
                f"pin_timeout_s={timings.pin_timeout_s:g}, open_ms={timings.open_ms}, "
                f"held_open_s={timings.held_open_s:g}",
                file=out,
                flush=True,
            )
            results = run_tour(rig, out, pace)
        return 0 if all(r.ok for r in results) else 1
