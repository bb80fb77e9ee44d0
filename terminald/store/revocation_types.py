"""The revocation store's configuration, results and errors (terminald.store.revocation_store)."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from terminald.files import MAX_KEY_FILE_SIZE, read_limited
from terminald.revocation.acceptance import DEFAULT_MAX_CLOCK_SKEW
from terminald.revocation.bundle import DEFAULT_MAX_SIZE, BundleHeader
from terminald.revocation.freshness import Freshness, FreshnessPolicy
from terminald.revocation.keys import TrustedKeys, load_public_keys

# The state file is read whole into memory: a bound far above any real set (a 5 %
# snapshot of 100 M serials is 3.6 MB, docs/benchmarks.md) that still refuses a file
# that is not ours before it is read, and that a Pi Zero 2 W (512 MB) can afford.
MAX_STATE_SIZE = 64 * 1024 * 1024


@dataclass(frozen=True)
class Refreshed:
    """What :meth:`RevocationStore.refresh` found: the newly installed header, or why not."""

    installed: BundleHeader | None
    problem: str


def load_trusted_keys(paths: Iterable[Path]) -> TrustedKeys:
    """Trusted back-office public keys from PEM files (each may hold several keys)."""
    keys = []
    for path in paths:
        keys += load_public_keys(read_limited(path, MAX_KEY_FILE_SIZE), str(path))
    return TrustedKeys(keys)


@dataclass(frozen=True)
class RevocationStoreConfig:
    """Where the state lives, whose signatures count, and how stale is too stale."""

    state_path: Path
    trusted_keys: TrustedKeys
    freshness: FreshnessPolicy = field(default_factory=FreshnessPolicy)
    max_clock_skew: timedelta = DEFAULT_MAX_CLOCK_SKEW
    max_bundle_size: int = DEFAULT_MAX_SIZE
    # True for an installer (the first `revocation apply` creates the file): a missing
    # file is then expected and logged at INFO. A terminal running without one is an ERROR.
    creating: bool = False


def owner_for(directory: Path) -> tuple[int, int] | None:
    """As root, the new state file goes to the directory's owner: a root-run install must
    not leave a 0600 file the daemon's user cannot read. Otherwise the writer's own."""
    if os.geteuid() != 0:
        return None
    info = directory.stat()
    return info.st_uid, info.st_gid


@dataclass(frozen=True)
class StoreStatus:
    """For the daemon's health report and alarm output."""

    available: bool
    problem: str
    freshness: Freshness | None
    alarm: bool
    version: int | None = None
    snapshot_version: int | None = None
    deltas: int = 0
    issued_at: datetime | None = None
    valid_until: datetime | None = None
    revoked: int = 0
    hold: int = 0
