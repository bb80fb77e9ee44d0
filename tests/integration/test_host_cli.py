"""``terminald host`` against the running daemon over the test line: every command once,
its JSON and its exit status."""

from __future__ import annotations

import json

import pytest

from terminald.cli import main
from terminald.core.reasons import Reason
from tests.integration.link_rig import ADDRESS, Terminal
from tests.integration.test_daemon_live_revocation import grant

pytestmark = pytest.mark.pcscd


def host(t: Terminal, *args: str) -> list[str]:
    return [
        "host",
        "--port",
        t.line.path("host"),
        "--keys",
        str(t.hostkeys),
        "--address",
        str(ADDRESS),
        "--json",
        *args,
    ]


def run(
    t: Terminal, capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, dict[str, object]]:
    code = main(host(t, *args))
    out = capsys.readouterr().out.strip().splitlines()
    return code, json.loads(out[-1]) if out else {}


def test_status_hello_and_mode(terminal: Terminal, capsys: pytest.CaptureFixture[str]) -> None:
    code, status = run(terminal, capsys, "status")
    assert code == 0 and status["ok"] is True and status["mode"] == "normal"
    code, hello = run(terminal, capsys, "hello")
    assert code == 0 and hello["terminal"] == "test-gate"
    code, mode = run(terminal, capsys, "mode", "lockdown")
    assert (code, mode["mode"]) == (0, "lockdown")
    terminal.rig.tap("card-001")
    assert terminal.rig.verdict() is Reason.LOCKDOWN
    assert run(terminal, capsys, "mode", "normal")[0] == 0
    assert grant(terminal.rig, "card-001") is Reason.OK


def test_push_revocation_then_pull_audit(
    terminal: Terminal, capsys: pytest.CaptureFixture[str]
) -> None:
    bundle = terminal.office.build(2, revoke=["card-001"])
    code, pushed = run(terminal, capsys, "push-revocation", str(bundle))
    assert code == 0 and pushed["ok"] is True and pushed["bytes"] == bundle.stat().st_size
    terminal.rig.tap("card-001")
    assert terminal.rig.verdict() is Reason.CERT_REVOKED
    code, pulled = run(terminal, capsys, "pull-audit")
    assert code == 0
    rows = pulled["rows"]
    assert isinstance(rows, list)
    assert any(r["reason"] == "cert_revoked" for r in rows)
    assert pulled["acknowledged"] == pulled["cursor"]
    code, again = run(terminal, capsys, "pull-audit", "--since", str(pulled["cursor"]))
    assert code == 0 and all(r["seq"] > pulled["cursor"] for r in again["rows"])  # type: ignore[union-attr, index]


def test_time_is_signed_and_applied(terminal: Terminal, capsys: pytest.CaptureFixture[str]) -> None:
    code, reply = run(terminal, capsys, "time")
    assert code == 0 and reply["applied"] is True
    assert reply["clock_set"] is False  # this machine's own clock: within a second


def test_push_config_refused_with_the_validators_words(
    terminal: Terminal,
    capsys: pytest.CaptureFixture[str],
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    bad = tmp_path_factory.mktemp("cfg") / "bad.toml"
    bad.write_text(terminal.config.read_text().replace("open_ms = ", "open_ms = -"))
    before = terminal.config.read_bytes()
    code, reply = run(terminal, capsys, "push-config", str(bad))
    assert code == 1 and reply["ok"] is False
    assert "relay.open_ms" in str(reply["reason"])
    assert terminal.config.read_bytes() == before


def test_push_config_installs_and_reloads(
    terminal: Terminal, capsys: pytest.CaptureFixture[str], tmp_path_factory: pytest.TempPathFactory
) -> None:
    new = tmp_path_factory.mktemp("cfg") / "new.toml"
    new.write_text(terminal.config.read_text().replace('mode = "normal"', 'mode = "lockdown"'))
    code, reply = run(terminal, capsys, "push-config", str(new))
    assert code == 0, reply
    assert 'mode = "lockdown"' in terminal.config.read_text()
    terminal.rig.wait_until(lambda: terminal.rig.daemon.terminal.mode.value == "lockdown")


def test_an_unknown_address_and_a_missing_key_directory(
    terminal: Terminal,
    capsys: pytest.CaptureFixture[str],
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    args = host(terminal, "status")
    args[args.index("--address") + 1] = "9"
    assert main(args) == 2
    assert "terminal 9 is not in" in capsys.readouterr().err
    args = host(terminal, "status")
    args[args.index("--keys") + 1] = str(tmp_path_factory.mktemp("none") / "keys")
    assert main(args) == 2
    assert "keys" in capsys.readouterr().err
