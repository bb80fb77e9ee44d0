"""Installing a signed configuration pushed by the back office (validated as the daemon
loads it, newer than what is installed, written whole or not at all, then a reload), and
a signed enrolment set (installed by EnrolmentStore.install, seen without a reload)."""

from __future__ import annotations

import errno
import hashlib
import itertools
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from terminald.config import load_config
from terminald.daemon import link_install
from terminald.enrolment.bundle import encode_set
from terminald.enrolment.model import Credential, EnrolmentContent
from terminald.link import messages
from terminald.sim.testpki import TestPkiManifest
from terminald.store.enrolment_db import EnrolmentStore
from tests.fuzzing import FUZZ

from .link_install_rig import ENROLLED, NOW, Site, enrolment_set, make_site, refused


@pytest.fixture
def site(tmp_path: Path, test_pki: TestPkiManifest) -> Site:
    return make_site(tmp_path, test_pki)


# --- config -------------------------------------------------------------------------------


def pushed_config(site: Site, extra: str = '[log]\nlevel = "debug"\n') -> str:
    return site.config_path.read_text() + extra


def test_a_valid_config_replaces_the_file_and_asks_for_a_reload(site: Site) -> None:
    text = pushed_config(site)
    outcome = site.installer.install_config(site.sign("config", text, version=4))
    assert outcome.installed and outcome.version == 4 and outcome.notes == ()
    assert site.config_path.read_text() == text and site.config.log.level == "debug"
    assert site.reloads == [1]
    assert site.installer.installed_versions() == {"config": 4, "enrolment": 0}
    assert link_install.config_digest(site.config_path) == hashlib.sha256(text.encode()).digest()
    assert not list(site.config_path.parent.glob(".*.tmp"))


def test_a_config_version_not_above_the_installed_one_is_refused(site: Site) -> None:
    assert site.installer.install_config(site.sign("config", pushed_config(site), 4)).installed
    before = site.files()
    for version in (4, 3):
        data = site.sign("config", pushed_config(site, "[door]\nheld_open_s = 40\n"), version)
        refused(site.installer.install_config(data), "rollback")
    assert site.files() == before and site.reloads == [1]


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda t: t + "[relay]\nopen_ms = 0\n",
            "relay.open_ms: must be between 100 and 60000, got 0",
        ),
        (lambda t: t.replace("[card]\n", "[card]\npin_flor = 1\n"), "card.pin_flor: unknown key"),
        (lambda t: t + "[[[", "not valid TOML"),
    ],
)
def test_an_invalid_config_is_refused_with_the_validators_message(
    site: Site, edit: Callable[[str], str], message: str
) -> None:
    before = site.files()
    data = site.sign("config", edit(site.config_path.read_text()))
    outcome = refused(site.installer.install_config(data), "invalid")
    assert message in outcome.reason
    assert site.files() == before and site.reloads == []


def test_a_config_naming_missing_files_is_refused_like_check_config(site: Site) -> None:
    text = site.config_path.read_text()
    anchors = str(load_config(site.config_path).trust.anchors[0])
    text = text.replace(anchors, anchors + "-missing")
    outcome = refused(site.installer.install_config(site.sign("config", text)), "invalid")
    assert "trust.anchors[0]:" in outcome.reason


def test_a_config_for_another_terminal_id_or_against_the_wiring_is_refused(site: Site) -> None:
    text = site.config_path.read_text().replace('id = "gate-1"', 'id = "gate-2"')
    outcome = refused(site.installer.install_config(site.sign("config", text)), "invalid")
    assert "terminal.id: gate-2 here, but this terminal is gate-1" in outcome.reason
    site.extra.append("relay.active_high: true here, but the rpi4 pin map drives it low")
    outcome = refused(
        site.installer.install_config(site.sign("config", pushed_config(site))), "invalid"
    )
    assert "relay.active_high" in outcome.reason


def test_a_config_that_is_not_utf8_is_refused(site: Site) -> None:
    outcome = refused(site.installer.install_config(site.sign("config", b"\xff\xfe")), "invalid")
    assert outcome.reason == "not UTF-8 text (byte 0)"


def test_a_failed_write_leaves_the_old_file_and_no_mark(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    def read_only(path: Path, data: bytes, owner: object = None) -> None:
        raise OSError(errno.EROFS, "Read-only file system", str(path))

    monkeypatch.setattr(link_install, "atomic_write", read_only)
    before = site.files()
    outcome = refused(
        site.installer.install_config(site.sign("config", pushed_config(site))), "write_failed"
    )
    assert "Read-only file system" in outcome.reason
    assert site.files() == before and site.reloads == []


def test_a_reload_that_cannot_be_requested_is_a_note_not_a_failure(site: Site) -> None:
    def broken() -> None:
        raise RuntimeError("loop gone")

    installer = site.installer_with(reload=broken)
    outcome = installer.install_config(site.sign("config", pushed_config(site)))
    assert outcome.installed and "reload not requested" in outcome.notes[0]


def test_an_unreadable_version_mark_refuses_every_push(site: Site) -> None:
    (site.config.state.dir / "link-versions").write_text("{not json")
    before = site.files()
    outcome = refused(
        site.installer.install_config(site.sign("config", pushed_config(site), 9)),
        "mark_unreadable",
    )
    assert "link-versions" in outcome.reason and site.files() == before
    assert site.installer.installed_versions() == {"config": 0, "enrolment": 0}


def test_without_back_office_keys_nothing_is_installed(site: Site, tmp_path: Path) -> None:
    bare = tmp_path / "bare.toml"
    bare.write_text(site.config_path.read_text().replace("backoffice_keys", "# backoffice_keys"))
    installer = site.installer_with(config=lambda: load_config(bare))
    refused(installer.install_config(site.sign("config", pushed_config(site))), "no_keys")
    refused(installer.install_time(site.time(NOW)), "no_keys")


# --- enrolment ----------------------------------------------------------------------------


def test_a_valid_enrolment_set_is_installed_into_the_store_without_a_reload(
    site: Site,
) -> None:
    data, _ = enrolment_set(site, 2, {"E1": 4660})
    outcome = site.installer.install_enrolment(data)
    assert outcome.installed and outcome.version == 2, outcome
    assert "1 people, 1 certificates" in outcome.reason and site.reloads == []
    store = EnrolmentStore(site.config.state.dir / "enrolment.sqlite")
    person = store.lookup(bytes.fromhex("aa" * 20), 4660)
    assert person is not None and person.subject == "E1"
    assert site.installer.installed_versions() == {"config": 0, "enrolment": 2}
    reply = outcome.as_message(4)
    assert isinstance(reply, messages.InstallResult) and reply.installed and reply.version == 2


def test_the_same_set_again_is_already_installed_and_an_older_one_a_rollback(
    site: Site,
) -> None:
    older, _ = enrolment_set(site, 1, {"E1": 4660})
    data, _ = enrolment_set(site, 2, {"E1": 4660})
    assert site.installer.install_enrolment(data).installed
    again = site.installer.install_enrolment(data)
    assert again.installed and "already installed" in again.reason
    refused(site.installer.install_enrolment(older), "rollback")


def test_a_relink_arrives_as_a_delta_and_the_renewed_card_is_found(site: Site) -> None:
    """Renewal: the person's new certificate (new serial) is linked by the next push."""
    first, base = enrolment_set(site, 1, {"E1": 4660})
    assert site.installer.install_enrolment(first).installed
    store = EnrolmentStore(site.config.state.dir / "enrolment.sqlite")
    issuer = bytes.fromhex("aa" * 20)
    assert store.lookup(issuer, 9999) is None
    relinked = {**base.credentials, (issuer, 9999): Credential(issuer, 9999, "E1")}
    delta = encode_set(
        EnrolmentContent(base.people, relinked),
        version=2,
        issued_at=datetime.fromtimestamp(NOW + 2, UTC),
        valid_until=datetime.fromtimestamp(NOW + 86400, UTC),
        signing_key=site.key,
        base=(1, base),
    )
    assert site.installer.install_enrolment(delta).installed
    person = store.lookup(issuer, 9999)  # the long-lived store sees it: no reload
    assert person is not None and person.subject == "E1"


def test_an_enrolment_set_signed_by_another_key_is_refused_and_creates_nothing(
    site: Site,
) -> None:
    before = site.files()
    data, _ = enrolment_set(site, 1, {"E1": 4660}, key=Ed25519PrivateKey.generate())
    refused(site.installer.install_enrolment(data), "unknown_key")
    assert site.files() == before


def test_the_old_signed_enrolled_list_is_refused_as_malformed(site: Site) -> None:
    before = site.files()
    outcome = refused(
        site.installer.install_enrolment(site.sign("enrolment", ENROLLED)), "malformed"
    )
    assert "not an enrolment set" in outcome.reason and site.files() == before


def test_an_enrolment_under_another_policy_is_kept_with_a_note(site: Site) -> None:
    data, _ = enrolment_set(site, 1, {"E1": 4660})
    outcome = site.installer.install_enrolment(data)
    assert outcome.installed and "enrolled" in outcome.notes[-1]


VERSIONS = itertools.count(1)
TOML_ISH = st.lists(
    st.sampled_from(
        [
            "[[card]]",
            "[card]",
            "[log]",
            'level = "debug"',
            "serial = 4660",
            'issuer = "aa"',
            "=",
            "\n",
        ]
    )
    | st.text(max_size=20),
    max_size=12,
).map("\n".join)


@pytest.mark.fuzz
@FUZZ
@given(
    body=st.binary(max_size=200) | TOML_ISH.map(str.encode),
)
def test_a_signed_body_is_installed_whole_or_refused_as_invalid(site: Site, body: bytes) -> None:
    """Signed by the right key, so only validation stands between the bytes and the file."""
    target = site.config_path
    before = site.files()
    outcome = site.installer.install_config(site.sign("config", body, next(VERSIONS)))
    if outcome.installed:
        assert target.read_bytes() == body
    else:
        assert outcome.code == "invalid" and outcome.reason
        assert site.files() == before
