"""Property tests of the terminal's message handler (issue 10: "the frame decoder, transport
and message handler fuzzed ... no crash, no unbounded memory, no state change from
unauthenticated input").

The handler is ``LinkService._handle`` with ``link_handlers.answer`` behind it, driven here
with a fake operator and installer and a real audit trail: whatever a session delivers,
nothing escapes, every request gets exactly one reply that encodes, no reply is an
``internal`` error (a bug), and a refused request changes nothing. And frames from a party
without the keys never put anything in a :class:`TerminalNode`'s inbox.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from terminald.core.terminal import Mode
from terminald.daemon.link_handlers import LinkContext
from terminald.daemon.link_install_support import InstallOutcome
from terminald.daemon.link_service import LinkService
from terminald.daemon.operator import ConfigView, RevocationView, StatusView, TimeView
from terminald.link import messages as m
from terminald.link import wire
from terminald.link.frame import (
    BROADCAST,
    FROM_TERMINAL,
    Channel,
    Frame,
    encode_frame,
    max_encoded_size,
)
from terminald.link.transport import Lane
from terminald.store.audit import AuditEntry, AuditLog
from tests.fuzzing import FUZZ
from tests.unit.link_message_examples import EXAMPLES
from tests.unit.test_link_nodes import terminal

REQUESTS = {
    name: example
    for name, example in EXAMPLES.items()
    if example.DIRECTION is m.Direction.HOST_TO_TERMINAL
}


@dataclass
class FakeOperator:
    """The daemon's operator, recording every change it is asked for."""

    reader_problem: str | None = None
    clock_problem: str | None = None
    changes: list[tuple[str, object]] = field(default_factory=list)

    def status(self) -> StatusView:
        return StatusView(
            "gate-1", "idle", "normal", False, False, ("held_open",),
            self.reader_problem, self.clock_problem, None, "ok",
        )  # fmt: skip

    def revocation(self) -> RevocationView:
        return RevocationView(configured=True, available=True, version=3, freshness="fresh")

    def config(self) -> ConfigView:
        return ConfigView(None, "ab" * 32, datetime.now(UTC), False)

    def time(self) -> TimeView:
        now = datetime.now(UTC)
        return TimeView(now, now, "file", self.clock_problem)

    def set_mode(self, mode: Mode) -> str:
        self.changes.append(("mode", mode))
        return "ok"

    def test_output(self, output: str) -> str:
        self.changes.append(("test", output))
        return f"{output} driven"

    def restart(self, why: str) -> None:
        self.changes.append(("restart", why))

    def record(self, kind: str, detail: str) -> None:
        self.changes.append(("record", kind))


@dataclass
class FakeInstaller:
    changes: list[tuple[str, object]] = field(default_factory=list)

    def installed_versions(self) -> dict[str, int]:
        return {"config": 2}

    def issue_nonce(self) -> bytes:
        return bytes(16)

    def install_time(self, data: bytes, force: bool = False) -> InstallOutcome:
        self.changes.append(("time", data))  # a signed time is the installer's to refuse
        return InstallOutcome("time", False, "malformed", "not a signed object")


class FakeNode:
    """What the service sends through: the messages, unpacked again."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []
        self.transport = None
        self.session_up = True
        self.inbox: deque[tuple[Lane, bytes]] = deque()
        self.broadcasts: deque[object] = deque()
        self.slot = SimpleNamespace(current=None)

    def send(self, lane: Lane, data: bytes) -> bool:
        self.sent.append(data)
        return True


class FakePort:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.on_input: object = None

    def wake(self) -> None:
        pass


@dataclass
class Rig:
    service: LinkService
    node: FakeNode
    operator: FakeOperator
    installer: FakeInstaller
    audit: AuditLog

    def state(self) -> tuple[object, ...]:
        page = self.audit.page(0, 1)
        # Lengths: the fakes only ever append (copying lists grown over 100,000 examples
        # would make the run quadratic).
        return (len(self.operator.changes), len(self.installer.changes), page.acknowledged)


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    audit = AuditLog(Path(tmp_path_factory.mktemp("audit")) / "audit.sqlite", keep=20, hold=1000)
    for i in range(30):
        audit.append(AuditEntry(datetime.now(UTC), "gate-1", "granted", label=f"card {i}"))
    assert audit.flush(10)
    operator, installer, node = FakeOperator(), FakeInstaller(), FakeNode()
    context = LinkContext(
        "gate-1", operator, installer, audit, lambda: {"sessions": 1}, lambda _: None,  # type: ignore[arg-type]
    )  # fmt: skip
    service = LinkService(node, FakePort(), context, receiver=None)  # type: ignore[arg-type]
    yield Rig(service, node, operator, installer, audit)
    audit.close()


msgpack_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**63), 2**64 - 1),
        st.floats(),
        st.text(max_size=40),
        st.binary(max_size=40),
    ),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=8,
)


def _wire(example: m.Message) -> dict[str, Any]:
    return dict(msgpack.unpackb(m.encode(example), raw=False))


@st.composite
def host_maps(draw: st.DrawFn) -> bytes:
    """A host→terminal request, its fields kept, changed, dropped or added to."""
    fields = _wire(draw(st.sampled_from(sorted(REQUESTS.items())))[1])
    for name in list(fields):
        choice = draw(st.integers(0, 9))
        if choice == 0:
            del fields[name]
        elif choice == 1:
            fields[name] = draw(msgpack_values)
        elif choice == 2 and isinstance(fields[name], int) and not isinstance(fields[name], bool):
            fields[name] = draw(st.integers(0, 2**64 - 1))
    if draw(st.booleans()):
        fields["id"] = draw(st.integers(0, 2**32 - 1))
    if draw(st.integers(0, 9)) == 0:
        fields[draw(st.text(max_size=8))] = draw(msgpack_values)
    if draw(st.integers(0, 19)) == 0:
        fields["t"] = draw(st.sampled_from([*EXAMPLES, "bulk.offer", "bulk.status", "x"]))
    return bytes(msgpack.packb(fields, use_bin_type=True))


messages = st.one_of(
    host_maps(),
    st.binary(max_size=300),
    msgpack_values.map(lambda v: bytes(msgpack.packb(v, use_bin_type=True))),
)
problems = st.one_of(st.none(), st.text(max_size=400))


@pytest.mark.fuzz
@FUZZ
@given(data=messages, reader_problem=problems, clock_problem=problems)
def test_fuzz_every_request_gets_one_good_reply_and_a_refusal_changes_nothing(
    rig: Rig, data: bytes, reader_problem: str | None, clock_problem: str | None
) -> None:
    rig.operator.reader_problem, rig.operator.clock_problem = reader_problem, clock_problem
    rig.node.sent.clear()
    before = rig.state()
    try:
        request: object = wire.unpack(data, m.Direction.HOST_TO_TERMINAL)
    except Exception:
        request = None
    rig.service._handle(data)  # must not raise
    rig.service._restart_after = None  # a restart asked is the service's, not this test's
    replies = [wire.unpack(d, m.Direction.TERMINAL_TO_HOST) for d in rig.node.sent]
    assert all(isinstance(r, m.Message) for r in replies)
    if isinstance(request, m.Message) and request.ROLE is m.Role.REQUEST:
        (reply,) = replies
        assert isinstance(reply, m.Message) and m.replies_to(request, reply), reply
    assert not any(isinstance(r, m.Error) and r.code == m.INTERNAL for r in replies), replies
    if request is None or any(isinstance(r, m.Error) for r in replies):
        assert rig.state() == before  # refused: nothing changed


frames = st.one_of(
    st.builds(
        lambda address, channel, payload: encode_frame(Frame(address, channel, payload)),
        st.sampled_from([5, 5 | FROM_TERMINAL, BROADCAST, 6, 0]),
        st.sampled_from(list(Channel)),
        st.one_of(
            st.binary(max_size=120),
            st.builds(lambda kind, body: bytes([kind]) + body, st.integers(0, 6), st.binary()),
        ),
    ),
    st.binary(max_size=200),
)


@pytest.mark.fuzz
@FUZZ
@given(stream=st.lists(frames, max_size=12), now=st.floats(0, 1e6))
def test_fuzz_frames_without_the_keys_never_reach_the_inbox(
    stream: list[bytes], now: float
) -> None:
    node = terminal()
    for data in stream:
        node.on_bytes(data, now)
    assert not node.inbox and not node.broadcasts and not node.session_up
    assert node.slot.current is None
    out = node.take_frames(now, 64)
    assert len(out) <= 8  # plaintext replies are bounded (minimal hello, NO_SESSION)
    assert node.decoder.buffered <= max_encoded_size()


def test_the_handler_logs_no_traceback_for_a_request_with_a_huge_cursor(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    rig.node.sent.clear()
    with caplog.at_level(logging.INFO):
        rig.service._handle(m.encode(m.AuditPull(id=1, cursor=2**64 - 1, max_rows=5)))
    (reply,) = [wire.unpack(d, m.Direction.TERMINAL_TO_HOST) for d in rig.node.sent]
    assert isinstance(reply, m.AuditRows) and reply.rows == () and not reply.more
    assert not any(r.exc_info for r in caplog.records)


def test_an_unencodable_event_is_counted_and_the_rest_still_goes(rig: Rig) -> None:
    rig.node.sent.clear()
    at = datetime.now(UTC)
    too_long = AuditEntry(at, "gate-1", "k" * 40)  # no kind is that long today: a bug's row
    rig.service.offer_rows([(7, too_long), (8, AuditEntry(at, "gate-1", "granted"))])
    rig.node.inbox.append((Lane.INTERACTIVE, m.encode(m.Status(id=3))))
    rig.service._drain()  # must not raise
    sent = [wire.unpack(d, m.Direction.TERMINAL_TO_HOST) for d in rig.node.sent]
    assert [type(x).__name__ for x in sent] == ["StatusReply", "Event"]
    assert isinstance(sent[1], m.Event) and sent[1].row.seq == 8
    assert rig.service.counters["unencodable"] == 1
