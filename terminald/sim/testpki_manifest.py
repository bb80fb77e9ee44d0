"""The test PKI's manifest: what was issued, for tests and tools to find cards by name."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from terminald.core.reasons import Reason
from terminald.sim.profile import (
    CardKind,
    CardProfile,
)
from terminald.sim.testpki_x509 import (
    MANIFEST_FORMAT,
    MANIFEST_NAME,
)

# --------------------------------------------------------------------------- manifest


@dataclass(frozen=True)
class RootEntry:
    """One CA of the test PKI as recorded in ``ca/index.json`` and the manifest."""

    name: str
    purpose: str  # "user_auth", "digital_signature" or "untrusted"
    key_id: str  # SKI, hex
    serial: int
    not_before: datetime
    not_after: datetime
    cert: str  # path relative to the PKI directory
    key: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "purpose": self.purpose,
            "key_id": self.key_id,
            "serial": self.serial,
            "not_before": self.not_before.isoformat(),
            "not_after": self.not_after.isoformat(),
            "cert": self.cert,
            "key": self.key,
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> RootEntry:
        return cls(
            name=raw["name"],
            purpose=raw["purpose"],
            key_id=raw["key_id"],
            serial=int(raw["serial"]),
            not_before=datetime.fromisoformat(raw["not_before"]),
            not_after=datetime.fromisoformat(raw["not_after"]),
            cert=raw["cert"],
            key=raw["key"],
        )


@dataclass(frozen=True)
class CardEntry:
    """One card profile and the verdict a terminal should reach for it."""

    name: str
    profile: str  # path relative to the PKI directory
    kind: CardKind
    expected: Reason
    pin: str | None
    auth_tries: int
    sign_password: str | None = None
    root: str | None = None  # the CA that signed the auth cert (rogue-root for forgeries)
    serial: int | None = None
    issuer_key_id: str | None = None  # the AKI keyid the certificate claims, hex
    common_name: str | None = None
    crl_distribution_point: str | None = None  # RFC 4514 form of the CRLDP dirName
    not_before: datetime | None = None
    not_after: datetime | None = None
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "profile": self.profile,
            "kind": self.kind,
            "expected": self.expected.value,
            "pin": self.pin,
            "auth_tries": self.auth_tries,
            "sign_password": self.sign_password,
            "root": self.root,
            "serial": self.serial,
            "issuer_key_id": self.issuer_key_id,
            "common_name": self.common_name,
            "crl_distribution_point": self.crl_distribution_point,
            "not_before": _iso_or_none(self.not_before),
            "not_after": _iso_or_none(self.not_after),
            "note": self.note,
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> CardEntry:
        return cls(
            name=raw["name"],
            profile=raw["profile"],
            kind=raw["kind"],
            expected=Reason(raw["expected"]),
            pin=raw["pin"],
            auth_tries=int(raw["auth_tries"]),
            sign_password=raw.get("sign_password"),
            root=raw.get("root"),
            serial=raw.get("serial"),
            issuer_key_id=raw.get("issuer_key_id"),
            common_name=raw.get("common_name"),
            crl_distribution_point=raw.get("crl_distribution_point"),
            not_before=_datetime_or_none(raw.get("not_before")),
            not_after=_datetime_or_none(raw.get("not_after")),
            note=raw.get("note", ""),
        )


def _iso_or_none(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _datetime_or_none(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


@dataclass(frozen=True)
class TestPkiManifest:
    """What :func:`build_test_pki` wrote: ``manifest.json`` in memory."""

    __test__ = False  # not a pytest test class, despite the name

    directory: Path
    generated_at: datetime
    roots: tuple[RootEntry, ...]
    cards: tuple[CardEntry, ...]

    @property
    def trust_dir(self) -> Path:
        """Give this to the terminal as ``--trust``: the trusted auth roots only."""
        return self.directory / "trust"

    @property
    def ca_dir(self) -> Path:
        return self.directory / "ca"

    def card(self, name: str) -> CardEntry:
        for entry in self.cards:
            if entry.name == name:
                return entry
        raise KeyError(name)

    def root(self, name: str) -> RootEntry:
        for entry in self.roots:
            if entry.name == name:
                return entry
        raise KeyError(name)

    def profile_path(self, name: str) -> Path:
        return self.directory / self.card(name).profile

    def load_profile(self, name: str) -> CardProfile:
        return CardProfile.load(self.profile_path(name))

    def to_json(self) -> str:
        raw = {
            "format": MANIFEST_FORMAT,
            "generated_at": self.generated_at.isoformat(),
            "trust_dir": "trust",
            "roots": [root.to_dict() for root in self.roots],
            "cards": [card.to_dict() for card in self.cards],
        }
        return json.dumps(raw, indent=2, ensure_ascii=False) + "\n"

    @classmethod
    def load(cls, directory: Path) -> TestPkiManifest:
        raw = json.loads((directory / MANIFEST_NAME).read_text(encoding="utf-8"))
        if raw.get("format") != MANIFEST_FORMAT:
            raise ValueError(f"{directory}: not a {MANIFEST_FORMAT} manifest")
        return cls(
            directory=directory,
            generated_at=datetime.fromisoformat(raw["generated_at"]),
            roots=tuple(RootEntry.from_dict(r) for r in raw["roots"]),
            cards=tuple(CardEntry.from_dict(c) for c in raw["cards"]),
        )
