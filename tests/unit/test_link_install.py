"""The terminal's installers for what the back office pushes: signed time, config and
enrolment, and revocation bundles through the real store. Each installs whole or not at
all, and says why not."""

from __future__ import annotations

import dataclasses
import errno
import hashlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from terminald.config import Config, load_config
from terminald.config_files import revocation_store_config
from terminald.core.trusted_time import SignedTime
from terminald.daemon import link_install
from terminald.daemon.link_install import LinkInstaller, NonceIssuer
from terminald.daemon.link_install_support import CAP_SYS_TIME_NOTE, InstallOutcome
from terminald.link import messages
from terminald.link.signed import sign_object, time_body
from terminald.revocation.keys import public_key_pem
from terminald.sim.testpki import TestPkiManifest
from terminald.store.revocation_store import RevocationStore
from terminald.store.trusted_time import TrustedTimeFile

from .revocation_support import ISSUER_A, T0, revocations, snapshot
from .test_doctor import write_config

NOW = 1_795_000_000.0  # 2026-11-18
ENROLLED = '[[card]]\nissuer = "' + "aa" * 20 + '"\nserial = 4660\nlabel = "desk"\n'


class FakeClock:
    def __init__(self, wall: float = NOW) -> None:
        self.now = wall
        self.mono = 1000.0
        self.set_to: list[float] = []
        self.refuse: OSError | None = None

    def wall(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self.mono

    def set_wall(self, at: float) -> None:
        if self.refuse is not None:
            raise self.refuse
        self.set_to.append(at)
        self.now = at


@dataclasses.dataclass
class Site:
    root: Path
    key: Ed25519PrivateKey
    config_path: Path
    clock: FakeClock
    trusted: TrustedTimeFile
    store: RevocationStore
    installer: LinkInstaller
    reloads: list[int]
    extra: list[str]
    arguments: dict[str, Any]

    def installer_with(self, **change: Any) -> LinkInstaller:
        return LinkInstaller(**(self.arguments | change))

    @property
    def config(self) -> Config:
        return load_config(self.config_path)

    def sign(self, kind: str, body: bytes | str, version: int = 1, **kw: Any) -> bytes:
        data = body.encode() if isinstance(body, str) else body
        kw.setdefault("signing_key", self.key)
        kw.setdefault("terminal", "gate-1")
        return sign_object(kind, data, version=version, issued=int(NOW), **kw)

    def time(self, at: float, nonce: bytes | None = None, **kw: Any) -> bytes:
        nonce = nonce if nonce is not None else self.installer.issue_nonce()
        return self.sign("time", time_body(at), nonce=nonce, **kw)

    def files(self) -> dict[str, bytes]:
        return {str(p): p.read_bytes() for p in sorted(self.root.rglob("*")) if p.is_file()}


@pytest.fixture
def site(tmp_path: Path, test_pki: TestPkiManifest) -> Site:
    key = Ed25519PrivateKey.generate()
    pub = tmp_path / "backoffice.pem"
    pub.write_bytes(public_key_pem(key.public_key()))
    enrolled = tmp_path / "enrolled.toml"
    enrolled.write_text("")
    path = write_config(
        tmp_path,
        test_pki.trust_dir,
        terminal={"id": "gate-1"},
        revocation={"backoffice_keys": [str(pub)]},
        access={"policy": "enrolled", "enrolled": str(enrolled)},
    )
    config = load_config(path)
    store_config = revocation_store_config(config)
    assert store_config is not None
    store = RevocationStore(dataclasses.replace(store_config, creating=True))
    trusted = TrustedTimeFile(config.state.dir / "trusted-time")
    clock = FakeClock()
    reloads: list[int] = []
    extra: list[str] = []
    arguments: dict[str, Any] = {
        "config": lambda: load_config(path),
        "config_path": lambda: path,
        "store": lambda: store,
        "reload": lambda: reloads.append(1),
        "trusted_time": trusted,
        "clock": clock,
        "extra_checks": lambda _config: list(extra),
    }
    installer = LinkInstaller(**arguments)
    return Site(tmp_path, key, path, clock, trusted, store, installer, reloads, extra, arguments)


def refused(outcome: InstallOutcome, code: str) -> InstallOutcome:
    assert not outcome.installed and outcome.code == code, outcome
    return outcome


# --- time ---------------------------------------------------------------------------------


def test_a_signed_time_advances_the_trusted_time_and_sets_the_clock(site: Site) -> None:
    outcome = site.installer.install_time(site.time(NOW + 100.25))
    assert outcome.installed and outcome.clock_set and outcome.notes == ()
    assert outcome.offset == pytest.approx(100.25)
    assert site.clock.set_to == [NOW + 100.25]
    assert site.trusted.floor.at == datetime.fromtimestamp(NOW + 100.25, UTC)
    assert TrustedTimeFile(site.trusted.path).floor.at == site.trusted.floor.at  # durable


def test_a_time_object_is_single_use(site: Site) -> None:
    data = site.time(NOW + 1)
    assert site.installer.install_time(data).installed
    refused(site.installer.install_time(data), "nonce")
    assert len(site.clock.set_to) == 1


def test_a_challenge_this_terminal_did_not_issue_is_refused(site: Site) -> None:
    site.installer.issue_nonce()
    outcome = refused(site.installer.install_time(site.time(NOW, nonce=bytes(16))), "nonce")
    assert "ask for a new one" in outcome.reason and site.clock.set_to == []


def test_an_expired_challenge_is_refused(site: Site) -> None:
    data = site.time(NOW + 1)
    site.clock.mono += 60.0
    refused(site.installer.install_time(data), "nonce")


def test_a_large_backward_jump_needs_force_and_keeps_the_challenge_for_it(site: Site) -> None:
    data = site.time(NOW - 600)
    outcome = refused(site.installer.install_time(data), "backward_jump")
    assert outcome.offset == pytest.approx(-600) and "force" in outcome.reason
    assert site.clock.set_to == []
    forced = site.installer.install_time(data, force=True)
    assert forced.installed and site.clock.set_to == [NOW - 600]


def test_a_small_backward_step_needs_no_force(site: Site) -> None:
    assert site.installer.install_time(site.time(NOW - 60)).installed


def test_a_time_behind_the_trusted_time_is_refused_even_forced(site: Site) -> None:
    site.trusted.advance(SignedTime(datetime.fromtimestamp(NOW + 3600, UTC), "a bundle"))
    outcome = refused(
        site.installer.install_time(site.time(NOW), force=True), "behind_trusted_time"
    )
    assert "a bundle" in outcome.reason and site.clock.set_to == []


def test_a_time_behind_the_installed_revocation_data_is_refused(site: Site) -> None:
    site.clock.now = (T0 + timedelta(days=1)).timestamp()
    assert site.installer.install_revocation(bundle(site, 5)).installed  # issued T0 + 5 h
    early = (T0 + timedelta(hours=4)).timestamp()
    outcome = refused(
        site.installer.install_time(site.time(early), force=True), "behind_trusted_time"
    )
    assert "revocation data version 5" in outcome.reason


def test_without_cap_sys_time_the_time_is_applied_and_the_clock_not_set(site: Site) -> None:
    site.clock.refuse = PermissionError(errno.EPERM, "Operation not permitted")
    outcome = site.installer.install_time(site.time(NOW + 5))
    assert outcome.installed and not outcome.clock_set
    assert outcome.notes == (CAP_SYS_TIME_NOTE,)
    assert site.trusted.floor.at == datetime.fromtimestamp(NOW + 5, UTC)
    reply = outcome.as_message(9)
    assert isinstance(reply, messages.TimeReply)
    assert messages.decode(messages.encode(reply)) == reply
    assert reply.applied and not reply.clock_set and "CAP_SYS_TIME" in reply.reason


def test_a_time_signed_by_another_key_or_for_another_terminal_is_refused(site: Site) -> None:
    other = Ed25519PrivateKey.generate()
    refused(site.installer.install_time(site.time(NOW, signing_key=other)), "unknown_key")
    refused(site.installer.install_time(site.time(NOW, terminal="gate-2")), "other_terminal")
    refused(site.installer.install_time(site.sign("config", "x")), "wrong_kind")
    refused(site.installer.install_time(b"\x00garbage"), "malformed")
    assert site.clock.set_to == []


def test_nonce_issuer_is_bounded_and_forgets_the_oldest() -> None:
    issuer = NonceIssuer(lifetime_s=60, max_outstanding=2)
    first, second, third = (issuer.issue(0.0) for _ in range(3))
    assert issuer.problem(first, 1.0) and not issuer.problem(third, 1.0)
    assert issuer.consume(second, 1.0) and not issuer.consume(second, 1.0)
    assert issuer.problem(None, 1.0) == "the time object carries no challenge"


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


# --- revocation ---------------------------------------------------------------------------


def bundle(site: Site, version: int, key: Ed25519PrivateKey | None = None) -> bytes:
    content = revocations({ISSUER_A: ([10, 20], [])})
    return snapshot(content, key or site.key, version, issued=T0 + timedelta(hours=version))


def test_a_revocation_bundle_is_installed_through_the_store(site: Site) -> None:
    site.clock.now = (T0 + timedelta(days=1)).timestamp()
    outcome = site.installer.install_revocation(bundle(site, 2))
    assert outcome.installed and outcome.version == 2 and "snapshot version 2" in outcome.reason
    assert site.store.status(T0 + timedelta(days=1)).version == 2
    assert site.store.config.state_path.exists()
    again = site.installer.install_revocation(bundle(site, 2))
    assert again.installed and again.reason == "version 2 is already installed"
    refused(site.installer.install_revocation(bundle(site, 1)), "rollback")
    assert site.store.status(T0 + timedelta(days=1)).version == 2


def test_a_bad_revocation_bundle_is_refused_and_the_data_stays(site: Site) -> None:
    site.clock.now = (T0 + timedelta(days=1)).timestamp()
    assert site.installer.install_revocation(bundle(site, 1)).installed
    before = site.files()
    refused(
        site.installer.install_revocation(bundle(site, 2, Ed25519PrivateKey.generate())),
        "unknown_key",
    )
    refused(site.installer.install_revocation(b"TDRV" + bytes(200)), "malformed")
    site.clock.now = (T0 + timedelta(days=30)).timestamp()
    refused(site.installer.install_revocation(bundle(site, 3)), "expired")
    assert site.files() == before


def test_without_a_store_a_bundle_is_refused(site: Site) -> None:
    installer = site.installer_with(store=lambda: None)
    outcome = refused(installer.install_revocation(bundle(site, 1)), "no_store")
    assert "[revocation]" in outcome.reason


def test_outcomes_never_raise_on_arbitrary_bytes(site: Site) -> None:
    install: list[Callable[[bytes], InstallOutcome]] = [
        site.installer.install_time,
        site.installer.install_config,
        site.installer.install_enrolment,
        site.installer.install_revocation,
    ]
    before = site.files()
    for call in install:
        for data in (b"", b"\xc1", b"\x80", bytes(300)):
            assert not call(data).installed
    assert site.files() == before and site.reloads == []
