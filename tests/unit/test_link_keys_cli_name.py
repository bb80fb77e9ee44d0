"""``terminald host keys add`` run again for a terminal (a technician re-running the
provisioning steps) keeps the name recorded unless ``--name`` gives a new one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from terminald.cli import main
from terminald.link import keys


def test_adding_a_terminal_again_keeps_its_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = tmp_path / "bo"
    assert main(["host", "keys", "init", "--keys", str(directory)]) == 0
    key = keys.encode_public(keys.public_of(keys.generate_private()))
    add = ["host", "keys", "add", "--keys", str(directory), "--address", "5"]
    assert main([*add, "--name", "gate east", key]) == 0
    assert main([*add, key]) == 0
    capsys.readouterr()
    assert main(["host", "keys", "list", "--keys", str(directory), "--json"]) == 0
    (listed,) = json.loads(capsys.readouterr().out)["terminals"]
    assert listed["name"] == "gate east"
    assert main([*add, "--name", "gate west", key]) == 0
    capsys.readouterr()
    assert main(["host", "keys", "list", "--keys", str(directory), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["terminals"][0]["name"] == "gate west"
