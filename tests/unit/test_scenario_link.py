"""Scenario files with ``link = true``: the checks before anything runs, and what the
runner provisions (the test line's ends, both sides' keys, the merged configuration).

No pcscd and no daemon here; the scenarios that use the link run in
tests/integration/test_scenarios.py.
"""

from __future__ import annotations

import contextlib
import io
import os
import stat
import threading
import tomllib
from pathlib import Path

import pytest

from terminald.cli import main
from terminald.config import load_config
from terminald.link.keys import encode_public, public_of
from terminald.sim.scenario import ScenarioSandboxError, run_scenario, write_terminal
from terminald.sim.scenario_file import ScenarioError, parse_scenario
from terminald.sim.scenario_link import ScenarioLink, line_baud, open_link
from terminald.sim.scenario_places import Places
from terminald.sim.testpki import TestPkiManifest
from terminald.store.link_keys import HostKeys, load_link_key

STEP = '[[step]]\ncli = ["host", "--port", "{link}", "--keys", "{hostkeys}", "status"]\n'


def _problems(text: str) -> list[str]:
    with pytest.raises(ScenarioError) as error:
        parse_scenario(tomllib.loads(text), Path("s.toml"))
    return error.value.problems


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f'link = "yes"\n{STEP}', "top level: key `link`: must be true or false, got 'yes'"),
        (STEP, "step 1: key `cli`: {link} needs `link = true` at the top of the file"),
        (STEP, "step 1: key `cli`: {hostkeys} needs `link = true`"),
        (
            f'[[setup]]\ncli = ["x", "{{hostkeys}}/signing.pub"]\n{STEP}',
            "setup 1: key `cli`: {hostkeys} needs `link = true`",
        ),
        (
            f'[config.revocation]\nbackoffice_keys = ["{{hostkeys}}/signing.pub"]\n{STEP}',
            "config.revocation.backoffice_keys: {hostkeys} needs `link = true`",
        ),
        (
            f'link = false\n[config.card]\nreader = "{{link}}"\n{STEP}',
            "config.card.reader: {link} needs `link = true`",
        ),
        (
            f'link = true\n[config.link]\nport = "/dev/ttyUSB0"\n{STEP}',
            "config.link.port: set by the runner with `link = true`",
        ),
        (
            f'link = true\n[config.link]\nhost_key = "AAAA"\n{STEP}',
            "config.link.host_key: set by the runner with `link = true`",
        ),
        (f"link = true\n{STEP}" + '[[step]]\ncli = ["{linkx}"]', "step 2: key `cli`: unknown"),
    ],
)
def test_a_bad_link_file_names_where(text: str, expected: str) -> None:
    problems = _problems(text)
    assert any(p.startswith(expected) for p in problems), problems


def test_the_unknown_placeholder_message_lists_the_link_ones() -> None:
    (problem,) = _problems('[[step]]\ncli = ["{nope}"]')
    assert "{link} (with link = true)" in problem and "{hostkeys} (with link = true)" in problem


def test_a_link_file_parses() -> None:
    text = (
        f"link = true\n[config.link]\naddress = 7\nmax_transfer_mb = 2\n{STEP}"
        '[[step]]\ncli = ["x", "{{link}}"]\n'
    )
    scenario = parse_scenario(tomllib.loads(text), Path("s.toml"))
    assert scenario.link is True
    assert scenario.config == {"link": {"address": 7, "max_transfer_mb": 2}}
    assert scenario.steps[0].value[2] == "{link}"


def test_without_link_the_file_may_still_configure_its_own_port() -> None:
    text = '[config.link]\nport = "/dev/ttyUSB0"\nhost_key = "x"\n[[step]]\nrex = true\n'
    assert parse_scenario(tomllib.loads(text), Path("s.toml")).link is False


def _places(tmp_path: Path, pki: TestPkiManifest, link: ScenarioLink | None) -> Places:
    (tmp_path / "work").mkdir(exist_ok=True)
    return Places(
        pki=pki.directory,
        work=tmp_path / "work",
        state=tmp_path / "terminal" / "state",
        config=tmp_path / "terminal" / "terminald.toml",
        manifest=pki,
        link=None if link is None else link.host_port,
        hostkeys=None if link is None else link.hostkeys,
    )


def test_link_placeholders_expand_only_in_a_linked_run(
    tmp_path: Path, test_pki: TestPkiManifest
) -> None:
    with contextlib.ExitStack() as stack:
        link = open_link(stack, tmp_path / "hostkeys")
        places = _places(tmp_path, test_pki, link)
        assert places.expand("{link}|{hostkeys}|{{link}}") == (
            f"{link.host_port}|{tmp_path}/hostkeys|{{link}}"
        )
        assert link.host_port != link.terminal_port
        assert link.host_port.exists() and link.terminal_port.exists()
    with pytest.raises(ValueError, match="this run has no link"):
        _places(tmp_path, test_pki, None).expand("{link}")


def _open(stack: contextlib.ExitStack, tmp_path: Path) -> ScenarioLink:
    (tmp_path / "work").mkdir()
    return open_link(stack, tmp_path / "work" / "hostkeys")


def _linked_scenario(text: str) -> str:
    return f"link = true\n{text}{STEP}"


def test_the_runner_provisions_both_sides_and_merges_the_configuration(
    tmp_path: Path, test_pki: TestPkiManifest
) -> None:
    scenario = parse_scenario(
        tomllib.loads(
            _linked_scenario(
                '[config.revocation]\nbackoffice_keys = ["{work}/bo.key.pub"]\n'
                "[config.link]\naddress = 9\n"
            )
        ),
        Path("s.toml"),
    )
    with contextlib.ExitStack() as stack:
        link = _open(stack, tmp_path)
        places = _places(tmp_path, test_pki, link)
        config = write_terminal(scenario, places, link)
        # What the daemon reads is what was checked.
        written = load_config(places.config)
        for loaded in (config, written):
            assert loaded.link.port == link.terminal_port
            assert loaded.link.address == 9
            assert loaded.link.host_key == link.host_public
            assert loaded.link.key_file == places.state / "link.key"
            assert loaded.revocation.backoffice_keys == (
                places.work / "bo.key.pub",
                link.hostkeys / "signing.pub",
            )
        raw = tomllib.loads(places.config.read_text())
        assert raw["link"]["host_key"] == encode_public(link.host_public)
        # The terminal's private key: its owner's only, and the back office knows its
        # public half under the terminal's address and name.
        key_file = places.state / "link.key"
        assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
        host = HostKeys.load(link.hostkeys)
        assert host.host_public == link.host_public
        assert list(host.terminals) == [9]
        assert host.terminals[9].public_key == public_of(load_link_key(key_file))
        assert host.terminals[9].name == config.terminal.id


def test_the_default_address_and_the_signing_key_alone(
    tmp_path: Path, test_pki: TestPkiManifest
) -> None:
    scenario = parse_scenario(tomllib.loads(_linked_scenario("")), Path("s.toml"))
    with contextlib.ExitStack() as stack:
        link = _open(stack, tmp_path)
        config = write_terminal(scenario, _places(tmp_path, test_pki, link), link)
        assert config.link.address == 1
        assert config.revocation.backoffice_keys == (link.hostkeys / "signing.pub",)
        assert list(HostKeys.load(link.hostkeys).terminals) == [1]


def test_a_key_file_in_a_missing_directory_is_a_bad_file(
    tmp_path: Path, test_pki: TestPkiManifest
) -> None:
    text = _linked_scenario('[config.link]\nkey_file = "{work}/absent/link.key"\n')
    scenario = parse_scenario(tomllib.loads(text), Path("s.toml"))
    with contextlib.ExitStack() as stack:
        link = _open(stack, tmp_path)
        with pytest.raises(ScenarioError) as error:
            write_terminal(scenario, _places(tmp_path, test_pki, link), link)
    (problem,) = error.value.problems
    assert problem.startswith("config.link.key_file: ") and "no such directory" in problem


def _lines_open() -> int:
    return sum(t.name == "test-line" and t.is_alive() for t in threading.enumerate())


def test_a_linked_file_is_checked_whole_and_the_line_closed_outside_the_sandbox(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, test_pki: TestPkiManifest
) -> None:
    monkeypatch.delenv("TERMINALD_SANDBOX", raising=False)
    before = _lines_open()
    path = tmp_path / "linked.toml"
    path.write_text(_linked_scenario(""))
    out = io.StringIO()
    with pytest.raises(ScenarioSandboxError):
        run_scenario(path, pki_dir=test_pki.directory, out=out)
    assert "A test line to the back office: the daemon's end /dev/pts/" in out.getvalue()
    assert _lines_open() == before
    # A configuration the link refuses is found here too, before the sandbox is asked for.
    path.write_text(_linked_scenario("[config.link]\naddress = 200\n"))
    with pytest.raises(ScenarioError, match=r"config: link\.address"):
        run_scenario(path, pki_dir=test_pki.directory, out=io.StringIO())
    assert _lines_open() == before


def test_the_command_refuses_a_link_placeholder_without_link_with_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], test_pki: TestPkiManifest
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(STEP)
    code = main(["sim", "scenario", str(path), "--pki", str(test_pki.directory)])
    err = capsys.readouterr().err
    assert code == 2
    assert "step 1: key `cli`: {link} needs `link = true`" in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("link", "baud"),
    [({}, 115200), ({"baud": 9600}, 9600), ({"baud": 12345}, 115200), ({"baud": "fast"}, 115200)],
)
def test_the_line_runs_at_the_configured_rate(link: dict[str, object], baud: int) -> None:
    # A rate the daemon refuses is reported with the merged configuration, not here.
    assert line_baud({"link": link} if link else {}) == baud
