"""One bench terminal in its own process, as a real terminal is its own device.

    python -m terminald.sim.link_bench_terminal --port PATH --address N --host-key B64
        --dir DIR [--half-duplex] [--baud BAUD]

Builds :func:`terminald.sim.link_bench.bench_terminal` on the serial port ``PATH``, prints
its public key (base64, one line) on stdout, then serves the link until stdin closes or
SIGTERM. Why a process: with several terminals' threads in one interpreter the GIL delays
a terminal's answer past the host's turn deadline on a half-duplex bus, and terminals then
collide — a cost real terminals do not have. Errors: a bad argument exits 2 with a message.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

from terminald.link.keys import decode_public, encode_public
from terminald.sim.line import DEFAULT_BAUD
from terminald.sim.link_bench import bench_terminal


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", required=True, help="the terminal's serial device")
    parser.add_argument("--address", required=True, type=int, help="link address, 1..126")
    parser.add_argument("--host-key", required=True, help="the back office's public key, base64")
    parser.add_argument("--dir", required=True, type=Path, help="where its spool goes")
    parser.add_argument("--half-duplex", action="store_true", help="RS-485: take turns")
    parser.add_argument("--baud", type=int, default=DEFAULT_BAUD)
    args = parser.parse_args(argv)
    if not 1 <= args.address <= 0x7E:
        parser.error(f"--address must be 1..126, got {args.address}")
    try:
        host_public = decode_public(args.host_key, "--host-key")
    except ValueError as exc:
        parser.error(str(exc))
    terminal = bench_terminal(
        args.port,
        args.address,
        host_public,
        args.dir,
        baud=args.baud,
        half_duplex=args.half_duplex,
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())

    def watch_stdin() -> None:
        sys.stdin.read()  # returns when the parent closes our stdin (or dies)
        stop.set()

    threading.Thread(target=watch_stdin, daemon=True).start()
    assert terminal.service is not None
    terminal.service.start()
    try:
        print(encode_public(terminal.public), flush=True)
        while not stop.wait(1.0):
            pass
    finally:
        terminal.service.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
