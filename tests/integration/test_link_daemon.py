"""The back-office link end to end: the daemon (real pcscd + vpcd, mock GPIO) with
``[link]`` on one end of a throttled pty line (terminald.sim.line, 115200 baud), the back
office's :class:`HostLink` on the other. A revocation bundle pushed over the link decides
the next tap; status, mode, audit pull and acknowledgement, and events as they happen.
"""

from __future__ import annotations

import time

import pytest

from terminald.backoffice.host_link import HostError
from terminald.core.reasons import Reason
from terminald.link import messages
from tests.integration.link_rig import ADDRESS, Linked
from tests.integration.test_daemon_live_revocation import grant

pytestmark = pytest.mark.pcscd


def test_hello_and_status_over_the_session(linked: Linked) -> None:
    hello = linked.host.connect(ADDRESS)
    assert hello.terminal == "test-gate"
    assert hello.revocation_version == 1
    status = linked.host.request(ADDRESS, messages.Status(id=0), messages.StatusReply)
    assert status.mode == "normal"
    assert status.revocation == "fresh"
    assert status.door == "closed"  # the rig wires a door contact
    assert dict(status.link)["sessions"] >= 1


def test_a_pushed_revocation_bundle_decides_the_next_tap(linked: Linked) -> None:
    rig, host = linked.rig, linked.host
    assert grant(rig, "card-002") is Reason.OK
    host.connect(ADDRESS)
    bundle = linked.office.build(2, revoke=["card-002"]).read_bytes()
    seen: list[tuple[int, int]] = []
    outcome = host.push(ADDRESS, "revocation", bundle, progress=lambda a, t: seen.append((a, t)))
    assert outcome.installed, outcome.reason
    assert seen and seen[-1] == (len(bundle), len(bundle))
    rig.tap("card-002")
    assert rig.verdict() is Reason.CERT_REVOKED
    again = host.request(
        ADDRESS, messages.Hello(id=0, protocol=1, software="t"), messages.HelloReply
    )
    assert again.revocation_version == 2


def test_an_older_bundle_pushed_is_refused_with_its_reason(linked: Linked) -> None:
    linked.host.connect(ADDRESS)
    newer = linked.office.build(3, revoke=[])
    linked.office.apply(newer)
    older = linked.office.build(2, revoke=[]).read_bytes()
    outcome = linked.host.push(ADDRESS, "revocation", older)
    assert not outcome.installed
    assert outcome.reason.startswith("rollback: version 2 is not newer than installed 3")


def test_mode_change_and_events_and_audit_pull(linked: Linked) -> None:
    rig, host = linked.rig, linked.host
    host.connect(ADDRESS)
    reply = host.request(ADDRESS, messages.SetMode(id=0, mode="lockdown"), messages.ModeReply)
    assert reply.mode == "lockdown"
    rig.tap("card-001")
    assert rig.verdict() is Reason.LOCKDOWN
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not any(
        e.row.reason == "lockdown" for _, e in host.events
    ):
        time.sleep(0.05)
    event = next(e for _, e in host.events if e.row.reason == "lockdown")
    assert event.row.seq > 0 and event.row.kind == "refused"
    rows = host.request(
        ADDRESS, messages.AuditPull(id=0, cursor=0, max_rows=100), messages.AuditRows
    )
    assert event.row.seq in [r.seq for r in rows.rows]
    assert rows.gap is None
    ack = host.request(ADDRESS, messages.AuditAck(id=0, cursor=rows.next), messages.Ack)
    assert str(rows.next) in ack.detail
    later = host.request(
        ADDRESS, messages.AuditPull(id=0, cursor=rows.next, max_rows=100), messages.AuditRows
    )
    assert all(r.seq > rows.next for r in later.rows)


def test_a_terminal_not_in_the_key_directory_is_named(linked: Linked) -> None:
    with pytest.raises(HostError, match="terminal 9 is not in"):
        linked.host.connect(9)


def test_restart_is_acknowledged_then_the_daemon_exits_for_systemd(linked: Linked) -> None:
    host, rig = linked.host, linked.rig
    host.connect(ADDRESS)
    ack = host.request(ADDRESS, messages.Restart(id=0), messages.Ack)
    assert ack.detail == "restarting"
    assert rig.thread is not None
    rig.thread.join(10)
    assert not rig.thread.is_alive()
    assert rig.daemon.exit_code == 75  # EX_TEMPFAIL: Restart=on-failure starts it again


def test_an_output_test_pulses_the_relay(linked: Linked) -> None:
    host, rig = linked.host, linked.rig
    host.connect(ADDRESS)
    before = len(rig.relay_pulses())
    result = host.request(
        ADDRESS, messages.Test(id=0, output="relay", duration_ms=500), messages.TestResult
    )
    assert result.done and result.output == "relay"
    rig.wait_until(lambda: len(rig.relay_pulses()) == before + 1)
