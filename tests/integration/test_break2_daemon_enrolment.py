"""BREAK2: the daemon with the signed enrolment set, as a technician and an attacker.

- an ``unknown_certificate`` refusal is in the audit log with the identity the back
  office needs to relink (issuer key id, serial), the location and the clock flag;
- a reload from ``enrolment`` to ``enrolled`` and back keeps the shared policy memory
  and still reads the installed set;
- a damaged ``enrolment.sqlite`` at start: the daemon starts and refuses
  ``enrolment_unavailable``;
- the event loop thread never queries the enrolment database (the card worker and the
  operator's threads do).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from terminald.core.reasons import Reason
from terminald.daemon.operator import DaemonOperator
from terminald.enrolment.bundle import encode_set
from terminald.enrolment.model import Credential, EnrolmentContent, Person
from terminald.revocation.keys import TrustedKeys
from terminald.sim.pcscd import Pcscd
from terminald.sim.testpki import TestPkiManifest
from terminald.store.audit import AuditReader
from terminald.store.enrolment_db import EnrolmentStore
from tests.integration.daemon_rig import GateRig, gate_config, open_rig

pytestmark = pytest.mark.pcscd

KEY = Ed25519PrivateKey.from_private_bytes(bytes([5]) * 32)


def enrolment_config(tmp_path: Path, pki: TestPkiManifest, policy: str = "enrolment") -> Path:
    path = gate_config(tmp_path, pki, enrolled=["card-001"])
    text = path.read_text().replace('policy = "enrolled"', f'policy = "{policy}"')
    text = text.replace('id = "test-gate"', 'id = "test-gate"\nlocation = "HQ 1F"')
    path.write_text(text)
    return path


def install_set(state: Path, pki: TestPkiManifest, names: list[str]) -> None:
    content = EnrolmentContent()
    for name in names:
        entry = pki.card(name)
        assert entry.issuer_key_id is not None and entry.serial is not None
        issuer = bytes.fromhex(entry.issuer_key_id)
        content.people[name] = Person(name, f"label {name}")
        content.credentials[issuer, entry.serial] = Credential(issuer, entry.serial, name)
    now = datetime.now(UTC)
    bundle = encode_set(
        content, version=1, issued_at=now - timedelta(minutes=1),
        valid_until=now + timedelta(days=30), signing_key=KEY,
    )  # fmt: skip
    store = EnrolmentStore(state / "enrolment.sqlite")
    store.install(bundle, TrustedKeys([KEY.public_key()]), now)
    store.close()


@pytest.fixture
def rig(tmp_path: Path, test_pki: TestPkiManifest, pcscd: Pcscd) -> Iterator[GateRig]:
    config = enrolment_config(tmp_path, test_pki)
    install_set(tmp_path / "state", test_pki, ["card-001"])
    opened = open_rig(config, test_pki)
    yield opened
    opened.stop()


def refuse(rig: GateRig, name: str) -> Reason:
    rig.tap(name)
    reason = rig.verdict()
    rig.remove()
    return reason


def test_unknown_certificate_is_recorded_with_its_identity(
    rig: GateRig, test_pki: TestPkiManifest, tmp_path: Path
) -> None:
    assert refuse(rig, "card-002") is Reason.UNKNOWN_CERTIFICATE
    audit = rig.daemon.audit
    assert audit is not None and audit.flush(30)
    reader = AuditReader(tmp_path / "state" / "audit.sqlite")
    rows = [r.entry for r in reader.records(kind="refused")]
    reader.close()
    entry = test_pki.card("card-002")
    assert entry.issuer_key_id is not None
    row = rows[-1]
    assert row.reason == "unknown_certificate"
    assert row.issuer_key_id == bytes.fromhex(entry.issuer_key_id)
    assert row.serial == entry.serial
    assert row.location == "HQ 1F" and row.clock_trusted is True and row.subject is None


def test_reload_enrolled_and_back_keeps_shared_memory_and_the_set(
    rig: GateRig, test_pki: TestPkiManifest, tmp_path: Path
) -> None:
    shared = rig.daemon.runtime.shared
    assert shared is not None
    config = tmp_path / "terminald.toml"
    for policy, card_002 in (
        ("enrolled", Reason.NOT_ENROLLED),
        ("enrolment", Reason.UNKNOWN_CERTIFICATE),
    ):
        text = config.read_text()
        for old in ('policy = "enrolled"', 'policy = "enrolment"'):
            text = text.replace(old, f'policy = "{policy}"')
        config.write_text(text)
        assert rig.daemon.reload()
        assert rig.daemon.runtime.shared is shared  # anti-passback, attendance, age service
        assert refuse(rig, "card-002") is card_002
    store = rig.daemon.runtime.enrolment_store
    assert store is not None and store.info() is not None and store.info().version == 1


def test_the_loop_thread_never_queries_the_enrolment_database(rig: GateRig) -> None:
    store = rig.daemon.runtime.enrolment_store
    assert store is not None
    threads: list[str] = []
    connect = store._connect

    def spy():  # type: ignore[no-untyped-def]
        threads.append(threading.current_thread().name)
        return connect()

    store._connect = spy  # type: ignore[method-assign]
    assert refuse(rig, "card-002") is Reason.UNKNOWN_CERTIFICATE
    view = DaemonOperator(rig.daemon, list_readers=list).enrolment()
    assert view.version == 1 and view.people == 1
    assert threads, "the store was never read"
    assert "daemon-loop" not in threads, threads


def test_a_damaged_database_starts_and_refuses_enrolment_unavailable(
    tmp_path: Path, test_pki: TestPkiManifest, pcscd: Pcscd
) -> None:
    config = enrolment_config(tmp_path, test_pki)
    (tmp_path / "state" / "enrolment.sqlite").write_bytes(b"SQLite format 3\x00" + b"\x5a" * 8192)
    rig = open_rig(config, test_pki)
    try:
        assert refuse(rig, "card-001") is Reason.ENROLMENT_UNAVAILABLE
        view = DaemonOperator(rig.daemon, list_readers=list).enrolment()
        assert view.version is None and view.problem
        assert "ENROLMENT UNAVAILABLE" in rig.daemon._status()  # systemctl status says it
    finally:
        rig.stop()
