"""Installing what the back office pushes over the link: time, config, enrolment, revocation.

Runs on the link's thread, never on the event loop: it reads and writes files, loads
keys and validates a whole configuration. Every install verifies the object's own
signature (``terminald.link.signed``; revocation bundles and enrolment sets carry their
own), refuses a version not above the installed one, validates the content exactly as
the daemon would load it, and only then replaces the file atomically
(``store.atomic_file``) and asks for a reload. It returns an :class:`InstallOutcome`;
bad input never raises and never leaves a half-written file.

Where the unit must allow it (docs/operations.md, "The back-office link"):
* the system clock is set only with CAP_SYS_TIME (the shipped unit has
  ``ProtectClock=yes``: the trusted time still advances, and the reply says the clock
  was not set);
* the configuration file is replaced where it is, which under
  ``ProtectSystem=strict`` needs it to be writable by the daemon (``write_failed``
  otherwise); an enrolment set goes into the state directory.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import tomllib
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from terminald.config import Config, ConfigError, config_from_dict
from terminald.config_files import revocation_store_config
from terminald.core.trusted_time import SIGNED_TIME_TOLERANCE, SignedTime
from terminald.daemon.link_install_enrolment import install_enrolment_set, installed_version
from terminald.daemon.link_install_support import (
    CAP_SYS_TIME_NOTE,
    VERSIONS_NAME,
    Clock,
    InstallOutcome,
    MarkError,
    NonceIssuer,
    SystemClock,
    VersionMarks,
    refused,
)
from terminald.daemon.live_revocation import signed_floor
from terminald.daemon.runtime import build_runtime
from terminald.files import MAX_CONFIG_SIZE, describe_error, read_limited
from terminald.link.signed import MAX_TIME, SignedError, SignedObject, signed_time, verify_object
from terminald.revocation.chain import decode_chain
from terminald.revocation.errors import (
    BundleRejected,
    RejectReason,
    RevocationError,
    RevocationFormatError,
)
from terminald.revocation.keys import TrustedKeys
from terminald.store.atomic_file import atomic_write
from terminald.store.enrolment_db import EnrolmentStore
from terminald.store.revocation_store import MAX_STATE_SIZE, RevocationStore
from terminald.store.trusted_time import TrustedTimeFile

logger = logging.getLogger(__name__)

MAX_BACKWARD_S = 300.0  # a larger backward step of the clock needs ``force``
NESTED_TOO_DEEPLY = "not valid TOML: arrays or tables nested too deeply"

__all__ = [
    "MAX_BACKWARD_S",
    "InstallOutcome",
    "LinkInstaller",
    "NonceIssuer",
    "SystemClock",
    "config_digest",
    "validate_config_text",
]


def config_digest(path: Path) -> bytes:
    """SHA-256 of the configuration file as it is now (``hello.reply.config_digest``):
    tells the back office whether the file is the one it pushed. OSError if unreadable."""
    return hashlib.sha256(read_limited(path, MAX_CONFIG_SIZE)).digest()


def validate_config_text(
    text: str,
    path: Path,
    terminal_id: str,
    extra_checks: Callable[[Config], list[str]] | None = None,
) -> list[str]:
    """Every problem the daemon would find loading ``text`` as ``path`` (none: []).

    The same validation as ``terminald check-config`` and SIGHUP: ``config_from_dict``
    with paths taken from ``path``'s directory, then ``build_runtime(check_only=True)``,
    which opens every file the configuration names. ``extra_checks`` adds the daemon's
    own (the relay wiring against the board's pin map). The terminal id may not change:
    a pushed configuration must not turn this terminal into another.
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        return [f"not valid TOML: {exc}"]
    except RecursionError:  # tomllib recurses per nested array or table, without a limit
        return [NESTED_TOO_DEEPLY]
    try:
        config = config_from_dict(data, path.resolve().parent, path)
    except ConfigError as exc:
        return exc.messages
    problems: list[str] = []
    if config.terminal.id != terminal_id:
        problems.append(
            f"terminal.id: {config.terminal.id} here, but this terminal is {terminal_id}"
        )
    if extra_checks is not None:
        problems += extra_checks(config)
    try:
        build_runtime(config, reader_supports_extended=False, check_only=True)
    except ConfigError as exc:
        problems += exc.messages
    return problems


CLOCK_CLOSE_S = 1.0


class LinkInstaller:
    """The terminal side of every push. ``config`` and ``config_path`` give the running
    configuration and its file, ``store`` the running revocation store (so its live
    view changes at once), ``reload`` asks the daemon to reload (``Daemon.reload``; it
    must only post, not wait), ``enrolment`` the running enrolment store (None: one is
    opened on ``<state>/enrolment.sqlite`` per install). One install at a time."""

    def __init__(
        self,
        *,
        config: Callable[[], Config],
        config_path: Callable[[], Path | None],
        store: Callable[[], RevocationStore | None],
        reload: Callable[[], None],
        trusted_time: TrustedTimeFile | None,
        nonces: NonceIssuer | None = None,
        clock: Clock | None = None,
        extra_checks: Callable[[Config], list[str]] | None = None,
        max_backward_s: float = MAX_BACKWARD_S,
        enrolment: Callable[[], EnrolmentStore | None] | None = None,
    ) -> None:
        self._config = config
        self._config_path = config_path
        self._store = store
        self._reload = reload
        self._trusted_time = trusted_time
        self.nonces = nonces if nonces is not None else NonceIssuer()
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._extra_checks = extra_checks
        self._max_backward_s = max_backward_s
        self._enrolment = enrolment
        self._lock = threading.Lock()

    def marks(self) -> VersionMarks:
        return VersionMarks(self._config().state.dir / VERSIONS_NAME)

    def installed_versions(self) -> dict[str, int]:
        """``{"config": N, "enrolment": M}`` for hello (0: never pushed or unreadable);
        the enrolment version is the installed set's, however it was installed."""
        try:
            config = self.marks().read()["config"]
        except MarkError:
            config = 0
        return {
            "config": config,
            "enrolment": installed_version(self._config().state.dir, self._enrolment),
        }

    def issue_nonce(self) -> bytes:
        return self.nonces.issue(self._clock.monotonic())

    # -- time ----------------------------------------------------------------------------

    def install_time(self, data: bytes, force: bool = False) -> InstallOutcome:
        """Advance the trusted time and set the system clock to a signed time object."""
        with self._lock:
            config = self._config()
            keys = _keys(config)
            if isinstance(keys, InstallOutcome):
                return _as_kind(keys, "time")
            try:
                obj = verify_object(data, keys, "time", terminal_id=config.terminal.id)
            except SignedError as exc:
                return refused("time", exc.reason.value, exc.detail)
            problem = self.nonces.problem(obj.nonce, self._clock.monotonic())
            if problem:
                return refused("time", "nonce", problem)
            return self._apply_time(obj, force)

    def _apply_time(self, obj: SignedObject, force: bool) -> InstallOutcome:
        at = signed_time(obj)
        offset = at - self._clock.wall()
        if not 0 <= at <= MAX_TIME:
            return refused("time", "malformed", f"signed time {at:.0f} is not a usable time")
        moment = datetime.fromtimestamp(at, UTC)
        # The same floor the authentication holds the clock to: the persisted trusted
        # time and the installed revocation data's issue time.
        floor = signed_floor(self._trusted_time, self._store())
        if moment < floor.at - SIGNED_TIME_TOLERANCE:
            return refused(
                "time",
                "behind_trusted_time",
                f"signed time {_iso(moment)} is before {floor.source} ({_iso(floor.at)}): "
                "the back office's clock is behind (force does not override this)",
                offset=offset,
            )
        if offset < -self._max_backward_s and not force:
            return refused(
                "time",
                "backward_jump",
                f"would set the clock back by {-offset:.0f} s (more than "
                f"{self._max_backward_s:g} s); send it again with force to do so (the "
                "challenge stays valid until it is used or expires)",
                offset=offset,
            )
        assert obj.nonce is not None  # verify_object requires it of a time object
        if not self.nonces.consume(obj.nonce, self._clock.monotonic()):
            return refused("time", "nonce", "the challenge expired meanwhile; ask again")
        notes: list[str] = []
        if self._trusted_time is not None:
            try:
                self._trusted_time.advance(SignedTime(moment, f"back-office time v{obj.version}"))
            except OSError as exc:
                notes.append(f"trusted time not kept on disk ({describe_error(exc)})")
        clock_set = False
        try:
            # Within a second the clock is left alone: the object has been on the line
            # for part of that (no transit correction), so setting it would not improve it.
            if abs(offset) < CLOCK_CLOSE_S:
                notes.append(f"clock within {CLOCK_CLOSE_S:g} s of it: left as it is")
            else:
                self._clock.set_wall(at)
                clock_set = True
        except PermissionError:
            notes.append(CAP_SYS_TIME_NOTE)
        except OSError as exc:
            notes.append(f"clock not set: {describe_error(exc)}")
        logger.info("link: signed time %s applied (offset %+.3f s)", _iso(moment), offset)
        return InstallOutcome(
            "time",
            True,
            "",
            f"time {_iso(moment)} applied (offset {offset:+.3f} s)",
            obj.version,
            tuple(notes),
            offset,
            clock_set,
        )

    # -- config ---------------------------------------------------------------------------

    def install_config(self, data: bytes) -> InstallOutcome:
        """Validate a signed terminald.toml like check-config, then replace the running file."""
        with self._lock:
            config = self._config()
            path = self._config_path()
            if path is None:
                return refused("config", "no_config_file", "the daemon runs without a file")
            return self._install_file("config", data, config, path, self._check_config)

    def _check_config(self, text: str, path: Path, config: Config) -> list[str]:
        return validate_config_text(text, path, config.terminal.id, self._extra_checks)

    def install_enrolment(self, data: bytes) -> InstallOutcome:
        """A signed enrolment set into ``<state>/enrolment.sqlite``, as ``terminald
        enrolment apply`` installs it (daemon/link_install_enrolment.py)."""
        with self._lock:
            config = self._config()
            keys = _keys(config)
            if isinstance(keys, InstallOutcome):
                return _as_kind(keys, "enrolment")
            now = datetime.fromtimestamp(self._clock.wall(), UTC)
            store = self._enrolment() if self._enrolment is not None else None
            return install_enrolment_set(
                data, keys, config.state.dir, now, store, config.access.policy
            )

    def _install_file(
        self,
        kind: str,
        data: bytes,
        config: Config,
        path: Path,
        check: Callable[[str, Path, Config], list[str]],
    ) -> InstallOutcome:
        keys = _keys(config)
        if isinstance(keys, InstallOutcome):
            return _as_kind(keys, kind)
        marks_file = VersionMarks(config.state.dir / VERSIONS_NAME)
        try:
            marks = marks_file.read()
        except MarkError as exc:
            return refused(kind, "mark_unreadable", f"{exc}; repair or remove it by hand")
        try:
            obj = verify_object(
                data, keys, kind, terminal_id=config.terminal.id, installed_version=marks[kind]
            )
        except SignedError as exc:
            return refused(kind, exc.reason.value, exc.detail)
        try:
            text = obj.body.decode()
        except UnicodeDecodeError as exc:
            return refused(kind, "invalid", f"not UTF-8 text (byte {exc.start})")
        problems = check(text, path, config)
        if problems:
            return refused(kind, "invalid", "\n".join(problems))
        try:
            atomic_write(path, obj.body)
        except OSError as exc:
            return refused(kind, "write_failed", f"cannot replace {path}: {describe_error(exc)}")
        notes: list[str] = []
        try:
            marks_file.write({**marks, kind: obj.version})
        except OSError as exc:
            notes.append(f"version mark not kept ({describe_error(exc)})")
        logger.info("link: %s version %d installed into %s", kind, obj.version, path)
        notes += self._request_reload()
        return InstallOutcome(
            kind, True, "", f"{kind} version {obj.version} installed", obj.version, tuple(notes)
        )

    def _request_reload(self) -> list[str]:
        try:
            self._reload()
        except Exception as exc:  # the file is in place; a restart or SIGHUP picks it up
            logger.exception("link: reload request failed")
            return [f"reload not requested ({exc!r}); it takes effect at the next reload"]
        return []

    # -- revocation ------------------------------------------------------------------------

    def install_revocation(self, data: bytes) -> InstallOutcome:
        """``RevocationStore.apply``, as ``terminald revocation apply`` does it; the very
        bundle installed last is "installed" again (idempotent), not a rollback."""
        with self._lock:
            store = self._store()
            if store is None:
                return refused(
                    "revocation",
                    "no_store",
                    "revocation is not configured ([revocation] backoffice_keys)",
                )
            now = datetime.fromtimestamp(self._clock.wall(), UTC)
            try:
                header = store.apply(data, now)
            except BundleRejected as exc:
                if exc.reason is RejectReason.ROLLBACK and _is_last(store, data):
                    version = store.status(now).version
                    return InstallOutcome(
                        "revocation", True, "", f"version {version} is already installed", version
                    )
                return refused("revocation", exc.reason.value, exc.detail)
            except RevocationFormatError as exc:
                return refused("revocation", "malformed", str(exc))
            except RevocationError as exc:
                return refused("revocation", "rejected", str(exc))
            except OSError as exc:
                return refused("revocation", "write_failed", describe_error(exc))
            return InstallOutcome(
                "revocation",
                True,
                "",
                f"{header.kind.label} version {header.version} installed, valid until "
                f"{_iso(header.valid_until)}",
                header.version,
            )


def _keys(config: Config) -> TrustedKeys | InstallOutcome:
    """The back-office keys as the running configuration names them (read now: a rotation
    takes effect without a restart)."""
    try:
        store_config = revocation_store_config(config)
    except ConfigError as exc:
        return refused("", "no_keys", "; ".join(exc.messages))
    if store_config is None:
        return refused("", "no_keys", "no back-office key is configured ([revocation])")
    return store_config.trusted_keys


def _as_kind(outcome: InstallOutcome, kind: str) -> InstallOutcome:
    return InstallOutcome(kind, False, outcome.code, outcome.reason)


def _is_last(store: RevocationStore, data: bytes) -> bool:
    try:
        chain = decode_chain(read_limited(store.config.state_path, MAX_STATE_SIZE))
    except (OSError, RevocationError):
        return False
    return chain[-1] == data


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
