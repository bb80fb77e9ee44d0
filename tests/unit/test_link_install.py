"""Installing a signed configuration or enrolled-cards list pushed by the back office:
validated as the daemon loads it, newer than what is installed, written whole or not at
all, then a reload."""

from __future__ import annotations

import errno
import hashlib
import itertools
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from terminald.config import load_config
from terminald.daemon import link_install
from terminald.link import messages
from terminald.sim.testpki import TestPkiManifest
from tests.fuzzing import FUZZ

from .link_install_rig import ENROLLED, NOW, Site, make_site, refused


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


def test_a_valid_enrolment_replaces_the_list_and_asks_for_a_reload(site: Site) -> None:
    outcome = site.installer.install_enrolment(site.sign("enrolment", ENROLLED, 2))
    assert outcome.installed and outcome.version == 2
    assert site.config.access.enrolled.read_text() == ENROLLED and site.reloads == [1]
    refused(site.installer.install_enrolment(site.sign("enrolment", ENROLLED, 2)), "rollback")
    assert site.installer.installed_versions() == {"config": 0, "enrolment": 2}
    reply = outcome.as_message(4)
    assert isinstance(reply, messages.InstallResult) and reply.installed and reply.version == 2


def test_an_invalid_enrolment_is_refused_with_the_parsers_message(site: Site) -> None:
    before = site.files()
    body = "[[card]]\nserial = 4660\n"
    outcome = refused(site.installer.install_enrolment(site.sign("enrolment", body)), "invalid")
    assert "card[0].issuer (serial 4660): missing" in outcome.reason
    assert site.files() == before and site.reloads == []
    reply = outcome.as_message(5)
    assert messages.decode(messages.encode(reply)) == reply


def test_an_enrolment_under_any_card_is_kept_with_a_note(site: Site) -> None:
    text = site.config_path.read_text().replace('policy = "enrolled"', 'policy = "any_card"')
    site.config_path.write_text(text)
    outcome = site.installer.install_enrolment(site.sign("enrolment", ENROLLED))
    assert outcome.installed and "any_card" in outcome.notes[-1]


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
    kind=st.sampled_from(["config", "enrolment"]),
    body=st.binary(max_size=200) | TOML_ISH.map(str.encode),
)
def test_a_signed_body_is_installed_whole_or_refused_as_invalid(
    site: Site, kind: str, body: bytes
) -> None:
    """Signed by the right key, so only validation stands between the bytes and the file."""
    install = (
        site.installer.install_config if kind == "config" else site.installer.install_enrolment
    )
    target = site.config_path if kind == "config" else site.config.access.enrolled
    before = site.files()
    outcome = install(site.sign(kind, body, next(VERSIONS)))
    if outcome.installed:
        assert target.read_bytes() == body
    else:
        assert outcome.code == "invalid" and outcome.reason
        assert site.files() == before
