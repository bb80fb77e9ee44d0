"""What a configuration points at, opened: trust anchors, back-office keys, directories.

``terminald.config.load_config`` checks the file's own content only (it can run on any
machine); these run on the terminal itself, for ``terminald check-config``, the doctor,
start-up and SIGHUP. Each problem is one message keyed like ``load_config``'s.
"""

from __future__ import annotations

import os
import stat
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from terminald.config import Config, ConfigError

if TYPE_CHECKING:
    from terminald.pki.anchors import TrustStore
    from terminald.store.revocation_store import RevocationStoreConfig


def trust_store(config: Config) -> TrustStore:
    """The trust anchors the configuration names (plus the built-in roots if asked)."""
    from terminald.pki.anchors import TrustAnchorError, TrustStore

    anchors = list(TrustStore.production().anchors()) if config.trust.include_builtin else []
    errors = []
    for index, path in enumerate(config.trust.anchors):
        try:
            anchors += TrustStore.from_paths([path]).anchors()
        except (OSError, TrustAnchorError) as exc:
            errors.append(f"trust.anchors[{index}]: {_file_problem(exc, path)}")
    if errors:
        raise ConfigError(errors)
    return TrustStore(anchors)


def revocation_store_config(config: Config) -> RevocationStoreConfig | None:
    """What :class:`RevocationStore` needs; None when revocation is not checked at all
    (``required = false`` and no back-office key)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from terminald.files import MAX_KEY_FILE_SIZE, read_limited
    from terminald.revocation.freshness import FreshnessPolicy
    from terminald.revocation.keys import KeyFileError, TrustedKeys, load_public_keys
    from terminald.store.revocation_store import RevocationStoreConfig

    section = config.revocation
    if not section.backoffice_keys:
        return None
    keys: list[Ed25519PublicKey] = []
    errors = []
    for index, path in enumerate(section.backoffice_keys):
        try:
            keys += load_public_keys(read_limited(path, MAX_KEY_FILE_SIZE), str(path))
        except (OSError, KeyFileError) as exc:
            errors.append(f"revocation.backoffice_keys[{index}]: {_file_problem(exc, path)}")
    if errors:
        raise ConfigError(errors)
    freshness = FreshnessPolicy(grace=timedelta(hours=section.grace_hours))
    return RevocationStoreConfig(section.state_path, TrustedKeys(keys), freshness)


def check_directories(config: Config) -> list[str]:
    """The state directory and the revocation state's directory exist (start-up,
    SIGHUP and check-config alike, through build_runtime)."""
    errors: list[str] = []
    if not config.state.dir.is_dir():
        errors.append(f"state.dir: {config.state.dir} is not a directory")
    parent = config.revocation.state_path.parent
    if parent != config.state.dir and not parent.is_dir():
        errors.append(f"revocation.state_path: directory {parent} does not exist")
    # It may not exist yet (the first bundle creates it); if it does, it must be a file
    # the store can read and replace: a FIFO or a directory would fail every card closed.
    from terminald.files import kind_of

    try:
        mode = os.stat(config.revocation.state_path).st_mode
    except OSError:
        mode = None
    if mode is not None and not stat.S_ISREG(mode):
        errors.append(
            f"revocation.state_path: {config.revocation.state_path} is {kind_of(mode)}, "
            "not a regular file"
        )
    return errors


def check_files(config: Config) -> list[str]:
    """Open what the configuration points at; one message per problem, keyed like
    :func:`load_config`'s. ``terminald check-config`` runs the daemon's own
    ``build_runtime``, which checks the same and more; this is for ``doctor``."""
    errors: list[str] = []
    for build in (trust_store, revocation_store_config):
        try:
            build(config)
        except ConfigError as exc:
            errors += exc.messages
    if config.access.policy == "enrolled":
        from terminald.store.enrolled import EnrolledFileError, load_enrolled

        try:
            load_enrolled(config.access.enrolled)
        except EnrolledFileError as exc:
            errors += [f"access.enrolled: {exc}"]
    return errors + check_directories(config)


def _file_problem(exc: Exception, path: Path) -> str:
    if isinstance(exc, OSError):
        return f"{path}: {exc.strerror or exc}"
    return str(exc)
