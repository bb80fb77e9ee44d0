"""A terminal for the link installers' tests: a configuration with a back-office key, a
revocation store, a trusted-time file and a clock that records what it is set to."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from terminald.config import Config, load_config
from terminald.config_files import revocation_store_config
from terminald.daemon.link_install import LinkInstaller
from terminald.daemon.link_install_support import InstallOutcome
from terminald.enrolment.bundle import encode_set
from terminald.enrolment.model import Credential, EnrolmentContent, Person
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


def make_site(tmp_path: Path, test_pki: TestPkiManifest) -> Site:
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


def enrolment_set(
    site: Site,
    version: int,
    subjects: dict[str, int],
    *,
    key: Ed25519PrivateKey | None = None,
    base: tuple[int, EnrolmentContent] | None = None,
) -> tuple[bytes, EnrolmentContent]:
    """A signed enrolment set naming ``subjects`` (subject → serial under issuer aa..),
    issued at the rig's NOW + version seconds, valid a day."""
    issuer = bytes.fromhex("aa" * 20)
    content = EnrolmentContent(
        {s: Person(s, groups=frozenset({"office"})) for s in subjects},
        {(issuer, n): Credential(issuer, n, s) for s, n in subjects.items()},
    )
    issued = datetime.fromtimestamp(NOW + version, UTC)
    data = encode_set(
        content,
        version=version,
        issued_at=issued,
        valid_until=issued + timedelta(days=1),
        signing_key=key or site.key,
        base=base,
    )
    return data, content


def bundle(site: Site, version: int, key: Ed25519PrivateKey | None = None) -> bytes:
    content = revocations({ISSUER_A: ([10, 20], [])})
    return snapshot(content, key or site.key, version, issued=T0 + timedelta(hours=version))
