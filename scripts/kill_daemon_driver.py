"""The back-office driver of scripts/kill-daemon: a process of its own on the line's host
end, killed right after the daemon. It opens one HostLink and, at random, pushes the next
enrolment set, sends a burst of ``mode`` requests, or pulls and acknowledges the audit
trail, noting each phase in a journal before it starts and each acknowledgement after the
terminal answered it (one write(2) a line, so a kill leaves only the last line cut).

    python scripts/kill_daemon_driver.py WORKDIR JOURNAL SINCE SEED

Also the set contents both sides agree on (``content``, ``digest``) and the line's
parameters. Runs with the repo's venv (the harness starts it with its own interpreter).
"""

from __future__ import annotations

import json
import os
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path

from terminald.enrolment.bundle import encode_set
from terminald.enrolment.codec import content_digest
from terminald.enrolment.model import EnrolmentContent

ADDRESS = 5
BAUD = 921_600
PEOPLE = 2_000  # ~24 KB full, ~39 KB delta: a quarter to half a second of line each
AUDIT_KEEP = 1_000  # the smallest [state] audit_keep: chunks are evicted within the runs


@cache
def content(version: int) -> EnrolmentContent:
    """Version ``version``'s people: a whole new population each time, so a mix of two
    versions has a digest that is neither."""
    from terminald.backoffice.enrolment_builder import synthetic_content

    return synthetic_content(PEOPLE, seed=version)


@cache
def digest(version: int) -> bytes:
    return content_digest(content(version))


def driver(workdir: Path, journal: Path, since: int, seed: int) -> None:
    """Open a HostLink to the terminal and push, append and pull until killed. Every line
    of the journal is written whole with one write(2), after what it reports is done."""
    from terminald.backoffice.host_link import HostError, HostLink
    from terminald.link import messages as m
    from terminald.store.link_keys import HostKeys

    rng = random.Random(seed)
    out = os.open(journal, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def note(**fields: object) -> None:
        os.write(out, (json.dumps({"t": round(time.monotonic(), 3), **fields}) + "\n").encode())

    keys = HostKeys.load(workdir / "hostkeys")
    port = Path((workdir / "line").read_text())
    mode = "lockdown"
    try:
        with HostLink(port, keys, baud=BAUD, timeout=20.0) as link:
            hello = link.connect(ADDRESS)
            installed = hello.enrolment_version
            note(ready=installed)
            while True:
                choice = rng.random()
                if choice < 0.3:
                    installed = push_next(link, installed, keys, note)
                elif choice < 0.8:
                    note(phase="appends")
                    for _ in range(rng.randint(5, 60)):
                        link.request(ADDRESS, m.SetMode(id=0, mode=mode), m.ModeReply)
                        mode = "normal" if mode == "lockdown" else "lockdown"
                else:
                    note(phase="pull/ack")
                    since = pull_and_acknowledge(link, since, note)
    except HostError as exc:
        note(error=str(exc))
        os._exit(3)


def pull_and_acknowledge(link: object, since: int, note: object) -> int:
    """Pull the trail after ``since`` a page at a time and acknowledge each page: the
    ``audit.pull`` and ``audit.ack`` requests of ``terminald host pull-audit``
    (``host_ops.pull_audit``), which acknowledges once at the end; page by page, a backlog
    left by cut pulls still drains within a kill window. Each acknowledgement is noted
    only after its answer came. Returns the new cursor."""
    from terminald.backoffice.host_link import HostLink
    from terminald.link import messages as m

    assert isinstance(link, HostLink) and callable(note)
    cursor = since
    while True:
        page = link.request(ADDRESS, m.AuditPull(id=0, cursor=cursor, max_rows=128), m.AuditRows)
        if page.next <= cursor:
            return cursor
        link.request(ADDRESS, m.AuditAck(id=0, cursor=page.next), m.Ack)
        rows = [[r.seq, r.at, r.kind, r.detail] for r in page.rows]
        note(ack=page.next, rows=rows)
        cursor = page.next
        if not page.more:
            return cursor


def push_next(link: object, installed: int, keys: object, note: object) -> int:
    """Push version ``installed`` + 1 (a delta from the installed one when odd); the
    version installed after it. The set's bytes are kept in the work directory, so a
    transfer cut by a kill is offered again with the same bytes (the terminal resumes)."""
    from terminald.backoffice.host_link import HostLink
    from terminald.backoffice.host_ops import push_enrolment
    from terminald.store.link_keys import HostKeys

    assert isinstance(link, HostLink) and isinstance(keys, HostKeys) and callable(note)
    version = installed + 1
    delta = installed > 0 and version % 2 == 1
    cached = Path(os.environ["KILL_DAEMON_SETS"]) / f"{version}-{'delta' if delta else 'full'}"
    if cached.exists():
        data = cached.read_bytes()
    else:
        now = datetime.now(UTC).replace(microsecond=0)
        data = encode_set(
            content(version),
            version=version,
            issued_at=now,
            valid_until=now + timedelta(days=30),
            signing_key=keys.signing_private,
            base=(installed, content(installed)) if delta else None,
        )
        cached.write_bytes(data)
    note(phase="push", version=version)
    outcome = push_enrolment(link, ADDRESS, data)
    note(pushed=version, installed=outcome.installed, reason=outcome.reason)
    if not outcome.installed:
        raise SystemExit(f"version {version} refused: {outcome.reason}")
    return version


if __name__ == "__main__":
    workdir, journal, since, seed = sys.argv[1:5]
    driver(Path(workdir), Path(journal), int(since), int(seed))
