"""The back office's HostLink runs for months in a gateway: what terminals send it
unasked (events, replies that come after their wait ended) stays bounded."""

from __future__ import annotations

from pathlib import Path

import pytest

from terminald.backoffice import host_link
from terminald.backoffice.host_link import HostLink
from terminald.link import keys
from terminald.link import messages as m
from terminald.link.transport import Lane
from terminald.store.link_keys import HostKeys

ROW = m.AuditRow(seq=1, at="2026-11-30T08:00:00+00:00", terminal="t", kind="alarm")


def _link() -> HostLink:
    terminal = keys.TerminalKey(5, keys.public_of(keys.generate_private()), "gate")
    host = HostKeys(keys.generate_private(), None, {5: terminal})  # type: ignore[arg-type]
    return HostLink(Path("/dev/ttyUSB-unused"), host)  # never started: no port opened


def test_events_and_late_replies_stay_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    kept = 200
    monkeypatch.setattr(host_link, "EVENTS_KEPT", kept)
    link = _link()
    for seq in range(kept * 2):
        event = m.Event(id=seq & 0xFFFFFFFF, row=ROW)
        link.node.inbox.append((5, Lane.INTERACTIVE, m.encode(event)))
        if seq % 50 == 0:
            link._heard()
    link._heard()
    assert kept <= len(link.events) <= kept * 1.1
    assert link.events[-1][1].id == kept * 2 - 1  # the newest are kept
    for number in range(100):  # replies to requests nobody waits for (timed out)
        link.node.inbox.append((5, Lane.INTERACTIVE, m.encode(m.Ack(id=number, detail=""))))
    link._heard()
    assert not link._replies
