"""scripts/bench-policy's decision cases: the plans the parent writes, the child that times them.

A plan (JSON) names the case, the enrolment backend ("sqlite": the real
``EnrolmentStore`` on the installed database; "memory": the same content read out of it
into ``MemoryEnrolment``, the policy's own cost) and the probes: (issuer key id hex,
serial, Unix time, selection key or None), in time order as a daemon sees taps. The child
runs in a fresh process per plan (scripts/bench-policy re-executes itself with
``--child``), times its first decision alone, warms up on probes of its own, then times
each ``Policy.decide`` (wall and CPU time) and prints one JSON line, with the involuntary
context switches and full garbage collections that fell in the run.

What the daemon does around a decision and is not timed: ``Policy.granted`` after a
grant (anti-passback and the attendance toggle learn of it), and, for anti-passback, the
partner's heartbeats and relayed exits arriving over the link.
"""

from __future__ import annotations

import gc
import heapq
import json
import os
import random
import resource
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from datetime import time as clock
from pathlib import Path
from typing import Any, Final

from terminald.core.auth import CardIdentity
from terminald.core.policy import (
    AttendanceSettings,
    GateSettings,
    PassbackSettings,
    Policy,
    PolicySettings,
    Presence,
    Product,
    VendingSettings,
    parse_period,
)
from terminald.core.policy.attendance import AttendanceBook
from terminald.enrolment.memory import MemoryEnrolment
from terminald.enrolment.model import Enrolment, EnrolmentContent
from terminald.store.enrolment_db import EnrolmentStore

UNKNOWN_SHARE: Final = 0.10  # taps by certificates linked to no one (renewed cards, visitors)
PARTNER: Final = "gate-exit"
GATE_GROUPS: Final = frozenset({"office", "lab"})

# Probes for the gate, vending and attendance span New Year 2027 in Japan: weekdays,
# weekends and two public holidays (1 January, 11 January: Coming of Age Day).
WINDOW_START: Final = datetime(2026, 12, 27, 15, 0, tzinfo=UTC)  # 28 Dec 00:00 JST
WINDOW: Final = timedelta(days=16)
# Anti-passback: one working day at the entry gate, 07:00-21:00 JST (reset at 04:00).
PASSBACK_DAY: Final = datetime(2027, 1, 11, 22, 0, tzinfo=UTC)  # 12 Jan 07:00 JST
PASSBACK_SPAN: Final = timedelta(hours=14)

CASES: Final = {
    "gate": "gate: door groups + schedule + holidays",
    "passback": "gate + anti-passback (entry, partner relaying)",
    "vend": "vending: age 20 from an attestation",
    "attendance": "attendance: keys or toggle, role door",
}


def settings_for(case: str) -> PolicySettings:
    if case in ("gate", "passback"):
        passback = None
        if case == "passback":
            passback = PassbackSettings("entry", PARTNER, reset=clock(4, 0))
        return PolicySettings("gate", gate=GateSettings(GATE_GROUPS, passback))
    if case == "vend":
        products = (
            Product("A", "beer", 20, hours=(parse_period("05:00-23:00"),)),
            Product("B", "tobacco", 20),
            Product("C", "water"),
        )
        return PolicySettings("vend", vending=VendingSettings(products))
    return PolicySettings("attendance", attendance=AttendanceSettings("auto", frozenset({"staff"})))


# -- the parent: plans --------------------------------------------------------------------

Probe = tuple[str, int, float, str | None]


def _unknown(content: EnrolmentContent, issuers: list[bytes], rng: random.Random) -> Probe:
    while True:
        key = (rng.choice(issuers), rng.randrange(2**24, 2**32))
        if key not in content.credentials:
            return key[0].hex(), key[1], 0.0, None


def probes(case: str, content: EnrolmentContent, count: int, rng: random.Random) -> list[Probe]:
    """``count`` probes for ``case``, ~UNKNOWN_SHARE of them unknown certificates, in
    time order. Vending draws its enrolled people from those whose attestation holds
    throughout the window (the case is "with an attestation")."""
    keys = list(content.credentials)
    if case == "vend":
        first_day = (WINDOW_START + timedelta(hours=9)).date()
        keys = [
            k
            for k in keys
            if any(
                a.since <= first_day for a in content.people[content.credentials[k].subject].ages
            )
        ]
    issuers = sorted({k[0] for k in content.credentials})
    start, span = (PASSBACK_DAY, PASSBACK_SPAN) if case == "passback" else (WINDOW_START, WINDOW)
    times = sorted(start.timestamp() + rng.random() * span.total_seconds() for _ in range(count))
    out: list[Probe] = []
    for at in times:
        if rng.random() < UNKNOWN_SHARE:
            issuer, serial, _, _ = _unknown(content, issuers, rng)
        else:
            issuer_key, serial = rng.choice(keys)
            issuer = issuer_key.hex()
        selection: str | None = None
        if case == "vend":
            selection = rng.choice(("A", "B"))
        elif case == "attendance" and rng.random() < 0.5:
            selection = rng.choice(("A", "B", "C", "D"))
        out.append((issuer, serial, at, selection))
    return out


def seed_passages(content: EnrolmentContent, rng: random.Random) -> list[list[Any]]:
    """The morning before the measured day at the entry gate: 30 % of the people entered
    between the 04:00 reset and 07:00 JST, and a third of those left by the exit gate."""
    out: list[list[Any]] = []
    reset = PASSBACK_DAY - timedelta(hours=3)
    for subject in rng.sample(sorted(content.people), round(0.3 * len(content.people))):
        entered = reset + timedelta(seconds=rng.randrange(3 * 3600 - 60))
        out.append([subject, "entry", entered.timestamp(), ""])
        if rng.random() < 1 / 3:
            left = entered + timedelta(seconds=rng.randrange(1, 60))
            out.append([subject, "exit", left.timestamp(), PARTNER])
    return out


def write_plan(
    path: Path,
    case: str,
    backend: str,
    db: Path,
    content: EnrolmentContent,
    count: int,
    warm: int,
    seed: int,
) -> Path:
    rng = random.Random(seed)  # benchmark data, reproducible
    warm_probes = probes(case, content, warm, rng)
    # The first decision, timed on its own, is an enrolled person's (the whole path).
    enrolled = next(
        i for i, p in enumerate(warm_probes) if (bytes.fromhex(p[0]), p[1]) in content.credentials
    )
    warm_probes[0], warm_probes[enrolled] = warm_probes[enrolled], warm_probes[0]
    plan = {
        "case": case,
        "backend": backend,
        "db": str(db),
        "warm": warm_probes,
        "probes": probes(case, content, count, rng),
        "seed": seed,
        "passages": seed_passages(content, rng) if case == "passback" else [],
    }
    path.write_text(json.dumps(plan))
    return path


# -- the child --------------------------------------------------------------------------


@dataclass
class _Partner:
    """The exit gate as the link reports it: a heartbeat every 5 s, and an exit some time
    after half of our entries."""

    presence: Presence
    rng: random.Random
    due: list[tuple[float, str]]
    heard: float = 0.0

    def until(self, at: float) -> None:
        if at - self.heard >= 5:
            self.presence.partner_seen(PARTNER, datetime.fromtimestamp(at, UTC))
            self.heard = at
        while self.due and self.due[0][0] <= at:
            when, subject = heapq.heappop(self.due)
            self.presence.passed(subject, "exit", datetime.fromtimestamp(when, UTC), PARTNER)

    def entered(self, subject: str, at: float) -> None:
        if self.rng.random() < 0.5:
            heapq.heappush(self.due, (at + self.rng.uniform(1800, 6 * 3600), subject))


def _enrolment(backend: str, db: Path) -> tuple[Enrolment, EnrolmentStore]:
    store = EnrolmentStore(db)
    if backend == "sqlite":
        return store, store
    info = store.info()
    assert info is not None, store.problem()
    memory = MemoryEnrolment.installed(
        store.content(), info.issued_at, info.valid_until, info.version
    )
    return memory, store


def _presence(passages: list[list[Any]]) -> Presence:
    presence = Presence()
    for subject, direction, at, source in passages:
        presence.passed(subject, direction, datetime.fromtimestamp(at, UTC), source)
    return presence


def _identity(probe: list[Any]) -> tuple[CardIdentity, datetime, str | None]:
    issuer, serial, at, selection = probe
    return CardIdentity(serial, bytes.fromhex(issuer)), datetime.fromtimestamp(at, UTC), selection


@dataclass
class _Timed:
    wall_ns: list[int]
    cpu_ns: list[int]
    reasons: Counter[str]


def _run(policy: Policy, probes: list[list[Any]], partner: _Partner | None) -> _Timed:
    """Decide every probe; wall time with perf_counter_ns, and around it the thread's CPU
    time (thread_time_ns: a system call here, about 1 µs, in the CPU figure only), so a
    decision the scheduler preempted shows as wall time, not CPU time."""
    decide, wall, cpu = policy.decide, time.perf_counter_ns, time.thread_time_ns
    prepared = [(_identity(p), p[2]) for p in probes]
    out = _Timed([], [], Counter())
    for (identity, now, selection), at in prepared:
        if partner is not None:
            partner.until(at)
        c0 = cpu()
        t0 = wall()
        decision = decide(identity, now, selection)
        t1 = wall()
        c1 = cpu()
        out.wall_ns.append(t1 - t0)
        out.cpu_ns.append(c1 - c0)
        out.reasons[decision.reason.value] += 1
        if decision.granted:  # after the PIN, in the daemon: not part of the decision
            policy.granted(decision, now)
            if partner is not None and decision.subject is not None:
                partner.entered(decision.subject, at)
    return out


class _Collections:
    """The garbage collector's full (generation 2) passes and their time, while on."""

    def __init__(self) -> None:
        self.full, self.full_ns, self._began = 0, 0, 0
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if info["generation"] != 2:
            return
        if phase == "start":
            self._began = time.perf_counter_ns()
        else:
            self.full += 1
            self.full_ns += time.perf_counter_ns() - self._began


def child(plan_path: str) -> None:
    plan = json.loads(Path(plan_path).read_text())
    case = plan["case"]
    enrolment, store = _enrolment(plan["backend"], Path(plan["db"]))
    policy = Policy(settings_for(case), enrolment, _presence(plan["passages"]), None)
    # The first decision of a process: the holidays library builds its year tables,
    # SQLite reads its first pages (a daemon pays this once, at its first tap).
    first = _run(policy, plan["warm"][:1], None).wall_ns[0]
    # Warm up (code paths, SQLite's page cache), then start the measured run with the
    # state a daemon would have: the morning's passages, no attendance yet.
    _run(policy, plan["warm"][1:], None)
    policy.presence = _presence(plan["passages"])
    policy.attendance = AttendanceBook()
    partner = None
    if case == "passback":
        partner = _Partner(policy.presence, random.Random(plan["seed"]), [])
    gc.collect()
    collections = _Collections()
    switches = resource.getrusage(resource.RUSAGE_SELF).ru_nivcsw
    timed = _run(policy, plan["probes"], partner)
    switches = resource.getrusage(resource.RUSAGE_SELF).ru_nivcsw - switches
    gc.callbacks.clear()
    empty = []
    timer = time.perf_counter_ns
    for _ in range(len(timed.wall_ns)):
        t0 = timer()
        empty.append(timer() - t0)
    empty.sort()
    store.close()
    result = {
        "wall_ns": timed.wall_ns,
        "cpu_ns": timed.cpu_ns,
        "reasons": timed.reasons,
        "timer_ns": empty[len(empty) // 2],
        "first_ns": first,
        "preempted": switches,
        "gc_full": collections.full,
        "gc_full_ns": collections.full_ns,
        "load": os.getloadavg()[0],
    }
    print(json.dumps(result))


def outcome_mix(reasons: dict[str, int]) -> str:
    total = sum(reasons.values())
    ordered = sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0]))
    return ", ".join(f"{name} {100 * n / total:.0f} %" for name, n in ordered)
