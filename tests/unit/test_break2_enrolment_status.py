"""BREAK2: a technician at 3 a.m. must learn why every card is refused.

Found: with ``[access] policy = "enrolment"`` and a damaged, missing or stale
``enrolment.sqlite``, ``terminald doctor`` had no enrolment finding at all, and the
console's ``enrolment`` view said "none installed" without the store's reason.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from terminald.config import Config, load_config
from terminald.daemon.doctor import run_checks
from terminald.daemon.doctor_enrolment import check_enrolment
from terminald.revocation.keys import TrustedKeys
from terminald.store.enrolment_db import EnrolmentStore
from tests.conftest import TestPkiManifest
from tests.unit.enrolment_support import NOW, signed, small_content
from tests.unit.test_doctor import env, write_config


@pytest.fixture
def make(tmp_path: Path, test_pki: TestPkiManifest) -> Callable[..., Path]:
    def build(**sections: dict[str, Any]) -> Path:
        return write_config(tmp_path, test_pki.trust_dir, **sections)

    return build


def enrolment_config(make: Callable[..., Path], **access: object) -> Config:
    return load_config(make(access={"policy": "enrolment", **access}))


KEY = Ed25519PrivateKey.from_private_bytes(bytes([9]) * 32)
TRUSTED = TrustedKeys([KEY.public_key()])


def install(config: Config, days: float = 30) -> Path:
    path = config.state.dir / "enrolment.sqlite"
    store = EnrolmentStore(path)
    store.install(signed(small_content(), KEY, 7, days=days), TRUSTED, NOW)
    store.close()
    return path


def test_doctor_has_an_enrolment_finding_for_a_damaged_database(
    make: Callable[..., Path], tmp_path: Path
) -> None:
    config = enrolment_config(make)
    (config.state.dir / "enrolment.sqlite").write_bytes(b"SQLite format 3\x00" + b"\xff" * 4096)
    report = run_checks(config.source, env(tmp_path, now=lambda: NOW))  # type: ignore[arg-type]
    finding = next(f for f in report.findings if f.check == "enrolment")
    assert finding.status == "fail"
    assert "enrolment_unavailable" in finding.message and finding.fix


def test_doctor_enrolment_missing_installed_stale(make: Callable[..., Path]) -> None:
    config = enrolment_config(make, grace_hours=12)
    missing = check_enrolment(config, NOW)
    assert missing.status == "fail" and "no enrolment set installed" in missing.message
    path = install(config, days=30)
    before = set(path.parent.iterdir())
    ok = check_enrolment(config, NOW)
    assert ok.status == "ok" and "version 7: 2 people, 3 certificates" in ok.message
    assert set(path.parent.iterdir()) == before  # doctor only looks
    soon = check_enrolment(config, NOW + timedelta(days=30, hours=1))
    assert soon.status == "warn"
    stale = check_enrolment(config, NOW + timedelta(days=31))
    assert stale.status == "fail" and "enrolment_stale" in stale.message


def test_doctor_enrolment_not_used(make: Callable[..., Path]) -> None:
    config = load_config(make())
    assert check_enrolment(config, NOW).status == "ok"


def test_console_enrolment_view_says_why_a_damaged_set_refuses(tmp_path: Path) -> None:
    from terminald.console.render import enrolment_lines
    from terminald.daemon.operator import EnrolmentView

    path = tmp_path / "enrolment.sqlite"
    path.write_bytes(b"SQLite format 3\x00" + b"\xff" * 4096)
    store = EnrolmentStore(path)
    assert store.info() is None and store.problem()
    view = EnrolmentView("enrolment", path, None, problem=store.problem())
    text = "\n".join(enrolment_lines(view))
    assert "unreadable" in text and store.problem() in text
    healthy = "\n".join(enrolment_lines(EnrolmentView("enrolment", path, None)))
    assert "none installed" in healthy


def test_the_status_line_says_the_enrolment_is_unavailable() -> None:
    """systemctl status said "idle; mode normal" while a damaged set refused every card."""
    from types import SimpleNamespace

    from terminald.daemon.health import status_text

    terminal = SimpleNamespace(
        state=SimpleNamespace(value="idle"),
        mode=SimpleNamespace(value="normal"),
        door=SimpleNamespace(alarms=()),
    )
    text = status_text(terminal, None, None, None, enrolment="file is not a database")  # type: ignore[arg-type]
    assert "ENROLMENT UNAVAILABLE: file is not a database" in text
    assert "ENROLMENT" not in status_text(terminal, None, None, None)  # type: ignore[arg-type]
