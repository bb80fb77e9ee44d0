"""``terminald enrolment build|apply|show|import`` through terminald.cli.main (and once as a
process): results, and every mistake as one line with exit 2, never a traceback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from terminald.cli import main
from terminald.revocation.keys import private_key_pem, public_key_pem
from terminald.sim.testpki import TestPkiManifest
from terminald.store.enrolment_db import EnrolmentStore

from .test_doctor import write_config
from .test_enrolment_source import EXAMPLE

TERMINALD = str(Path(sys.executable).parent / "terminald")  # the installed entry point


@pytest.fixture
def site(tmp_path: Path, test_pki: TestPkiManifest) -> Path:
    """A directory with signing.key/.pub, a source, and a terminald.toml trusting the key."""
    key = Ed25519PrivateKey.generate()
    (tmp_path / "signing.key").write_bytes(private_key_pem(key))
    (tmp_path / "signing.pub").write_bytes(public_key_pem(key.public_key()))
    (tmp_path / "people.toml").write_text(EXAMPLE)
    write_config(
        tmp_path,
        test_pki.trust_dir,
        revocation={"backoffice_keys": [str(tmp_path / "signing.pub")], "required": False},
    )
    return tmp_path


def run(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


def refused(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> str:
    code, _, err = run(capsys, *argv)
    assert code == 2 and err.count("\n") == 1 and err.startswith("terminald: "), err
    return err


def build(
    capsys: pytest.CaptureFixture[str], site: Path, version: int, *extra: str | Path, kind: str = ""
) -> Path:
    out = site / f"v{version}.set"
    code, text, _ = run(
        capsys, "enrolment", "build", site / "people.toml", "--key", site / "signing.key",
        "--version", str(version), "-o", out, *extra,
    )  # fmt: skip
    assert code == 0 and f"version {version}" in text and kind in text, text
    return out


def test_build_apply_show_and_a_delta(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = site / "terminald.toml"
    v1 = build(capsys, site, 1)
    code, out, _ = run(capsys, "enrolment", "apply", v1, "--config", config)
    assert code == 0 and "installed version 1: 2 people, 3 certificates" in out
    code, out, _ = run(capsys, "enrolment", "apply", v1, "--config", config)
    assert code == 0 and "already installed" in out
    source = site / "people.toml"
    source.write_text(source.read_text().replace("serial = 4661", "serial = 4662"))
    v2 = build(capsys, site, 2, "--base", v1, kind="delta from version 1")
    code, out, _ = run(capsys, "enrolment", "apply", v2, "--config", config)
    assert code == 0 and "installed version 2" in out
    code, out, _ = run(
        capsys, "enrolment", "show", "--config", config, "--json", "--subject", "E1002"
    )
    shown = json.loads(out)
    assert shown["version"] == 2 and shown["people"] == 2
    assert shown["person"]["cards"] == [{"issuer": "1ac1", "serial": 4662}]
    assert "birth" not in out
    code, out, _ = run(capsys, "enrolment", "show", "--config", config)
    assert code == 0 and "version: 2" in out
    err = refused(capsys, "enrolment", "apply", v1, "--config", config)
    assert "rollback" in err
    store = EnrolmentStore(site / "state" / "enrolment.sqlite")
    person = store.lookup(bytes.fromhex("1ac1"), 4662)
    assert person is not None and person.subject == "E1002"


def test_mistakes_are_one_line(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = site / "terminald.toml"
    bad = site / "bad.toml"
    bad.write_text('[[person]]\nsubject = "a"\ncards = [{ issuer = "zz", serial = 1 }]\n')
    err = refused(
        capsys,
        "enrolment",
        "build",
        bad,
        "--key",
        site / "signing.key",
        "--version",
        "1",
        "-o",
        site / "x",
    )
    assert "person[0].cards[0].issuer" in err
    err = refused(
        capsys,
        "enrolment",
        "build",
        site / "people.toml",
        "--key",
        site / "signing.pub",
        "--version",
        "1",
        "-o",
        site / "x",
    )
    assert "private key" in err
    v1 = build(capsys, site, 1)
    err = refused(
        capsys,
        "enrolment",
        "build",
        site / "people.toml",
        "--key",
        site / "signing.key",
        "--version",
        "1",
        "--base",
        v1,
        "-o",
        site / "x",
    )
    assert "above the base" in err
    err = refused(capsys, "enrolment", "apply", site / "people.toml", "--config", config)
    assert "not an enrolment set" in err
    err = refused(capsys, "enrolment", "apply", v1, "--config", site / "missing.toml")
    assert "missing.toml" in err
    err = refused(capsys, "enrolment", "show", "--config", config)
    assert "no enrolment set is installed" in err
    err = refused(capsys, "enrolment", "apply", v1, "--state-dir", site / "state")
    assert "--backoffice-key" in err
    other = Ed25519PrivateKey.generate()
    (site / "other.pub").write_bytes(public_key_pem(other.public_key()))
    err = refused(
        capsys,
        "enrolment",
        "apply",
        v1,
        "--state-dir",
        site / "state",
        "--backoffice-key",
        site / "other.pub",
    )
    assert "unknown_key" in err


def test_import_converts_the_old_list(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    old = site / "enrolled.toml"
    old.write_text('[[card]]\nissuer = "aabb"\nserial = 5\nlabel = "desk"\n')
    out = site / "source.toml"
    code, text, _ = run(capsys, "enrolment", "import", old, "-o", out, "--group", "office")
    assert code == 0 and "1 people" in text
    assert 'subject = "desk"' in out.read_text() and 'groups = ["office"]' in out.read_text()
    old.write_text("[[card]]\nserial = 5\n")
    assert "issuer" in refused(capsys, "enrolment", "import", old, "-o", out)


def test_the_command_runs_as_a_process(site: Path) -> None:
    v1 = site / "v1.set"
    done = subprocess.run(
        [TERMINALD, "enrolment", "build", str(site / "people.toml"),
         "--key", str(site / "signing.key"), "--version", "1", "-o", str(v1)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0 and v1.exists(), done.stderr
    done = subprocess.run(
        [TERMINALD, "enrolment", "apply", str(v1), "--state-dir",
         str(site / "state"), "--backoffice-key", str(site / "signing.pub")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0 and "installed version 1" in done.stdout, done.stderr


def test_a_damaged_database_is_one_line(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (site / "state" / "enrolment.sqlite").write_bytes(b"damaged " * 512)
    v1 = build(capsys, site, 1)
    err = refused(capsys, "enrolment", "apply", v1, "--config", site / "terminald.toml")
    assert "not a database" in err
    err = refused(capsys, "enrolment", "show", "--config", site / "terminald.toml")
    assert "not a database" in err
