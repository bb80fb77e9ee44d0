"""Attacks and faults against the daemon's link end to end (issue 10's break-it pass): a
party on the wire without keys, a line cut mid-transfer, byte errors, a host restarted
mid-transfer. Each asserts what the terminal must keep: taps served, state unchanged by
unauthenticated input, transfers completed."""

from __future__ import annotations

import os
import random
import select
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from terminald.backoffice.enrolment_builder import build_set, synthetic_content
from terminald.backoffice.host_link import HostLink
from terminald.backoffice.host_ops import push_enrolment
from terminald.core.reasons import Reason
from terminald.link import hello
from terminald.link import messages as m
from terminald.link.frame import (
    BROADCAST,
    FROM_TERMINAL,
    Channel,
    Frame,
    FrameDecoder,
    encode_frame,
)
from terminald.store.link_keys import HostKeys
from tests.integration.daemon_rig import open_rig
from tests.integration.link_rig import ADDRESS, Terminal
from tests.integration.test_daemon_live_revocation import grant

pytestmark = pytest.mark.pcscd


def attack_frames(rng: random.Random) -> list[bytes]:
    """One round of everything a keyless party can put on the line."""
    frames = [rng.randbytes(rng.randrange(1, 300))]  # garbage
    for address in (ADDRESS, ADDRESS | FROM_TERMINAL, BROADCAST, 0):
        for channel in Channel:
            frames.append(encode_frame(Frame(address, channel, rng.randbytes(60))))
    frames.append(
        encode_frame(Frame(ADDRESS, Channel.HELLO, hello.encode(hello.HelloKind.REQUEST)))
    )
    message_1 = hello.encode(hello.HelloKind.HANDSHAKE_1, rng.randbytes(48 + 16))
    frames.append(encode_frame(Frame(ADDRESS, Channel.HELLO, message_1)))
    no_session = hello.encode(hello.HelloKind.NO_SESSION)
    frames.append(encode_frame(Frame(ADDRESS | FROM_TERMINAL, Channel.HELLO, no_session)))
    record = rng.randbytes(8 + 16 + 20)
    frames.append(encode_frame(Frame(ADDRESS, Channel.SESSION, record)))
    return frames


def test_a_keyless_party_gets_only_the_minimal_hello_and_taps_go_on(terminal: Terminal) -> None:
    rig = terminal.rig
    service = rig.daemon.link
    assert service is not None
    fd = os.open(terminal.line.path("host"), os.O_RDWR | os.O_NOCTTY)
    stop = threading.Event()
    heard = bytearray()

    def attack() -> None:
        rng = random.Random(7)
        while not stop.is_set():
            for frame in attack_frames(rng):
                os.write(fd, frame)
            readable, _, _ = select.select([fd], [], [], 0)
            if readable:
                heard.extend(os.read(fd, 65536))

    attacker = threading.Thread(target=attack, daemon=True)
    attacker.start()
    try:
        for _ in range(3):  # taps are served while the line is flooded
            assert grant(rig, "card-001") is Reason.OK
        time.sleep(2)
    finally:
        stop.set()
        attacker.join(5)
        os.close(fd)
    answers = FrameDecoder().feed(bytes(heard))
    assert answers  # the minimal hello, and the NO_SESSION hint; nothing else
    assert {hello.decode(f.payload).kind for f in answers} <= {
        hello.HelloKind.REPLY,
        hello.HelloKind.NO_SESSION,
    }
    assert {(f.address, f.channel) for f in answers} == {(ADDRESS | FROM_TERMINAL, Channel.HELLO)}
    figures = service.figures()
    assert figures["sessions"] == 0 and figures["refused_handshakes"] > 0
    assert not service.node.session_up and service.node.slot.pending is None
    assert service.node.decoder.buffered <= 2 * 2048
    time.sleep(3)  # the handshake rate limit refills
    with HostLink(Path(terminal.line.path("host")), HostKeys.load(terminal.hostkeys)) as host:
        host.connect(ADDRESS)
        status = host.request(ADDRESS, m.Status(id=0), m.StatusReply)
        assert status.mode == "normal"
        rows = host.request(ADDRESS, m.AuditPull(id=0, cursor=0, max_rows=5), m.AuditRows)
        assert rows.rows and rows.rows[0].seq == 1  # nothing acknowledged, nothing gone


def big_enrolment(terminal: Terminal, size: int) -> bytes:
    """A signed enrolment set of about ``size`` bytes (~11.6 bytes a synthetic person),
    signed by the host's key (the terminal's [revocation] backoffice_keys), each one a
    newer version than the last."""
    keys = HostKeys.load(terminal.hostkeys)
    content = synthetic_content(size * 10 // 116, seed=size)
    version = time.time_ns() // 1000
    return build_set(content, keys.signing_private, version, now=datetime.now(UTC)).data


def test_a_line_cut_mid_transfer_resumes_and_installs(terminal: Terminal) -> None:
    data = big_enrolment(terminal, 60_000)  # ~5 s of line
    with HostLink(Path(terminal.line.path("host")), HostKeys.load(terminal.hostkeys)) as host:
        host.connect(ADDRESS)
        seen: list[int] = []

        def cut_midway(done: int, total: int) -> None:
            seen.append(done)
            if len(seen) == 5:
                terminal.line.cut(duration=3.0)

        outcome = push_enrolment(host, ADDRESS, data, progress=cut_midway)
        assert outcome.installed, outcome.reason
        assert terminal.line.stats().cut_lost > 0


def test_byte_errors_at_one_in_ten_thousand_do_not_stop_a_transfer(terminal: Terminal) -> None:
    data = big_enrolment(terminal, 40_000)
    terminal.line.set_error_rate(1e-4)
    with HostLink(Path(terminal.line.path("host")), HostKeys.load(terminal.hostkeys)) as host:
        host.connect(ADDRESS)
        outcome = push_enrolment(host, ADDRESS, data)
        assert outcome.installed, outcome.reason
        status = host.request(ADDRESS, m.Status(id=0), m.StatusReply)
        assert dict(status.link)["frames_bad"] > 0


def test_a_host_restarted_mid_transfer_resumes_the_same_content(terminal: Terminal) -> None:
    keys = HostKeys.load(terminal.hostkeys)
    path = Path(terminal.line.path("host"))
    signed = big_enrolment(terminal, 60_000)
    with HostLink(path, keys) as host:
        host.connect(ADDRESS)
        first = host.push(ADDRESS, "enrolment", signed, timeout=2.5)
        assert first.reason.startswith("no outcome") and not first.installed
    seen: list[int] = []
    with HostLink(path, keys) as host:  # a new process: a new transfer id, the same content
        host.connect(ADDRESS)
        outcome = host.push(ADDRESS, "enrolment", signed, progress=lambda a, t: seen.append(a))
        assert outcome.installed, outcome.reason
    # Resumed: the first figure is what the terminal already held (~2.5 s of line), not
    # the first window's acknowledgements.
    assert next(a for a in seen if a) >= 16_000


def test_a_daemon_restarted_mid_transfer_resumes_from_its_spool(terminal: Terminal) -> None:
    keys = HostKeys.load(terminal.hostkeys)
    signed = big_enrolment(terminal, 80_000)
    half = threading.Event()
    outcomes: list[object] = []

    def progress(done: int, total: int) -> None:
        if done > total // 2:
            half.set()

    with HostLink(Path(terminal.line.path("host")), keys) as host:
        host.connect(ADDRESS)
        pusher = threading.Thread(
            target=lambda: outcomes.append(
                host.push(ADDRESS, "enrolment", signed, progress=progress, timeout=120)
            ),
            daemon=True,
        )
        pusher.start()
        assert half.wait(60)
        terminal.rig.stop()
        time.sleep(1.5)
        again = open_rig(terminal.config, terminal.rig.pki)
        try:
            pusher.join(120)
            (outcome,) = outcomes
            assert outcome.installed, outcome.reason  # type: ignore[attr-defined]
            sent = terminal.line.port_stats("host").sent
        finally:
            again.stop()
    assert sent < 1.5 * len(signed)  # resumed from the spool, not sent again from the start
