"""The link's own figures for scripts/bench-link: pushes and broadcasts over the test line.

The terminal end is the real link stack — :class:`TerminalNode`, the serial pump, the
link service's workers, :class:`BulkReceiver` over a real spool — with an installer that
accepts whatever arrives whole (the spool has checked its SHA-256): what is measured is the
line, not an install. Requests other than bulk ones are refused ``busy`` (no daemon to ask).
The back-office end is :class:`HostLink`, as a gateway or ``terminald host`` uses it.
"""

from __future__ import annotations

import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from terminald.backends.link_port import LinkPort, serial_opener
from terminald.backoffice.host_link import HostLink
from terminald.daemon.link_handlers import LinkContext
from terminald.daemon.link_service import LinkService
from terminald.daemon.operator import Operator, OperatorError
from terminald.link import hello
from terminald.link.bulk_receiver import BulkReceiver, InstallVerdict
from terminald.link.keys import TerminalKey, generate_private, public_of
from terminald.link.terminal_node import TerminalNode
from terminald.link.tuning import transport_config
from terminald.sim.line import DEFAULT_BAUD, Bus, Line
from terminald.store.link_keys import HostKeys
from terminald.store.spool import Spool

MAX_TRANSFER = 64 << 20
# An RS-485 adapter buffers little: FTDI's FT232R has a 256-byte transmit buffer, CP2102
# 640 bytes (their datasheets); the Pi's PL011 UART a 32-byte FIFO. The Line's 4 KB models
# a USB-serial adapter on RS-232.
BUS_FIFO_BYTES = 512


class NoOperator:
    """No daemon behind this terminal: every operator request is refused (``busy``)."""

    def __getattr__(self, name: str) -> object:
        def refuse(*_: object) -> object:
            raise OperatorError("bench terminal: no daemon")

        return refuse


@dataclass
class BenchTerminal:
    address: int
    public: bytes
    service: LinkService
    installed: list[bytes]  # SHA-256 of each transfer installed


def bench_terminal(
    path: str, address: int, host_public: bytes, directory: Path, *, baud: int, half_duplex: bool
) -> BenchTerminal:
    private = generate_private()
    slot = hello.SessionSlot(private, host_public, f"bench-{address}", address=address)
    node = TerminalNode(
        address, slot, transport_config(baud, initiator=False, half_duplex=half_duplex)
    )
    port = LinkPort(serial_opener(Path(path), baud), node, name=f"bench-{address}")
    installed: list[bytes] = []

    def install(kind: str, sha256: bytes, data: bytes) -> InstallVerdict:
        installed.append(sha256)
        return InstallVerdict(True)

    spool = Spool(directory / f"spool-{address}", max_bytes=2 * MAX_TRANSFER)
    receiver = BulkReceiver(spool, install, max_size=MAX_TRANSFER)
    context = LinkContext(
        f"bench-{address}",
        cast("Operator", NoOperator()),
        None,
        None,
        lambda: {},
        lambda _: None,
    )
    service = LinkService(node, port, context, receiver)
    return BenchTerminal(address, public_of(private), service, installed)


@dataclass
class Setup:
    host: HostLink
    terminals: list[BenchTerminal]
    wire: Line | Bus


@contextmanager
def linked(
    count: int = 1, *, bus: bool = False, baud: int = DEFAULT_BAUD, seed: int = 0
) -> Iterator[Setup]:
    """``count`` bench terminals (addresses 1..count) and a HostLink, on a Line (one
    terminal, full duplex) or a Bus (half duplex RS-485, one shared wire)."""
    host_private = generate_private()
    with ExitStack() as stack:
        directory = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-link-")))
        if bus:
            wire: Line | Bus = stack.enter_context(
                Bus(count, baud=baud, seed=seed, fifo_bytes=BUS_FIFO_BYTES)
            )
            names = [f"t{i}" for i in range(1, count + 1)]
        else:
            if count != 1:
                raise ValueError("a Line carries one terminal; use bus=True")
            wire = stack.enter_context(Line(baud=baud, seed=seed))
            names = ["terminal"]
        terminals = []
        for address, name in enumerate(names, start=1):
            terminal = bench_terminal(
                wire.path(name),
                address,
                public_of(host_private),
                directory,
                baud=baud,
                half_duplex=bus,
            )
            terminal.service.start()
            stack.callback(terminal.service.stop)
            terminals.append(terminal)
        keys = HostKeys(
            host_private,
            Ed25519PrivateKey.generate(),
            {t.address: TerminalKey(t.address, t.public, "") for t in terminals},
        )
        host = stack.enter_context(
            HostLink(Path(wire.path("host")), keys, baud=baud, rs485=bus, rts=False)
        )
        yield Setup(host, terminals, wire)


@dataclass(frozen=True)
class PushResult:
    payload: int
    seconds: float
    chunks: int
    chunks_sent: int
    installed: bool
    retransmitted: int  # transport segments sent again (a cut, a byte error)

    def efficiency(self, baud: int = DEFAULT_BAUD) -> float:
        return self.payload / (baud / 10 * self.seconds)


def push(
    setup: Setup, data: bytes, *, address: int = 1, cut_at: float | None = None, cut_s: float = 1.0
) -> PushResult:
    """Push ``data`` to one terminal (session opened first, not timed). ``cut_at``: cut the
    line when that share of the transfer is acknowledged, for ``cut_s`` seconds."""
    host = setup.host
    host.open_session(address)
    cut_done = threading.Event()

    def progress(done: int, total: int) -> None:
        if cut_at is not None and not cut_done.is_set() and done >= cut_at * total:
            cut_done.set()
            setup.wire.cut(cut_s)

    started = time.monotonic()
    outcome = host.push(address, "revocation", data, progress=progress, timeout=3600)
    seconds = time.monotonic() - started
    sender = host.last_sender
    assert sender is not None
    transport = host.node.peers[address].transport
    retransmitted = transport.stats.retransmits if transport is not None else 0
    return PushResult(
        len(data),
        seconds,
        sender.offer.chunks,
        sender.chunks_sent,
        outcome.installed,
        retransmitted,
    )


def broadcast(setup: Setup, data: bytes) -> float:
    """Seconds to get ``data`` installed by every terminal (sessions opened first)."""
    addresses = [t.address for t in setup.terminals]
    for address in addresses:
        setup.host.open_session(address)
    started = time.monotonic()
    outcomes = setup.host.broadcast(addresses, "revocation", data, timeout=3600)
    seconds = time.monotonic() - started
    failed = {a: o for a, o in outcomes.items() if o is None or not o.installed}
    if failed:
        raise RuntimeError(f"broadcast failed for {failed}")
    return seconds
