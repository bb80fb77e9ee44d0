"""The wire of the test line, without the ptys: byte budget, collisions, injected faults.

Pure logic with time passed in (``now``, seconds, monotonic), so it is exact to test; the
pty pump of :mod:`terminald.sim.line` calls :meth:`Medium.advance` about once a millisecond.

A :class:`Medium` is one shared wire at a fixed byte rate. Its talkers are :class:`Port`\\ s
whose programs wrote bytes into the port's transmit FIFO; every byte slot of the wire goes
to each listener that is not itself transmitting in that slot (a half-duplex transceiver
does not hear itself). A point-to-point line is two media (one per direction, full
duplex); a multi-drop bus is one medium shared by every port (half duplex).

Collisions: RS-485 has no carrier sense, so two transmitters that overlap in time both
drive the wire and every receiver gets undefined levels. Here each talker's FIFO drains at
the line rate whatever the others do; a byte slot with two or more talkers (or a talker
and an injected garbage burst) reaches the listeners as a random byte, counted in
``collided`` (or ``garbage``). Overlap is judged per pump step (about 1 ms), not per bit.

Faults are applied per listener after the wire (noise at each receiver): a flipped bit
with probability ``error_rate`` per byte and a lost byte (a framing error the UART drops)
with probability ``drop_rate``. The gaps between faults are drawn from a geometric
distribution by a seeded RNG, so for a seed the faults fall on the same byte positions of
a stream however the pump happens to chunk it.
"""

from __future__ import annotations

import math
import random
import sys
from dataclasses import dataclass, field

# 8N1: a start bit, 8 data bits, a stop bit.
BITS_PER_BYTE = 10
# How much line time a busy wire may carry over between pump steps: enough to ride out a
# late step (the thread can be descheduled for several ms); beyond it, time is lost, so
# the line can only ever be slower than its rate, never faster.
BURST_S = 0.010
_NEVER = sys.maxsize


@dataclass
class Port:
    """One party's end of the line: its transmit FIFO (bytes taken from its program, not
    yet on the wire) and receive buffer (bytes off the wire, not yet taken by the pty).

    Both are bounded by the owner (the pump reads no more than ``tx_room()``; the medium
    counts what does not fit in ``rx`` as ``overrun``)."""

    name: str
    fifo_bytes: int
    rx_bytes: int
    tx: bytearray = field(default_factory=bytearray)
    rx: bytearray = field(default_factory=bytearray)
    cut: bool = False
    sent: int = 0
    received: int = 0

    def tx_room(self) -> int:
        return max(0, self.fifo_bytes - len(self.tx))


@dataclass
class Counters:
    """What a medium did, in bytes (``corrupted``, ``dropped`` and ``overrun`` summed over
    listeners; the others per byte slot of the wire)."""

    carried: int = 0
    corrupted: int = 0
    dropped: int = 0
    garbage: int = 0
    collided: int = 0
    cut_lost: int = 0
    overrun: int = 0

    def add(self, other: Counters) -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))


def _gap(rng: random.Random, p: float) -> int:
    """Clean bytes before the next fault for a per-byte fault probability ``p``."""
    if p <= 0.0:
        return _NEVER
    if p >= 1.0:
        return 0
    return int(math.log(1.0 - rng.random()) / math.log(1.0 - p))


class Noise:
    """Bit flips and dropped bytes for one listener, at per-byte probabilities.

    ``apply(data)`` returns the bytes the listener receives and how many were flipped and
    dropped. Raises ValueError for a probability outside 0..1."""

    def __init__(self, rng: random.Random) -> None:
        # One stream per fault kind, so how a stream is chunked cannot reorder the draws.
        self._flip_rng = random.Random(rng.getrandbits(64))  # noqa: S311 - reproducible
        self._drop_rng = random.Random(rng.getrandbits(64))  # noqa: S311
        self.error_rate = 0.0
        self.drop_rate = 0.0
        self._to_flip = _NEVER
        self._to_drop = _NEVER

    def set_rates(self, error_rate: float, drop_rate: float) -> None:
        for name, p in (("error_rate", error_rate), ("drop_rate", drop_rate)):
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"{name} must be a probability in 0..1, got {p!r}")
        self.error_rate, self.drop_rate = error_rate, drop_rate
        self._to_flip = _gap(self._flip_rng, error_rate)
        self._to_drop = _gap(self._drop_rng, drop_rate)

    def apply(self, data: bytes) -> tuple[bytes, int, int]:
        n = len(data)
        if self._to_flip >= n and self._to_drop >= n:
            # The common case: no fault in this chunk, no per-byte work.
            self._to_flip -= n if self._to_flip != _NEVER else 0
            self._to_drop -= n if self._to_drop != _NEVER else 0
            return data, 0, 0
        out = bytearray(data)
        flipped: set[int] = set()
        i = self._to_flip
        while i < n:
            out[i] ^= 1 << self._flip_rng.randrange(8)
            flipped.add(i)
            i += 1 + _gap(self._flip_rng, self.error_rate)
        self._to_flip = i - n if i != _NEVER else _NEVER
        drops: list[int] = []
        i = self._to_drop
        while i < n:
            drops.append(i)
            i += 1 + _gap(self._drop_rng, self.drop_rate)
        self._to_drop = i - n if i != _NEVER else _NEVER
        for index in reversed(drops):
            del out[index]
        corrupted = len(flipped.difference(drops))
        return bytes(out), corrupted, len(drops)


class Medium:
    """One wire at ``rate`` bytes/s between ``talkers`` and ``listeners`` (see the module
    docstring for collisions and faults). ``advance(now)`` moves what the byte budget
    allows from talkers' FIFOs into listeners' receive buffers; call it (it is cheap)
    just before bytes enter an idle talker's FIFO, so their line time starts then."""

    def __init__(
        self, talkers: list[Port], listeners: list[Port], rate: float, rng: random.Random
    ) -> None:
        if rate <= 0:
            raise ValueError(f"line rate must be positive, got {rate!r} bytes/s")
        self.talkers = talkers
        self.listeners = listeners
        self.rate = rate
        self.counters = Counters()
        self.garbage_pending = 0
        self.error_rate = self.drop_rate = 0.0
        self._rng = rng
        self._noise = {
            p.name: Noise(random.Random(rng.getrandbits(64)))  # noqa: S311 - reproducible
            for p in listeners
        }
        self._credit = 0.0
        self._last: float | None = None

    def set_rates(self, error_rate: float, drop_rate: float) -> None:
        """Fault probabilities per byte for every listener; ValueError outside 0..1."""
        for noise in self._noise.values():
            noise.set_rates(error_rate, drop_rate)
        self.error_rate, self.drop_rate = error_rate, drop_rate

    def busy(self) -> bool:
        return self.garbage_pending > 0 or any(p.tx for p in self.talkers)

    def advance(self, now: float) -> None:
        if self._last is None or not self.busy():
            # An idle wire banks nothing: a UART cannot send early what it was not given,
            # and banking would hide the turnaround of a stop-and-wait protocol.
            self._credit, self._last = 0.0, now
            return
        self._credit = min(self._credit + (now - self._last) * self.rate, self.rate * BURST_S)
        self._last = now
        slots = int(self._credit)
        if slots <= 0:
            return
        chunks: list[tuple[Port, bytes]] = []
        used = 0
        for port in self.talkers:
            if port.tx:
                chunk = bytes(port.tx[:slots])
                del port.tx[:slots]
                used = max(used, len(chunk))
                if port.cut:
                    # A cut cable: the UART still sends at the line rate, into nothing.
                    self.counters.cut_lost += len(chunk)
                else:
                    chunks.append((port, chunk))
        noise_len = min(slots, self.garbage_pending)
        self.garbage_pending -= noise_len
        self._credit -= max(used, noise_len)
        wire = self._wire(chunks, noise_len)
        self.counters.carried += len(wire)
        for port in self.listeners:
            if port.cut:
                continue
            # A talker hears the wire only once its own transmission in this step ended.
            start = next((len(c) for p, c in chunks if p is port), 0)
            if start < len(wire):
                self._deliver(port, wire[start:])

    def _wire(self, chunks: list[tuple[Port, bytes]], noise_len: int) -> bytes:
        """The byte slots of one step: a talker's bytes where it is alone on the wire,
        random bytes where two or more sources overlap or garbage is injected."""
        real = sorted((len(c) for _, c in chunks), reverse=True)
        if len(real) > 1:
            self.counters.collided += real[1]
        self.counters.garbage += noise_len
        sources = sorted([*real, noise_len], reverse=True)
        overlap = sources[1] if len(sources) > 1 else 0
        if not chunks or noise_len >= real[0]:
            return self._rng.randbytes(max(noise_len, *real, 0))
        longest = max((c for _, c in chunks), key=len)
        return self._rng.randbytes(overlap) + longest[overlap:]

    def _deliver(self, port: Port, data: bytes) -> None:
        received, corrupted, dropped = self._noise[port.name].apply(data)
        self.counters.corrupted += corrupted
        self.counters.dropped += dropped
        room = max(0, port.rx_bytes - len(port.rx))
        if len(received) > room:
            # Nobody read the pty: a real UART overruns and loses what does not fit.
            self.counters.overrun += len(received) - room
            received = received[:room]
        port.rx += received
