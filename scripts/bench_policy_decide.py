"""scripts/bench-policy's decision cases: the plans the parent writes, the child that times them.

A plan (JSON) names the case, the enrolment backend ("sqlite": the real
``EnrolmentStore`` on the installed database; "memory": the same content read out of it
into ``MemoryEnrolment``, the policy's own cost) and the probes: (issuer key id hex,
serial, Unix time, selection key or None), in time order as a daemon sees taps. The child
runs in a fresh process per plan (scripts/bench-policy re-executes itself with
``--child``), warms up on probes of its own through a second ``Policy``, then times each
``Policy.decide`` with perf_counter_ns and prints one JSON line.

What the daemon does around a decision and is not timed: ``Policy.granted`` after a
grant (anti-passback and the attendance toggle learn of it), and, for anti-passback, the
partner's heartbeats and relayed exits arriving over the link.
"""

from __future__ import annotations

import gc
import heapq
import json
import random
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
    plan = {
        "case": case,
        "backend": backend,
        "db": str(db),
        "warm": probes(case, content, warm, rng),
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


def _run(
    policy: Policy, probes: list[list[Any]], partner: _Partner | None, timed: bool
) -> tuple[list[int], Counter[str]]:
    decide, timer = policy.decide, time.perf_counter_ns
    prepared = [(_identity(p), p[2]) for p in probes]
    latencies: list[int] = []
    reasons: Counter[str] = Counter()
    for (identity, now, selection), at in prepared:
        if partner is not None:
            partner.until(at)
        t0 = timer()
        decision = decide(identity, now, selection)
        t1 = timer()
        if timed:
            latencies.append(t1 - t0)
        reasons[decision.reason.value] += 1
        if decision.granted:  # after the PIN, in the daemon: not part of the decision
            policy.granted(decision, now)
            if partner is not None and decision.subject is not None:
                partner.entered(decision.subject, at)
    return latencies, reasons


def child(plan_path: str) -> None:
    plan = json.loads(Path(plan_path).read_text())
    case = plan["case"]
    enrolment, store = _enrolment(plan["backend"], Path(plan["db"]))
    settings = settings_for(case)

    def policy_with_partner(rng_seed: int) -> tuple[Policy, _Partner | None]:
        presence = _presence(plan["passages"])
        partner = None
        if case == "passback":
            partner = _Partner(presence, random.Random(rng_seed), [])
        return Policy(settings, enrolment, presence, None), partner

    # Warm up through a policy of its own: code paths, SQLite's page cache, the holiday
    # table, without touching the measured policy's presence and attendance state.
    warm_policy, warm_partner = policy_with_partner(plan["seed"] + 1)
    _run(warm_policy, plan["warm"], warm_partner, timed=False)
    policy, partner = policy_with_partner(plan["seed"] + 2)
    gc.collect()
    latencies, reasons = _run(policy, plan["probes"], partner, timed=True)
    empty = []
    timer = time.perf_counter_ns
    for _ in range(len(latencies)):
        t0 = timer()
        empty.append(timer() - t0)
    empty.sort()
    store.close()
    print(
        json.dumps(
            {"latencies_ns": latencies, "reasons": reasons, "timer_ns": empty[len(empty) // 2]}
        )
    )


def outcome_mix(reasons: dict[str, int]) -> str:
    total = sum(reasons.values())
    ordered = sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0]))
    return ", ".join(f"{name} {100 * n / total:.0f} %" for name, n in ordered)
