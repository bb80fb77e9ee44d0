"""The demo configuration's own instructions work as written, and the demo's copy is true.

``systemd/terminald-demo.toml`` tells a person to build a test PKI, copy the file into it
and check it. Those steps are run here through the CLI, in the order the file gives
them; the copy ``terminald sim demo`` writes must not repeat the how-to-copy-me text.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from terminald.cli import main
from terminald.config import load_config
from terminald.config_files import check_files
from terminald.sim.demo_config import DEMO_CONFIG, TOUR_TIMINGS, write_demo_config
from terminald.sim.testpki import TestPkiManifest
from terminald.store.enrolled import load_enrolled


def instructions() -> list[str]:
    """The commands in the template's leading comment (lines "#   command")."""
    header = DEMO_CONFIG.read_text().split("\n[", 1)[0]
    return [line[4:].strip() for line in header.splitlines() if line.startswith("#   ")]


def test_the_template_instructions_work_as_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    steps = instructions()
    pki_step = ".venv/bin/terminald sim pki --out /tmp/pki"
    copy_step = "cp systemd/terminald-demo.toml /tmp/pki/terminald.toml"
    check_step = ".venv/bin/terminald check-config /tmp/pki/terminald.toml"
    assert steps.index(pki_step) < steps.index(copy_step) < steps.index(check_step), steps

    pki = tmp_path / "pki"  # /tmp/pki, private to this test
    assert main(["sim", "pki", "--out", str(pki)]) == 0
    printed = capsys.readouterr().out
    assert f"cp systemd/terminald-demo.toml {pki / 'terminald.toml'}" in printed
    shutil.copy(DEMO_CONFIG, pki / "terminald.toml")
    monkeypatch.chdir(tmp_path)  # relative paths are the file's, not the shell's
    assert main(["check-config", str(pki / "terminald.toml")]) == 0
    out, err = capsys.readouterr()
    assert "terminald.toml: ok" in out and err == "", err

    config = load_config(pki / "terminald.toml")
    assert config.state.dir == pki / "state" and config.state.dir.is_dir()
    assert config.state.dir.stat().st_mode & 0o077 == 0, "doctor warns on an open state dir"
    enrolled = load_enrolled(config.access.enrolled)
    labels = {entry.label for entry in enrolled}
    assert "card-001" in labels and "card-003" not in labels and "twin" not in labels


def test_the_demo_writes_a_copy_that_says_what_it_is(
    tmp_path: Path, test_pki: TestPkiManifest
) -> None:
    path = write_demo_config(tmp_path / "terminal", test_pki, TOUR_TIMINGS)
    text = path.read_text()
    assert "written by `terminald sim demo`" in text
    assert "copy it into" not in text and "cp systemd" not in text
    assert check_files(load_config(path)) == []


def test_the_demo_outside_the_sandbox_says_what_to_run_before_any_work(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("TERMINALD_SANDBOX", raising=False)
    assert main(["sim", "demo", "--tour"]) == 2
    out, err = capsys.readouterr()
    assert "scripts/run" in err and "Traceback" not in err
    assert "Building a test PKI" not in out, "it built a PKI before saying it cannot run"


@pytest.mark.parametrize("what", ["missing", "file", "empty dir", "bad manifest"])
def test_a_bad_pki_directory_is_a_clear_error(
    what: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("TERMINALD_SANDBOX", "1")  # the check that comes first passes
    pki = tmp_path / "pki"
    if what == "file":
        pki.write_text("not a directory")
    elif what != "missing":
        pki.mkdir()
        if what == "bad manifest":
            (pki / "manifest.json").write_text('{"format": "something else"}')
    assert main(["sim", "demo", "--tour", "--pki", str(pki)]) == 2
    err = capsys.readouterr().err
    assert f"--pki {pki}: not a test PKI directory" in err, err
    assert "terminald sim pki --out DIR" in err and "Traceback" not in err
