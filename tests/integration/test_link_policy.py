"""The policy's link traffic with the real daemon (real pcscd + vpcd, mock GPIO) on the
throttled pty line: the daemon's own LinkService asks its age question of
``terminald host serve`` (an age book on the back office), and takes ``presence`` and
``partners`` from the back office's HostLink to the callbacks the policy will use."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from terminald.backoffice import host_serve
from terminald.cli import main
from terminald.core.reasons import Reason
from terminald.daemon.link_service import LinkService
from terminald.link import messages as m
from tests.integration.link_rig import ADDRESS, Linked, Terminal
from tests.integration.test_daemon_live_revocation import grant

pytestmark = pytest.mark.pcscd

ISSUER = bytes.fromhex("1a" * 20)


@pytest.fixture(autouse=True)
def back_office_today(monkeypatch: pytest.MonkeyPatch) -> None:
    """host serve answers yes/no only about its own date (+-1 day): pin it (BREAK2)."""
    monkeypatch.setattr(host_serve, "today_utc", lambda: date(2026, 12, 1))


def wait_for(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.01)


def link_of(daemon: object) -> LinkService:
    service = getattr(daemon, "link", None)
    assert isinstance(service, LinkService)
    return service


def test_the_daemon_asks_its_age_question_of_host_serve(
    terminal: Terminal, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ages = tmp_path / "ages.toml"
    ages.write_text(
        f'[[holder]]\nissuer = "{ISSUER.hex()}"\nserial = 4660\nbirth_date = 2006-12-01\n'
        f'[[holder]]\nissuer = "{ISSUER.hex()}"\nserial = 4661\ncertificate = "invalid"\n'
    )
    service = link_of(terminal.rig.daemon)
    assert service.ask_age(ISSUER, 4660, 20, date(2026, 12, 1), 5.0) is None  # no session yet
    assert grant(terminal.rig, "card-001") is Reason.OK  # a row for the audit pull
    args = ["host", "--port", terminal.line.path("host"), "--keys", str(terminal.hostkeys)]
    args += ["--json", "serve", "--address", str(ADDRESS), "--ages", str(ages)]
    args += ["--duration", "6", "--pull-every", "1"]
    codes: list[int] = []
    serving = threading.Thread(target=lambda: codes.append(main(args)))
    serving.start()
    try:
        wait_for(lambda: service.node.session_up)
        ask = service.ask_age
        assert ask(ISSUER, 4660, 20, date(2026, 11, 30), 5.0) == m.AgeAnswer("valid", False)
        assert ask(ISSUER, 4660, 20, date(2026, 12, 1), 5.0) == m.AgeAnswer("valid", True)
        assert ask(ISSUER, 4661, 20, date(2026, 12, 1), 5.0) == m.AgeAnswer("invalid", None)
        assert ask(ISSUER, 1, 20, date(2026, 12, 1), 5.0) == m.AgeAnswer("unknown", None)
    finally:
        serving.join(30)
    assert codes == [0]
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["ages_answered"] == 4 and result["rows_pulled"] >= 1
    assert service.counters["age_unanswered"] == 0


def test_presence_and_partners_reach_the_daemons_callbacks(linked: Linked) -> None:
    service = link_of(linked.rig.daemon)
    passages: list[tuple[str, str, datetime, str]] = []
    sightings: list[tuple[str, datetime]] = []
    service.on_presence = lambda *args: passages.append(args)
    service.on_partner_seen = lambda *args: sightings.append(args)
    host = linked.host
    host.connect(ADDRESS)
    at = datetime(2026, 11, 30, 8, 0, 1, 500, tzinfo=UTC)
    us = int(at.timestamp()) * 1_000_000 + at.microsecond
    host.send(
        ADDRESS,
        m.PresenceRelay(id=1, subject="E1001", direction="entry", at=us, terminal="gate-out"),
    )
    host.send(ADDRESS, m.Partners(id=2, seen=(("gate-out", 3.0),)))
    wait_for(lambda: bool(passages) and bool(sightings))
    assert passages == [("E1001", "entry", at, "gate-out")]
    ((terminal_id, heard),) = sightings
    assert terminal_id == "gate-out" and heard < datetime.now(UTC)
