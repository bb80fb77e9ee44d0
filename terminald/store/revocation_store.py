"""The terminal's revocation store: signed bundles on disk, pyroaring bitmaps in memory.

It implements :class:`terminald.core.revocation_check.RevocationCheck`.

Atomicity. On disk, the whole state (the last snapshot and the deltas since) is one file
replaced by :func:`atomic_write`; power loss leaves either the old or the new file. In
memory, the answer comes from one immutable ``View`` reached through a single attribute;
``apply`` builds the next view completely, writes it to disk, and only then rebinds the
attribute, so a reader sees the old view or the new one, never a mix. The new view is
built by replaying the very chain written to disk, so what a lookup answers after
``apply`` is exactly what a restart would load.

Failing closed. A missing, truncated or corrupt state file, a signature that no longer
verifies (a key removed from the configuration), or stale data beyond the grace all answer
UNAVAILABLE or STALE, never GOOD.
"""

from __future__ import annotations

import array
import logging
import threading
from collections.abc import Sequence
from datetime import datetime

from terminald.core.revocation_check import RevocationCheck, RevocationState, RevocationVerdict
from terminald.core.trusted_time import SignedTime
from terminald.files import read_limited, read_with_identity
from terminald.revocation.acceptance import Installed, check_acceptable
from terminald.revocation.bundle import BundleHeader, BundleKind, open_bundle
from terminald.revocation.chain import (
    MAX_CHAIN,
    Replayed,
    chain_digest,
    decode_chain,
    encode_chain,
    replay,
)
from terminald.revocation.errors import (
    BundleRejected,
    RejectReason,
    RevocationError,
    RevocationFormatError,
)
from terminald.revocation.freshness import Freshness
from terminald.store.atomic_file import atomic_write, remove_stale_temporaries
from terminald.store.heap import release_free_heap
from terminald.store.high_water import (
    HighWater,
    check_mark,
    high_water_path,
    read_high_water,
    rollback_problem,
    write_high_water,
)
from terminald.store.revocation_types import (  # re-exported: callers import them from here
    MAX_STATE_SIZE,
    Refreshed,
    RevocationStoreConfig,
    StoreStatus,
    load_trusted_keys,
    owner_for,
)
from terminald.store.revocation_view import (
    FRESH,
    IN_GRACE,
    View,
    build_view,
    not_covered,
    verdict,
)
from terminald.store.state_file import FileIdentity, current_identity, directory_lock

__all__ = [
    "MAX_STATE_SIZE",
    "Refreshed",
    "RevocationStore",
    "RevocationStoreConfig",
    "StoreStatus",
    "load_trusted_keys",
]

log = logging.getLogger(__name__)

if array.array("I").itemsize != 4:  # pragma: no cover - every Linux/ARM ABI we target
    raise ImportError("array('I') is not 32-bit on this platform")


class RevocationStore:
    """Answers ``check`` from memory; ``apply`` installs new signed bundles durably.

    Writers (``apply``, ``reload``) are serialised by a lock; ``check`` takes no lock.
    """

    def __init__(self, config: RevocationStoreConfig) -> None:
        self._config = config
        self._lock = threading.Lock()
        self._view: View | None = None
        self._problem = "revocation data not loaded yet"
        self._stale_reported: View | None = None
        # What was last read or written: (device, inode, size, mtime ns) of the state
        # file, so a cheap stat tells whether another process installed something.
        self._seen: FileIdentity | None = None
        self._high_path = high_water_path(config.state_path)
        self._high = read_high_water(self._high_path)
        self.reload()

    # -- reading -------------------------------------------------------------------------

    def check(
        self,
        issuer_key_id: bytes,
        serial: int,
        now: datetime,
        distribution_points: Sequence[bytes] = (),
    ) -> RevocationVerdict:
        view = self._view  # one read: everything below uses this view
        if view is None:
            return verdict(RevocationState.UNAVAILABLE, False, self._problem)
        if now < view.valid_until:
            answers = FRESH
        elif now < view.stale_at:
            answers = IN_GRACE
        else:
            self._report_stale(view)
            return view.stale
        lists = view.issuers.get(issuer_key_id)
        if lists is None:
            return verdict(
                RevocationState.UNAVAILABLE,
                answers is IN_GRACE,
                f"no revocation data for issuer key {issuer_key_id.hex()}",
            )
        revoked, hold, partitions = lists
        if partitions is not None:
            for point in distribution_points:  # a loop, not a set: nothing allocated
                if point in partitions:
                    break
            else:
                return not_covered(issuer_key_id, partitions, distribution_points, answers)
        try:  # a try costs nothing in CPython 3.11 unless it raises
            if serial in revoked:
                return answers[0]
            if hold is not None and serial in hold:
                return answers[1]
        except OverflowError:  # pyroaring: negative or wider than 32 bits
            return verdict(
                RevocationState.UNAVAILABLE,
                answers is IN_GRACE,
                f"serial {serial} is outside the 32-bit range revocation data covers",
            )
        return answers[2]

    def coverage(self) -> dict[bytes, frozenset[bytes] | None]:
        """Per issuer key id: covered partitions (DER names), or None for the whole issuer."""
        view = self._view
        return {} if view is None else {k: v[2] for k, v in view.issuers.items()}

    def status(self, now: datetime) -> StoreStatus:
        view = self._view
        if view is None:
            return StoreStatus(False, self._problem, None, alarm=True)
        freshness = self._config.freshness.assess(view.latest.valid_until, now)
        return StoreStatus(
            available=True,
            problem="" if freshness is Freshness.FRESH else f"revocation data is {freshness.value}",
            freshness=freshness,
            alarm=freshness is not Freshness.FRESH,
            version=view.latest.version,
            snapshot_version=view.snapshot.version,
            deltas=view.deltas,
            issued_at=view.latest.issued_at,
            valid_until=view.latest.valid_until,
            revoked=view.revoked,
            hold=view.hold,
        )

    @property
    def config(self) -> RevocationStoreConfig:
        return self._config

    @property
    def signed_time(self) -> SignedTime | None:
        """The installed data's issue time: a time the back office signed."""
        view = self._view
        if view is None:
            return None
        return SignedTime(
            view.latest.issued_at, f"revocation data version {view.latest.version}'s issue time"
        )

    @property
    def problem(self) -> str:
        """Why there is no usable data ("" when loaded)."""
        return "" if self._view is not None else self._problem

    def _report_stale(self, view: View) -> None:
        if self._stale_reported is not view:
            self._stale_reported = view
            log.error("ALARM: %s; failing closed", view.stale.detail)

    # -- loading -------------------------------------------------------------------------

    def _build_view(self, replayed: Replayed, deltas: int, digest: bytes) -> View:
        return build_view(replayed, deltas, digest, self._config.freshness.grace)

    def _load(self, data: bytes) -> View:
        bundles = decode_chain(data)
        replayed = replay(bundles, self._config.trusted_keys, self._config.max_bundle_size)
        view = self._build_view(replayed, len(bundles) - 1, chain_digest(data))
        del replayed, bundles
        release_free_heap()
        return view

    def reload(self) -> None:
        """(Re)read the state file. On any problem: no data, fail closed, say why."""
        path = self._config.state_path
        with self._lock:
            if path.parent.is_dir():  # under the writers' lock: never an install in progress
                with directory_lock(path.parent):
                    for stray in remove_stale_temporaries(path):
                        log.warning("removed %s left by an interrupted write", stray)
            self._read_file()

    def _read_file(self) -> None:
        """Under ``_lock``: the file becomes the view, or no data with the reason."""
        path = self._config.state_path
        try:
            identity, data = read_with_identity(path, MAX_STATE_SIZE)
        except FileNotFoundError:
            self._seen = None
            problem = f"no revocation data yet ({path} does not exist)"
            level = logging.INFO if self._config.creating else logging.ERROR
            self._set_unavailable(problem, level)
            return
        except OSError as exc:
            self._seen = current_identity(path)  # not read again until it changes
            self._set_unavailable(f"cannot read {path}: {exc.strerror or exc}")
            return
        self._seen = identity
        self._view = None  # compared with the rollback mark alone
        try:
            view = self._load(data)
        except RevocationError as exc:
            self._set_unavailable(f"{path} is unusable, failing closed: {exc}")
            return
        rollback = self._rollback(view)
        if rollback:
            self._set_unavailable(f"{path} {rollback}; failing closed")
            return
        self._view = view
        self._raise_mark(view)
        log.info("loaded revocation data version %d from %s", view.latest.version, path)

    def _rollback(self, view: View) -> str:
        """Why installing ``view`` would take the terminal back ("" when it would not)."""
        current = self._view
        held = (current.latest, current.digest) if current is not None else None
        return rollback_problem(view.latest, view.digest, held, self._high, self._high_path)

    def _raise_mark(self, view: View) -> None:
        """Keep the newest version ever installed (best effort: a failed write is logged)."""
        high = self._high
        if high is not None and view.latest.version <= high.version:
            return
        mark = HighWater(view.latest.version, view.latest.issued_at)
        try:
            write_high_water(self._high_path, mark, owner_for(self._high_path.parent))
        except OSError as exc:
            log.error("cannot keep the rollback mark %s: %s", self._high_path, exc)
        self._high = mark  # this process still refuses anything older

    def changed_on_disk(self) -> bool:
        """Whether the state file is not the one last read or written (one ``stat``)."""
        return current_identity(self._config.state_path) != self._seen

    def refresh(self) -> Refreshed | None:
        """Pick up a state file another process installed (``terminald revocation apply``).

        None when the file is the one already read. Otherwise it is read, verified and
        replayed into a new view *before* anything is swapped: a file that fails, or
        that would take the data back to an older version or issue time, keeps the
        installed data (it is still signed and in force) and is not tried again until
        it changes. Called off the event loop: loading a large set takes a while, and a
        call while another is loading waits for it (the data is then current).
        """
        # Under the lock even to look: a caller that finds another one loading the new
        # file must wait for that load to finish, not decide on the old view meanwhile.
        with self._lock:
            if not self.changed_on_disk():
                return None
            path = self._config.state_path
            view = self._view
            keeps = (
                f"version {view.latest.version} stays installed"
                if view is not None
                else "no data is installed, failing closed"
            )
            try:
                identity, data = read_with_identity(path, MAX_STATE_SIZE)
            except FileNotFoundError:
                self._seen = None
                return Refreshed(None, f"{path} was removed; {keeps}")
            except OSError as exc:
                self._seen = current_identity(path)  # not tried again until it changes
                return Refreshed(None, f"cannot read {path}: {exc.strerror or exc}; {keeps}")
            self._seen = identity
            if view is not None and chain_digest(data) == view.digest:
                return None  # the same bytes rewritten (e.g. touched): nothing to do
            try:
                new_view = self._load(data)
            except RevocationError as exc:
                return Refreshed(None, f"{path} is unusable ({exc}); {keeps}")
            rollback = self._rollback(new_view)
            if rollback:
                return Refreshed(None, f"{path} {rollback}: not installed; {keeps}")
            self._view = new_view
            del view
            release_free_heap()
            self._raise_mark(new_view)
            log.info("picked up revocation data version %d from %s", new_view.latest.version, path)
            return Refreshed(new_view.latest, "")

    def _set_unavailable(self, problem: str, level: int = logging.ERROR) -> None:
        # Problem first: a reader that sees no view then always finds a reason. It is
        # never cleared, because it only counts while there is no view.
        self._problem = problem
        self._view = None
        log.log(level, "%s", problem)

    # -- installing ----------------------------------------------------------------------

    def apply(self, data: bytes, now: datetime) -> BundleHeader:
        """Verify and install a snapshot or delta; durable and visible when this returns.

        Raises :class:`BundleRejected` (signature, rollback, expiry, base), or
        :class:`RevocationFormatError` for malformed bytes, or ``OSError`` if the disk
        write fails; in every failure the previous data stays installed. Rollback is
        judged against the installed data and against the mark of the newest data ever
        installed (``<state>.high``), so a lost or unreadable state file, or one these
        keys cannot verify, still lets no older snapshot in. Other processes installing
        at the same time wait for each other (a lock on the state directory), and each
        decides on what the other installed.
        """
        config = self._config
        with self._lock, directory_lock(config.state_path.parent):
            if self.changed_on_disk():
                self._read_file()  # another process installed since this store loaded
            on_disk = read_high_water(self._high_path)
            if on_disk is not None and (self._high is None or on_disk.version > self._high.version):
                self._high = on_disk
            bundle = open_bundle(data, config.trusted_keys, config.max_bundle_size)
            view = self._view
            installed = Installed(view.latest.version, view.latest.issued_at) if view else None
            check_acceptable(installed, bundle.header, now, config.max_clock_skew)
            check_mark(bundle.header, self._high, self._high_path)
            if bundle.header.kind == BundleKind.SNAPSHOT:
                chain = [data]
            else:
                assert view is not None  # check_acceptable refuses a delta without a base
                chain = [*self._current_chain(view), data]
            if len(chain) > MAX_CHAIN:
                raise BundleRejected(
                    RejectReason.TOO_LARGE, f"{MAX_CHAIN} deltas since the snapshot; send one"
                )
            encoded = encode_chain(chain)
            if len(encoded) > MAX_STATE_SIZE:
                raise BundleRejected(
                    RejectReason.TOO_LARGE,
                    f"the chain would be {len(encoded)} bytes (at most {MAX_STATE_SIZE}); "
                    "send a snapshot",
                )
            try:
                replayed = replay(chain, config.trusted_keys, config.max_bundle_size)
            except RevocationFormatError as exc:
                raise BundleRejected(RejectReason.INCONSISTENT_DELTA, str(exc)) from exc
            new_view = self._build_view(replayed, len(chain) - 1, chain_digest(encoded))
            del replayed
            atomic_write(config.state_path, encoded, owner_for(config.state_path.parent))
            self._seen = current_identity(config.state_path)
            self._view = new_view
            self._raise_mark(new_view)
            del view  # the old bitmaps go now, so the trim below can return their pages
            release_free_heap()
            log.info(
                "installed revocation %s version %d",
                bundle.header.kind.label,
                bundle.header.version,
            )
            return bundle.header

    def _current_chain(self, view: View) -> list[bytes]:
        data = read_limited(self._config.state_path, MAX_STATE_SIZE)
        if chain_digest(data) != view.digest:
            raise RevocationFormatError(
                f"{self._config.state_path} changed since it was loaded; reload first"
            )
        return decode_chain(data)


def _implements_revocation_check(store: RevocationStore) -> RevocationCheck:
    return store  # mypy --strict proves RevocationStore satisfies the Protocol
