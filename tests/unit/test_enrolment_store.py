"""EnrolmentStore: installs in one transaction, lookups, age yeses, failing closed."""

from __future__ import annotations

import sqlite3
import threading
from datetime import date, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings

from terminald.enrolment.codec import content_digest
from terminald.enrolment.errors import EnrolmentRejected, RejectReason
from terminald.enrolment.model import AgeAttestation, Credential, EnrolmentContent
from terminald.revocation.keys import TrustedKeys
from terminald.store.enrolment_db import EnrolmentStore
from terminald.store.enrolment_rows import EnrolmentStoreError

from .enrolment_support import NOW, OFFICE, ROOT_A, ROOT_B, contents, signed, small_content

KEY = Ed25519PrivateKey.generate()
TRUSTED = TrustedKeys([KEY.public_key()])
LATER = NOW + timedelta(hours=1)


@pytest.fixture
def store(tmp_path: Path) -> EnrolmentStore:
    opened = EnrolmentStore(tmp_path / "enrolment.sqlite")
    yield opened  # type: ignore[misc]
    opened.close()


def test_an_empty_store_has_no_set_and_knows_no_one(store: EnrolmentStore) -> None:
    assert store.info() is None and store.lookup(ROOT_A, 4660) is None
    assert store.problem() == "" and store.content() == EnrolmentContent()


def test_a_full_set_is_installed_and_looked_up(store: EnrolmentStore) -> None:
    content = small_content()
    info = store.install(signed(content, KEY, 1), TRUSTED, LATER)
    assert (info.version, info.people, info.credentials) == (1, 2, 3)
    assert info.digest == content_digest(content) and store.info() == info
    assert store.lookup(ROOT_A, 4660) == content.people["E1"]
    assert store.lookup(ROOT_B, 2**70) == content.people["E1"]  # a serial beyond 64 bits
    assert store.lookup(ROOT_B, 4660) is None  # the same serial under another issuer
    assert store.schedule("office-hours") == OFFICE and store.schedule("x") is None
    assert store.calendar() == content.calendar
    assert store.content() == content
    person = store.person("E1")
    assert person is not None and person[1] == [(ROOT_A, 4660), (ROOT_B, 2**70)]


def test_a_delta_is_applied_and_its_digest_checked(store: EnrolmentStore) -> None:
    base = small_content()
    store.install(signed(base, KEY, 1), TRUSTED, LATER)
    new = small_content({"E3": 77})
    del new.people["E2"]
    del new.credentials[ROOT_A, 4661]
    info = store.install(signed(new, KEY, 2, base=(1, base)), TRUSTED, LATER)
    assert info.version == 2 and info.digest == content_digest(new)
    assert store.content() == new
    assert store.lookup(ROOT_A, 4661) is None and store.lookup(ROOT_A, 77) is not None


def test_a_relink_adds_the_renewed_certificate_to_the_same_person(store: EnrolmentStore) -> None:
    """The renewed card (new serial) is unknown until the push, then names the person."""
    base = small_content()
    store.install(signed(base, KEY, 1), TRUSTED, LATER)
    assert store.lookup(ROOT_A, 9999) is None
    relinked = EnrolmentContent(
        base.people,
        {**base.credentials, (ROOT_A, 9999): Credential(ROOT_A, 9999, "E2")},
        base.schedules,
        base.calendar,
    )
    store.install(signed(relinked, KEY, 2, base=(1, base)), TRUSTED, LATER)
    assert store.lookup(ROOT_A, 9999) == base.people["E2"]
    assert store.lookup(ROOT_A, 4661) == base.people["E2"]  # the old one too, until removed


def test_a_refused_install_changes_nothing(store: EnrolmentStore) -> None:
    base = small_content()
    store.install(signed(base, KEY, 2), TRUSTED, LATER)
    before = (store.info(), store.content())
    wrong_base = signed(small_content({"E3": 1}), KEY, 3, base=(2, small_content({"Z": 5})))
    for data, reason in (
        (signed(small_content({"E3": 1}), KEY, 1), RejectReason.ROLLBACK),
        (signed(small_content({"E3": 1}), KEY, 2), RejectReason.ROLLBACK),
        (wrong_base, RejectReason.WRONG_BASE),
        (b"TDEN" + bytes(200), RejectReason.MALFORMED),
        (signed(base, Ed25519PrivateKey.generate(), 9), RejectReason.UNKNOWN_KEY),
        (signed(base, KEY, 9, days=1), RejectReason.EXPIRED),
    ):
        now = LATER + timedelta(days=2) if reason is RejectReason.EXPIRED else LATER
        with pytest.raises(EnrolmentRejected) as caught:
            store.install(data, TRUSTED, now)
        assert caught.value.reason is reason, caught.value
    assert (store.info(), store.content()) == before


def test_the_installed_set_is_recognised_for_an_idempotent_repeat(store: EnrolmentStore) -> None:
    data = signed(small_content(), KEY, 1)
    store.install(data, TRUSTED, LATER)
    assert store.is_installed(data)
    assert not store.is_installed(signed(small_content({"E3": 1}), KEY, 1))
    assert not store.is_installed(b"junk")


def test_an_install_by_another_store_object_is_seen_at_once(tmp_path: Path) -> None:
    """As the daemon sees `terminald enrolment apply`: another connection's commit."""
    daemon = EnrolmentStore(tmp_path / "enrolment.sqlite")
    cli = EnrolmentStore(tmp_path / "enrolment.sqlite")
    base = small_content()
    cli.install(signed(base, KEY, 1), TRUSTED, LATER)
    assert daemon.info() is not None and daemon.lookup(ROOT_A, 4660) is not None
    changed = EnrolmentContent(base.people, base.credentials, {}, base.calendar)
    for person in list(changed.people.values()):
        if person.schedule:
            changed.people[person.subject] = type(person)(person.subject)
    cli.install(signed(changed, KEY, 2), TRUSTED, LATER)
    assert daemon.schedule("office-hours") is None  # the cache followed the new set
    assert daemon.info() == cli.info()
    daemon.close()
    cli.close()


def test_the_rollback_mark_survives_the_database(tmp_path: Path) -> None:
    path = tmp_path / "enrolment.sqlite"
    store = EnrolmentStore(path)
    store.install(signed(small_content(), KEY, 5), TRUSTED, LATER)
    store.close()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    fresh = EnrolmentStore(path)
    with pytest.raises(EnrolmentRejected) as caught:
        fresh.install(signed(small_content(), KEY, 4), TRUSTED, LATER)
    assert caught.value.reason is RejectReason.ROLLBACK and ".high" in caught.value.detail
    assert fresh.install(signed(small_content(), KEY, 6), TRUSTED, LATER).version == 6
    fresh.close()


def test_age_yeses_keep_the_strongest_and_survive_installs(store: EnrolmentStore) -> None:
    store.install(signed(small_content(), KEY, 1), TRUSTED, LATER)
    store.remember_age_yes(ROOT_A, 4660, AgeAttestation(20, date(2026, 6, 1)))
    store.remember_age_yes(ROOT_A, 4660, AgeAttestation(20, date(2026, 5, 1)))
    store.remember_age_yes(ROOT_A, 4660, AgeAttestation(20, date(2026, 7, 1)))
    store.remember_age_yes(ROOT_A, 4660, AgeAttestation(18, date(2026, 7, 1)))
    store.remember_age_yes(ROOT_B, 2**70, AgeAttestation(20, date(2026, 7, 1)))
    expected = (AgeAttestation(18, date(2026, 7, 1)), AgeAttestation(20, date(2026, 5, 1)))
    assert store.age_yes(ROOT_A, 4660) == expected
    store.install(signed(small_content({"E3": 3}), KEY, 2), TRUSTED, LATER)
    assert store.age_yes(ROOT_A, 4660) == expected
    assert store.age_yes(ROOT_B, 2**70) == (AgeAttestation(20, date(2026, 7, 1)),)
    assert store.age_yes(ROOT_A, 1) == ()


def test_a_damaged_database_answers_nothing_and_says_why(tmp_path: Path) -> None:
    path = tmp_path / "enrolment.sqlite"
    path.write_bytes(b"not a database " * 1000)
    store = EnrolmentStore(path)
    assert store.info() is None
    with pytest.raises(EnrolmentStoreError):  # the policy: enrolment_unavailable (BREAK2)
        store.lookup(ROOT_A, 4660)
    assert store.schedule("office-hours") is None and store.age_yes(ROOT_A, 4660) == ()
    store.remember_age_yes(ROOT_A, 4660, AgeAttestation(20, date(2026, 6, 1)))  # no raise
    assert "not a database" in store.problem()


def test_a_damaged_row_answers_nothing(store: EnrolmentStore) -> None:
    store.install(signed(small_content(), KEY, 1), TRUSTED, LATER)
    with sqlite3.connect(store.path) as conn:
        conn.execute("UPDATE person SET record = x'c1' WHERE subject = 'E1'")
        conn.execute("UPDATE meta SET value = x'c1' WHERE key = 'set'")
    with pytest.raises(EnrolmentStoreError):  # not None: that reads as unknown_certificate
        store.lookup(ROOT_A, 4660)
    assert store.info() is None
    assert "damaged" in store.problem()
    assert store.lookup(ROOT_A, 4661) is not None  # an intact row still reads


def test_a_reader_thread_sees_the_old_set_or_the_new_one(tmp_path: Path) -> None:
    path = tmp_path / "enrolment.sqlite"
    writer = EnrolmentStore(path)
    reader = EnrolmentStore(path)
    sets = [small_content({f"N{n}": 1000 + n for n in range(v * 5)}) for v in range(1, 8)]
    writer.install(signed(sets[0], KEY, 1), TRUSTED, LATER)
    known = {content_digest(c) for c in sets}
    seen: list[bytes] = []
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            content = reader.content()
            seen.append(content_digest(content))

    thread = threading.Thread(target=read)
    thread.start()
    try:
        for version in range(2, 8):
            base = sets[version - 2]
            writer.install(
                signed(sets[version - 1], KEY, version, base=(version - 1, base)), TRUSTED, LATER
            )
    finally:
        stop.set()
        thread.join()
    assert seen and set(seen) <= known
    writer.close()
    reader.close()


def test_an_install_that_lands_meanwhile_is_not_overwritten(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process installs between our check and our write: we check again."""
    from terminald.store import enrolment_db

    path = tmp_path / "enrolment.sqlite"
    base = small_content()
    mine = EnrolmentStore(path)
    mine.install(signed(base, KEY, 1), TRUSTED, LATER)
    theirs = small_content({"T": 5})
    real = enrolment_db.resulting_content
    calls = []

    def meanwhile(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(1)
        if len(calls) == 1:
            EnrolmentStore(path).install(signed(theirs, KEY, 2), TRUSTED, LATER)
        return real(*args, **kwargs)

    monkeypatch.setattr(enrolment_db, "resulting_content", meanwhile)
    delta = signed(small_content({"M": 6}), KEY, 2, base=(1, base))
    with pytest.raises(EnrolmentRejected) as caught:
        mine.install(delta, TRUSTED, LATER)
    assert caught.value.reason is RejectReason.WRONG_BASE  # v2 is there now: checked again
    assert mine.content() == theirs and len(calls) == 2  # ours, theirs; then the check
    mine.close()


@settings(max_examples=25, deadline=None)
@given(contents(), contents())
def test_any_content_installs_whole_and_any_delta_leads_to_the_next(
    tmp_path_factory: pytest.TempPathFactory, old: EnrolmentContent, new: EnrolmentContent
) -> None:
    path = tmp_path_factory.mktemp("db") / "enrolment.sqlite"
    store = EnrolmentStore(path)
    store.install(signed(old, KEY, 1), TRUSTED, LATER)
    assert store.content() == old
    store.install(signed(new, KEY, 2, base=(1, old)), TRUSTED, LATER)
    assert store.content() == new and store.info().digest == content_digest(new)  # type: ignore[union-attr]
    for key, credential in new.credentials.items():
        assert store.lookup(*key) == new.people[credential.subject]
    store.close()


def test_an_age_yes_during_an_install_is_dropped_not_waited_for(store: EnrolmentStore) -> None:
    store.install(signed(small_content(), KEY, 1), TRUSTED, LATER)
    other = sqlite3.connect(store.path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # as an install's write phase holds it
    try:
        store.remember_age_yes(ROOT_A, 4660, AgeAttestation(20, date(2026, 6, 1)))
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert store.age_yes(ROOT_A, 4660) == () and store.problem() == ""
    assert store.info() is not None


def test_a_damaged_age_row_answers_no_yes(store: EnrolmentStore) -> None:
    store.remember_age_yes(ROOT_A, 4660, AgeAttestation(20, date(2026, 6, 1)))
    with sqlite3.connect(store.path) as conn:
        conn.execute("UPDATE age_yes SET since = -5")
    assert store.age_yes(ROOT_A, 4660) == () and "ordinal" in store.problem()
