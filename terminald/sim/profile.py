"""Virtual card profiles: everything one virtual card holds, as a JSON file.

A profile is what ``terminald sim pki`` writes and ``terminald sim card`` loads.
The keys are test keys, stored unencrypted on purpose: they belong to a test PKI.
"""

from __future__ import annotations

import base64
import json
import os
import tempfile
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

CardKind = Literal["jpki", "face_auth", "non_jpki"]

# The contact ATR seen on My Number Cards (OpenSC ATR table; shared/reference/jpki-card.md §6).
MYNUMBER_CONTACT_ATR = bytes.fromhex("3BE000FF8131FE4514")
# A plausible ATR for a card that is not a My Number Card (T=1, historical bytes "JPKITEST"
# would be misleading, so use a neutral one).
OTHER_CARD_ATR = bytes.fromhex("3B8880014F54484552434152441F")

_BYTES_FIELDS = {
    "atr",
    "auth_cert",
    "auth_ca_cert",
    "auth_key_pem",
    "sign_cert",
    "sign_ca_cert",
    "sign_key_pem",
}


@dataclass(frozen=True)
class TimingModel:
    """Delays the virtual card adds, to make demos and benchmarks look like NFC.

    Defaults are zero. ``apdu_ms`` is added to every APDU; ``per_byte_us`` per byte
    carried in either direction; ``sign_ms`` to each private-key operation.
    """

    apdu_ms: float = 0.0
    per_byte_us: float = 0.0
    sign_ms: float = 0.0

    @classmethod
    def nfc(cls) -> TimingModel:
        """A plausible ISO 14443-B card at 212 kbit/s with an RSA-2048 coprocessor.

        No measured figure for a My Number Card exists in public sources
        (jpki-card.md §6, UNCONFIRMED); these are round numbers for demos only.
        """
        return cls(apdu_ms=8.0, per_byte_us=50.0, sign_ms=350.0)


ReadOverMax = Literal["6cxx", "wrong_length"]


@dataclass(frozen=True)
class CardQuirks:
    """Behaviours of awkward cards and readers, for tests that go through pcscd.

    ``unknown_aid_sw``: the answer to a SELECT of an AID the card lacks (``0x9000``
    selects an empty application, as cards with a default applet do). ``read_max``:
    the most data bytes one READ BINARY may return, as behind a reader that cannot carry
    256-byte responses (0: no limit); a READ asking more gets ``6Cxx`` (xx = read_max,
    ISO 7816-4) or ``6700`` (wrong length) per ``read_over_max``. ``read_chunk``:
    answer every READ with at most this many bytes and 9000 (0: no limit).
    ``pin_query_sw``: the answer to the VERIFY retry query instead of ``63Cx`` (0: normal).
    """

    unknown_aid_sw: int = 0x6A82
    read_max: int = 0
    read_over_max: ReadOverMax = "6cxx"
    read_chunk: int = 0
    pin_query_sw: int = 0

    def __post_init__(self) -> None:
        for name in ("unknown_aid_sw", "pin_query_sw"):
            value = getattr(self, name)
            if not isinstance(value, int) or not 0 <= value <= 0xFFFF:
                raise ValueError(f"quirks.{name} must be a status word 0..0xFFFF")
        for name in ("read_max", "read_chunk"):
            value = getattr(self, name)
            if not isinstance(value, int) or not 0 <= value <= 65536:
                raise ValueError(f"quirks.{name} must be 0..65536")
        if self.read_over_max not in ("6cxx", "wrong_length"):
            raise ValueError('quirks.read_over_max must be "6cxx" or "wrong_length"')
        if self.read_over_max == "6cxx" and self.read_max > 256:
            raise ValueError("quirks.read_max above 256 cannot be said in a 6Cxx answer")

    @classmethod
    def from_dict(cls, raw: object) -> CardQuirks:
        if not isinstance(raw, dict):
            raise ValueError("card profile quirks must be a JSON object")
        unknown = set(raw) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown card profile quirks: {', '.join(sorted(unknown))}")
        return cls(**raw)


@dataclass(frozen=True)
class CardProfile:
    """One virtual card. ``auth_tries`` is the auth PIN's tries left at power-up (0 = blocked)."""

    name: str
    kind: CardKind
    atr: bytes
    auth_cert: bytes = b""  # EF 000A, DER
    auth_ca_cert: bytes = b""  # EF 000B, DER
    auth_key_pem: bytes = b""  # PKCS#8 PEM of the user-auth key (EF 0017)
    auth_pin: str | None = None  # EF 0018; None on a face-authentication card
    auth_tries: int = 3
    sign_cert: bytes = b""  # EF 0001
    sign_ca_cert: bytes = b""  # EF 0002
    sign_key_pem: bytes = b""  # EF 001A
    sign_password: str | None = None  # EF 001B
    sign_tries: int = 5
    timing: TimingModel = field(default_factory=TimingModel)
    quirks: CardQuirks = field(default_factory=CardQuirks)
    note: str = ""

    def to_json(self) -> str:
        raw: dict[str, Any] = asdict(self)
        for key in _BYTES_FIELDS:
            raw[key] = base64.b64encode(raw[key]).decode("ascii")
        return json.dumps(raw, indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> CardProfile:
        raw = json.loads(text)
        if not isinstance(raw, dict):
            raise ValueError("card profile must be a JSON object")
        known = {f.name for f in fields(cls)}
        unknown = set(raw) - known
        if unknown:
            raise ValueError(f"unknown card profile keys: {', '.join(sorted(unknown))}")
        for key in _BYTES_FIELDS & set(raw):
            raw[key] = base64.b64decode(raw[key])
        if "timing" in raw:
            raw["timing"] = TimingModel(**raw["timing"])
        if "quirks" in raw:
            raw["quirks"] = CardQuirks.from_dict(raw["quirks"])
        if raw.get("kind") not in ("jpki", "face_auth", "non_jpki"):
            raise ValueError(
                f"card profile kind must be jpki, face_auth or non_jpki: {raw.get('kind')!r}"
            )
        return cls(**raw)

    def save(self, path: Path) -> None:
        """Write atomically: a reader never sees half a profile."""
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(self.to_json())
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise

    @classmethod
    def load(cls, path: Path) -> CardProfile:
        return cls.from_json(path.read_text(encoding="utf-8"))
