"""``terminald sim card PROFILE``: run one virtual My Number Card in a vpcd slot.

The card connects to the vpcd driver of a running pcscd and stays until SIGINT/SIGTERM,
reconnecting whenever pcscd restarts. ``--apdu-log`` appends one line per card event (PIN
data masked), flushed at once, so an out-of-process test can read what the terminal sent.
"""

from __future__ import annotations

import argparse
import dataclasses
import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import IO, TYPE_CHECKING

from terminald.cli.common import CliError, Groups, Subparsers

if TYPE_CHECKING:
    from terminald.sim.card import CardEvent
    from terminald.sim.profile import CardProfile

# terminald.sim.vpcd.DEFAULT_PORT (vpcd's first slot), spelled out so that building the
# parser does not import the virtual card and cryptography with it; a test checks they agree.
DEFAULT_PORT = 35963


def register(commands: Subparsers, groups: Groups) -> None:
    del commands  # lives under "sim"
    card = groups["sim"].add_parser(
        "card",
        help="run a virtual My Number Card on pcscd's vpcd reader",
        description="Load a card profile (from `terminald sim pki`) and serve it on the vpcd "
        "virtual reader until interrupted. Reader 'Virtual PCD 00 00' is port 35963, "
        "'Virtual PCD 00 01' is 35964.",
    )
    card.add_argument(
        "profile",
        type=Path,
        metavar="PROFILE",
        help="card profile JSON file, or with --pki a card name of that test PKI (e.g. twin)",
    )
    card.add_argument(
        "--pki", type=Path, metavar="DIR", help="the test PKI that PROFILE names a card of"
    )
    card.add_argument(
        "--vpcd",
        default=f"127.0.0.1:{DEFAULT_PORT}",
        metavar="HOST:PORT",
        help=f"vpcd listener (default 127.0.0.1:{DEFAULT_PORT})",
    )
    card.add_argument(
        "--realtime",
        action="store_true",
        help="sleep per APDU as the profile's timing model says (a profile without one "
        "gets the built-in NFC model)",
    )
    card.add_argument(
        "--apdu-log",
        type=Path,
        metavar="FILE",
        help="append one line per power event and APDU (hex command, SW, data length)",
    )
    card.set_defaults(func=run_card)


def parse_endpoint(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise CliError(f"--vpcd wants HOST:PORT, got {text!r}")
    return host, int(port)


def _load(path: Path) -> CardProfile:
    from terminald.sim.profile import CardProfile

    try:
        return CardProfile.load(path)
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except (ValueError, TypeError) as exc:
        raise CliError(f"{path} is not a card profile: {exc}") from exc


def _profile_of(pki: Path, name: str) -> Path:
    """The profile file of card ``name`` in the test PKI at ``pki`` (a path stays a path)."""
    from terminald.sim.testpki import TestPkiManifest

    if Path(name).suffix == ".json":
        return Path(name)
    try:
        manifest = TestPkiManifest.load(pki)
    except (OSError, ValueError, KeyError) as exc:
        raise CliError(f"--pki {pki}: not a test PKI ({exc})") from exc
    try:
        return manifest.profile_path(name)
    except KeyError:
        names = ", ".join(card.name for card in manifest.cards)
        raise CliError(f"no card {name!r} in {pki} (cards: {names})") from None


def run_card(args: argparse.Namespace) -> int:
    from terminald.sim.card import VirtualJpkiCard
    from terminald.sim.profile import TimingModel
    from terminald.sim.vpcd import VpcdCard

    host, port = parse_endpoint(args.vpcd)
    if args.pki is not None:
        args.profile = _profile_of(args.pki, str(args.profile))
    profile = _load(args.profile)
    if args.realtime and profile.timing == TimingModel():
        profile = dataclasses.replace(profile, timing=TimingModel.nfc())
    try:
        card = VirtualJpkiCard(profile)
    except ValueError as exc:
        raise CliError(f"{args.profile}: {exc}") from exc
    log: IO[str] | None = None
    if args.apdu_log is not None:
        try:
            log = args.apdu_log.open("a", encoding="utf-8")
        except OSError as exc:
            raise CliError(f"cannot open {args.apdu_log}: {exc.strerror or exc}") from exc

        def write(event: CardEvent, handle: IO[str] = log) -> None:
            handle.write(event.describe() + "\n")
            handle.flush()

        card.add_listener(write)

    def report(up: bool) -> None:
        state = "connected to" if up else "disconnected from"
        print(f"card {profile.name}: {state} vpcd {host}:{port}", flush=True)

    done = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        del signum, frame
        done.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    slot = VpcdCard(card, host, port, realtime=args.realtime, on_connection=report)
    print(f"card {profile.name}: waiting for vpcd at {host}:{port}", file=sys.stderr, flush=True)
    try:
        slot.start()
        done.wait()
    finally:
        slot.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if log is not None:
            log.close()
    return 0
