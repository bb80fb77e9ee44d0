"""A deterministic simulation of two transports over a serial line (no threads, no clock).

Each segment travels as a session record (24 bytes: 8-byte counter + 16-byte tag) in a
frame, so it occupies ``wire_bytes(len)`` bytes of a line of ``RATE`` bytes/s. The driver
asks each end for one segment whenever its line is free. Full duplex: one line per
direction. Half duplex: one shared line, and a turnaround delay whenever the talker
changes. Loss, duplicates and extra latency are injected per segment by callbacks.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from terminald.link.frame import wire_overhead
from terminald.link.transport import Lane, Transport, TransportConfig
from terminald.link.transport_wire import Segment, decode_segment

RATE = 11_520  # bytes/s: 115200 baud, 8N1
RECORD_OVERHEAD = 24  # session record: 8-byte counter + 16-byte AEAD tag
MAX_SEGMENT = 2048 - RECORD_OVERHEAD  # a segment fills a maximal frame payload


def wire_bytes(segment_len: int) -> int:
    """Bytes a segment of ``segment_len`` occupies on the line (record + frame)."""
    payload = segment_len + RECORD_OVERHEAD
    return payload + wire_overhead(payload)


@dataclass
class Sent:
    """One transmission in the log."""

    start: float
    end: float
    sender: str
    segment: Segment
    raw: bytes
    dropped: bool


# (sender, index of its transmission, wire length, rng) -> drop it?
DropRule = Callable[[str, int, int, random.Random], bool]


def byte_errors(rate: float) -> DropRule:
    """A frame is lost when any of its bytes is hit (the frame layer drops it, no more)."""

    def rule(sender: str, index: int, length: int, rng: random.Random) -> bool:
        return rng.random() < 1 - (1 - rate) ** length

    return rule


def random_loss(p: float) -> DropRule:
    def rule(sender: str, index: int, length: int, rng: random.Random) -> bool:
        return rng.random() < p

    return rule


@dataclass
class Sim:
    """Two ends, ``a`` and ``b``, and the line(s) between them."""

    config_a: TransportConfig
    config_b: TransportConfig
    drop: DropRule | None = None
    duplicate: float = 0.0  # probability a delivered segment arrives twice
    latency: float = 0.0  # extra one-way delay (a modem, a converter)
    turnaround: float = 0.002  # half duplex: seconds to turn the line around
    seed: int = 0
    now: float = 0.0
    log: list[Sent] = field(default_factory=list)
    delivered: dict[str, list[tuple[float, Lane, bytes]]] = field(
        default_factory=lambda: {"a": [], "b": []}
    )
    actions: list[tuple[float, int, Callable[[Sim], None]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.ends = {"a": Transport(self.config_a, 0.0), "b": Transport(self.config_b, 0.0)}
        self.half = self.config_a.half_duplex
        self.rng = random.Random(self.seed)
        self._free = {"a": 0.0, "b": 0.0, "line": 0.0}
        self._arrivals: list[tuple[float, int, str, bytes]] = []
        self._order = 0
        self._count = {"a": 0, "b": 0}
        self._last_talker = ""
        self.collisions = 0
        self.stalls = 0  # poll() gave nothing while next_deadline() said "now"

    @property
    def a(self) -> Transport:
        return self.ends["a"]

    @property
    def b(self) -> Transport:
        return self.ends["b"]

    def at(self, when: float, action: Callable[[Sim], None]) -> None:
        """Run ``action(sim)`` at simulated time ``when``."""
        self._order += 1
        heapq.heappush(self.actions, (when, self._order, action))

    def _line_key(self, name: str) -> str:
        return "line" if self.half else name

    def _transmit(self, name: str, raw: bytes) -> None:
        other = "b" if name == "a" else "a"
        key = self._line_key(name)
        start = max(self.now, self._free[key])
        if self.half:
            if self._last_talker and self._last_talker != name:
                start += self.turnaround
                # The other end must have handed the line over (its last segment had POLL).
                last_other = next((s for s in reversed(self.log) if s.sender == other), None)
                if last_other is not None and not last_other.segment.poll:
                    self.collisions += 1
            self._last_talker = name
        length = wire_bytes(len(raw))
        end = start + length / RATE
        self._free[key] = end
        index = self._count[name]
        self._count[name] += 1
        dropped = self.drop is not None and self.drop(name, index, length, self.rng)
        self.log.append(Sent(start, end, name, decode_segment(raw), raw, dropped))
        if not dropped:
            copies = 2 if self.rng.random() < self.duplicate else 1
            for _ in range(copies):
                self._order += 1
                heapq.heappush(self._arrivals, (end + self.latency, self._order, other, raw))

    def _step(self) -> None:
        while self.actions and self.actions[0][0] <= self.now:
            heapq.heappop(self.actions)[2](self)
        while self._arrivals and self._arrivals[0][0] <= self.now:
            _, _, dest, raw = heapq.heappop(self._arrivals)
            for lane, message in self.ends[dest].on_segment(raw, self.now):
                self.delivered[dest].append((self.now, lane, message))
        for name, end in self.ends.items():
            if self._free[self._line_key(name)] <= self.now:
                out = end.poll(self.now, limit=1)
                for raw in out:
                    self._transmit(name, raw)
                if not out:
                    deadline = end.next_deadline()
                    if deadline is not None and deadline <= self.now:
                        self.stalls += 1

    def _next_time(self) -> float | None:
        times: list[float] = []
        if self.actions:
            times.append(self.actions[0][0])
        if self._arrivals:
            times.append(self._arrivals[0][0])
        for name, end in self.ends.items():
            deadline = end.next_deadline()
            if deadline is not None:
                times.append(max(deadline, self._free[self._line_key(name)]))
        later = [t for t in times if t > self.now]
        return min(later) if later else None

    def run(self, until: Callable[[Sim], bool], limit: float = 3600.0) -> None:
        """Advance until ``until(sim)`` holds; fails if the time ``limit`` passes first."""
        while not until(self):
            self._step()
            if until(self):
                return
            nxt = self._next_time()
            assert nxt is not None, "simulation stalled: nothing left to happen"
            assert nxt <= limit, f"not done by t={limit}"
            self.now = nxt

    def messages(self, dest: str, lane: Lane) -> list[bytes]:
        return [m for _, ln, m in self.delivered[dest] if ln == lane]


def config(**overrides: object) -> TransportConfig:
    """The configuration the simulations use unless a test overrides a field."""
    fields: dict[str, object] = {
        "max_segment": MAX_SEGMENT,
        "credit": 16,
        "max_queued": 4 * 1024 * 1024,
    }
    fields.update(overrides)
    return TransportConfig(**fields)  # type: ignore[arg-type]
