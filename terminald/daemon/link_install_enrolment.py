"""Installing a signed enrolment set pushed over the link (``terminald host push-enrolment``).

The set carries its own signature (``enrolment/bundle.py``), like a revocation bundle, so
it arrives as the bare bytes of a bulk transfer and goes through the very
:meth:`EnrolmentStore.install` that ``terminald enrolment apply`` uses: same keys
(``[revocation] backoffice_keys``), same rules, one transaction. The running daemon's
store sees the new set at its next lookup (store/enrolment_db.py), so no reload is asked.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from terminald.daemon.link_install_support import InstallOutcome, refused
from terminald.enrolment.bundle import parse_header, verify_signature
from terminald.enrolment.errors import EnrolmentError, EnrolmentRejected, RejectReason
from terminald.files import describe_error
from terminald.revocation.keys import TrustedKeys
from terminald.store.enrolment_db import FILE_NAME, EnrolmentStore
from terminald.store.enrolment_rows import EnrolmentStoreError

logger = logging.getLogger(__name__)

KIND = "enrolment"


def enrolment_path(state_dir: Path) -> Path:
    """``<state>/enrolment.sqlite``: where the terminal keeps its enrolment set."""
    return state_dir / FILE_NAME


def install_enrolment_set(
    data: bytes,
    keys: TrustedKeys,
    state_dir: Path,
    now: datetime,
    store: EnrolmentStore | None = None,
    policy: str = "enrolment",
) -> InstallOutcome:
    """Install ``data`` (a signed set) into ``store`` (default: a store opened on
    ``<state_dir>/enrolment.sqlite`` for this install). Never raises; the very set that is
    installed now is "installed" again (idempotent), not a rollback."""
    try:
        # Signature first: bytes that are not ours do not even create the database.
        verify_signature(data, parse_header(data), keys)
    except EnrolmentRejected as exc:
        return refused(KIND, exc.reason.value, exc.detail)
    except EnrolmentError as exc:
        return refused(KIND, RejectReason.MALFORMED.value, str(exc))
    own = store is None
    target = store if store is not None else EnrolmentStore(enrolment_path(state_dir))
    try:
        return _install(target, data, keys, now, policy)
    finally:
        if own:
            target.close()


def _install(
    store: EnrolmentStore, data: bytes, keys: TrustedKeys, now: datetime, policy: str
) -> InstallOutcome:
    try:
        info = store.install(data, keys, now)
    except EnrolmentRejected as exc:
        if exc.reason is RejectReason.ROLLBACK and store.is_installed(data):
            installed = store.info()
            version = None if installed is None else installed.version
            return InstallOutcome(
                KIND, True, "", f"version {version} is already installed", version
            )
        return refused(KIND, exc.reason.value, exc.detail)
    except EnrolmentStoreError as exc:
        return refused(KIND, "write_failed", str(exc))
    except EnrolmentError as exc:
        return refused(KIND, "rejected", str(exc))
    except OSError as exc:
        return refused(KIND, "write_failed", describe_error(exc))
    notes: tuple[str, ...] = ()
    if policy != "enrolment":
        notes = (f"access.policy is {policy}: the set is kept, not used",)
    logger.info(
        "link: enrolment version %d installed (%d people, %d certificates)",
        info.version,
        info.people,
        info.credentials,
    )
    return InstallOutcome(
        KIND,
        True,
        "",
        f"enrolment version {info.version} installed: {info.people} people, "
        f"{info.credentials} certificates",
        info.version,
        notes,
    )


def installed_version(
    state_dir: Path, store: Callable[[], EnrolmentStore | None] | None = None
) -> int:
    """The installed set's version for hello (0: none, or unreadable)."""
    running = store() if store is not None else None
    if running is not None:
        info = running.info()
        return 0 if info is None else info.version
    path = enrolment_path(state_dir)
    if not path.exists():
        return 0
    opened = EnrolmentStore(path)
    try:
        info = opened.info()
    finally:
        opened.close()
    return 0 if info is None else info.version
