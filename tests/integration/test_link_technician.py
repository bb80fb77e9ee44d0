"""The technician at 3 a.m.: ``terminald host`` against a terminal set up wrongly, one
mistake at a time. Each mistake must end in one clear line (no traceback, no key)."""

from __future__ import annotations

import pytest

from terminald.cli import main
from terminald.link import keys
from terminald.sim.line import Line
from terminald.store.link_keys import add_terminal_key, init_host_keys
from tests.integration.link_rig import ADDRESS, Terminal
from tests.integration.test_host_cli import host

pytestmark = pytest.mark.pcscd


def fails(capsys: pytest.CaptureFixture[str], args: list[str]) -> str:
    code = main([args[0], "--timeout", "3", *args[1:]])  # a mistake shows as silence: wait 3 s
    captured = capsys.readouterr()
    text = captured.out + captured.err
    assert code != 0
    assert "Traceback" not in text
    assert "PRIVATE KEY" not in text
    return text


def with_option(args: list[str], option: str, value: str) -> list[str]:
    args = list(args)
    args[args.index(option) + 1] = value
    return args


def test_a_wrong_address_names_the_likely_causes(
    terminal: Terminal, capsys: pytest.CaptureFixture[str]
) -> None:
    hostkeys = terminal.hostkeys
    add_terminal_key(hostkeys, keys.TerminalKey(7, keys.public_of(keys.generate_private()), "x"))
    text = fails(capsys, with_option(host(terminal, "status"), "--address", "7"))
    assert "terminal 7" in text and "no answer: wrong address, port or baud?" in text


def test_a_terminal_key_recorded_wrongly_is_named(
    terminal: Terminal, capsys: pytest.CaptureFixture[str]
) -> None:
    wrong = keys.public_of(keys.generate_private())
    add_terminal_key(terminal.hostkeys, keys.TerminalKey(ADDRESS, wrong, "gate"), replace=True)
    text = fails(capsys, host(terminal, "status"))
    assert "refused the handshake" in text and "keys show" in text


def test_a_back_office_key_the_terminal_does_not_have(
    terminal: Terminal, capsys: pytest.CaptureFixture[str], tmp_path_factory: pytest.TempPathFactory
) -> None:
    other = tmp_path_factory.mktemp("other") / "keys"
    init_host_keys(other)
    public = keys.parse_terminals(
        (terminal.hostkeys / "terminals.toml").read_text(), "terminals.toml"
    )[ADDRESS].public_key
    add_terminal_key(other, keys.TerminalKey(ADDRESS, public, "gate"))
    text = fails(capsys, with_option(host(terminal, "status"), "--keys", str(other)))
    assert "refused the handshake" in text and "host_key" in text


def test_nobody_at_the_other_end(terminal: Terminal, capsys: pytest.CaptureFixture[str]) -> None:
    with Line() as empty:
        args = with_option(host(terminal, "status"), "--port", empty.path("host"))
        text = fails(capsys, args)
    assert "no answer: wrong address, port or baud?" in text


def test_a_port_held_by_another_program(
    terminal: Terminal, capsys: pytest.CaptureFixture[str]
) -> None:
    import serial

    with serial.Serial(terminal.line.path("host"), exclusive=True):
        text = fails(capsys, host(terminal, "status"))
    assert "Could not exclusively lock port" in text
