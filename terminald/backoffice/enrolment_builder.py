"""The back office's side of enrolment: signed sets from source files, and synthetic
content for benchmarks and tests.

The signing key is the back office's ``signing.key`` (``terminald host keys init``;
store/link_keys.py), whose public half the terminals list in ``[revocation]
backoffice_keys``; ``terminald revocation build`` signs with the same kind of key.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Final

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from terminald.enrolment.bundle import (
    DEFAULT_MAX_SIZE,
    EnrolmentBundle,
    SetKind,
    encode_set,
    open_set,
)
from terminald.enrolment.errors import EnrolmentError
from terminald.enrolment.model import (
    AgeAttestation,
    Calendar,
    Credential,
    EnrolmentContent,
    Period,
    Person,
    WeeklySchedule,
)
from terminald.enrolment.source import parse_source_text
from terminald.files import MAX_KEY_FILE_SIZE, read_limited
from terminald.revocation.keys import KeyFileError as KeyFileError
from terminald.revocation.keys import TrustedKeys, load_private_key

MAX_SOURCE_SIZE: Final = 256 * 1024 * 1024  # ~150 bytes of TOML a person: a million people
DEFAULT_VALID_DAYS: Final = 30.0


class BuildError(Exception):
    """A one-line reason the set cannot be built (the source, the base, the key)."""


@dataclass(frozen=True)
class Built:
    data: bytes
    kind: SetKind
    version: int
    base_version: int
    content: EnrolmentContent
    valid_until: datetime


def load_signing_key(path: Path) -> Ed25519PrivateKey:
    """An unencrypted Ed25519 PEM private key; KeyFileError or OSError otherwise."""
    return load_private_key(read_limited(path, MAX_KEY_FILE_SIZE), str(path))


def read_source(path: Path) -> EnrolmentContent:
    """Parse a source file; BuildError naming the file and every problem."""
    try:
        text = read_limited(path, MAX_SOURCE_SIZE).decode()
    except OSError as exc:
        raise BuildError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise BuildError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    try:
        return parse_source_text(text)
    except EnrolmentError as exc:
        raise BuildError(f"{path}: {exc}") from None


def read_base(path: Path, trusted: TrustedKeys) -> EnrolmentBundle:
    """A full set to build a delta from, its signature verified."""
    try:
        data = read_limited(path, DEFAULT_MAX_SIZE)
        base = open_set(data, trusted)
    except OSError as exc:
        raise BuildError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except EnrolmentError as exc:
        raise BuildError(f"{path}: not a usable base: {exc}") from None
    if base.header.kind != SetKind.FULL:
        raise BuildError(
            f"{path}: is a delta; a delta is built from a full set (keep the full set of "
            "every version: build it without --base as well)"
        )
    return base


def build_set(
    content: EnrolmentContent,
    key: Ed25519PrivateKey,
    version: int,
    *,
    now: datetime,
    valid_days: float = DEFAULT_VALID_DAYS,
    base: EnrolmentBundle | None = None,
) -> Built:
    """Sign ``content`` as version ``version``: a full set, or the delta from ``base``
    (a full set, :func:`read_base`). BuildError for a version not above the base's."""
    issued = now.astimezone(UTC).replace(microsecond=0)
    valid_until = issued + timedelta(days=valid_days)
    base_pair = None
    if base is not None:
        if version <= base.header.version:
            raise BuildError(f"--version {version} must be above the base's {base.header.version}")
        assert isinstance(base.content, EnrolmentContent)
        base_pair = (base.header.version, base.content)
    try:
        data = encode_set(
            content,
            version=version,
            issued_at=issued,
            valid_until=valid_until.replace(microsecond=0),
            signing_key=key,
            base=base_pair,
        )
    except ValueError as exc:
        raise BuildError(str(exc)) from None
    kind = SetKind.FULL if base is None else SetKind.DELTA
    return Built(
        data, kind, version, 0 if base is None else base.header.version, content, valid_until
    )


# -- synthetic content (benchmarks, tests) --------------------------------------------


def synthetic_content(n_people: int, seed: int) -> EnrolmentContent:
    """``n_people`` realistic people, the same for the same seed: 20-byte issuer key ids
    from 3 roots (J-LIS roots' ids are SHA-1 key ids, RFC 5280 method 1), serials
    2**24..2**32, one certificate each (one in 50 has a renewed second one), 1-3 of
    six groups, an office schedule for most, an age attestation on about half."""
    rng = random.Random(seed)  # noqa: S311  # test data, reproducible by seed
    roots = [rng.randbytes(20) for _ in range(3)]
    groups = ["office", "lab", "warehouse", "night", "visitor", "staff"]
    office = WeeklySchedule(
        "office-hours",
        tuple((Period(480, 1140),) if d < 5 else () for d in range(7)),
        (),
    )
    night = WeeklySchedule("night-shift", tuple((Period(1320, 1800),) for _ in range(7)), ())
    tz_start = datetime(2026, 4, 1, tzinfo=UTC) - timedelta(hours=9)
    people: dict[str, Person] = {}
    credentials: dict[tuple[bytes, int], Credential] = {}
    for n in range(n_people):
        subject = f"E{100000 + n}"
        ages: tuple[AgeAttestation, ...] = ()
        if rng.random() < 0.5:
            ages = (AgeAttestation(20, date(2026, 1, 1) + timedelta(days=rng.randrange(3650))),)
        people[subject] = Person(
            subject,
            label="",
            groups=frozenset(rng.sample(groups, rng.randint(1, 3))),
            schedule=rng.choice(("office-hours", "office-hours", "night-shift", None)),
            valid_from=tz_start,
            valid_until=tz_start + timedelta(days=365),
            ages=ages,
        )
        for _ in range(2 if rng.random() < 0.02 else 1):
            while True:
                key = (rng.choice(roots), rng.randrange(2**24, 2**32))
                if key not in credentials:
                    break
            credentials[key] = Credential(key[0], key[1], subject)
    return EnrolmentContent(
        people,
        credentials,
        {"office-hours": office, "night-shift": night},
        Calendar(),
    )
