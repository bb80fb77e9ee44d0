"""``terminald --version``: the installed package's version, from its metadata."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import version

import pytest

from terminald.cli import main


def test_version_is_the_package_metadata(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["--version"])
    assert stopped.value.code == 0
    assert capsys.readouterr().out == f"terminald {version('terminald')}\n"


def test_the_installed_command_prints_it() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "terminald", "--version"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert (done.returncode, done.stdout) == (0, f"terminald {version('terminald')}\n")
