"""The daemon's operator interface: what a technician's console (and the back-office link)
may read and ask of the running daemon, from their own threads.

Reads and changes are carried out **on the event loop**: a caller posts an
:class:`OperatorCall` (``Daemon.post``) and waits, with a timeout, for the loop's answer.
The loop never waits on a caller; if the loop is slow the caller gets
:class:`OperatorError` and the call's late answer is thrown away. Only what would be slow
on the loop runs in the caller's thread: reading the audit trail (its own read-only
connection), hashing the configuration file, listing readers (a PC/SC context of its own).

``Operator`` is the typed API (docs/console.md lists it for the link's use);
``DaemonOperator`` is the daemon's implementation of it.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Final, Literal, Protocol, TypeVar

from terminald.core.commands import Record
from terminald.core.feedback import ERROR_BEEP
from terminald.core.hardware import Color, LightPattern, LightStep
from terminald.core.terminal import Mode, ModeSet, State
from terminald.daemon.live_revocation import signed_floor
from terminald.daemon.policy_wiring import enrolment_path
from terminald.enrolment.model import Enrolment
from terminald.store.audit import AUDIT_NAME, AuditEntry, AuditError, AuditReader
from terminald.store.enrolment_db import EnrolmentStore

if TYPE_CHECKING:
    from terminald.daemon.service import Daemon

T = TypeVar("T")
Output = Literal["relay", "leds", "buzzer"]
CALL_TIMEOUT_S: Final = 2.0  # the loop answers within one event; a longer wait is a stall
RESTART_EXIT: Final = 75  # EX_TEMPFAIL: non-zero, so systemd's Restart=on-failure restarts
LED_TEST = LightPattern(
    (LightStep(Color.RED, 500), LightStep(Color.AMBER, 500), LightStep(Color.GREEN, 500))
)
_CONFIG_MAX = 1 << 20  # bytes of the configuration file hashed for ``config``


class OperatorError(Exception):
    """A request refused or not answered; the message says why, in one line."""


@dataclass(frozen=True)
class StatusView:
    terminal_id: str
    state: str  # core.terminal.State value: idle, checking, pin_entry, verifying, verdict
    mode: str  # core.terminal.Mode value
    card_present: bool
    relay_energised: bool
    alarms: tuple[str, ...]
    reader_problem: str | None
    clock_problem: str | None  # why the clock is not trusted, or None
    health: str | None  # why the watchdog is withheld, or None
    summary: str  # the line systemd shows as STATUS= (daemon/health.py status_text)
    door: str = "not_wired"  # the door contact: open, closed, or not_wired


@dataclass(frozen=True)
class ReadersView:
    configured: str | None  # [card] reader; None: every reader
    present: tuple[str, ...]  # PC/SC readers seen now
    list_problem: str | None  # why the list could not be read
    reader_problem: str | None  # the monitor's problem with the active reader
    card_present: bool
    taps: int  # card transactions that reached a verdict since start
    apdus: int  # APDUs exchanged in them (card/connection.py CountingConnection)
    last_apdus: int  # in the last one
    last_verdict: str | None  # "granted ok" / "refused <reason>"
    last_at: datetime | None


@dataclass(frozen=True)
class RevocationView:
    configured: bool
    available: bool = False
    problem: str = ""
    version: int | None = None
    issued_at: datetime | None = None
    valid_until: datetime | None = None
    freshness: str | None = None  # revocation.freshness.Freshness value
    revoked: int = 0


@dataclass(frozen=True)
class EnrolmentView:
    policy: str  # [access] policy: enrolment | enrolled | any_card
    file: Path  # the enrolled file, or the signed set's database
    cards: int | None  # enrolled certificates; None when the policy admits any card
    people: int | None = None  # the signed set's people (None: not the signed set)
    version: int | None = None  # the installed set's version (None: none installed)
    valid_until: datetime | None = None
    # Why the signed set's store reads as no set (damaged, unreadable); "" when it reads.
    problem: str = ""


@dataclass(frozen=True)
class ConfigView:
    path: Path | None
    sha256: str | None  # of the file now; None if unreadable (problem says why)
    loaded_at: datetime  # when the running configuration was loaded (start or reload)
    changed_since: bool | None  # the file was modified after loaded_at
    problem: str | None = None


@dataclass(frozen=True)
class TimeView:
    system: datetime
    trusted: datetime  # the newest time a trusted party signed
    trusted_source: str
    clock_problem: str | None


class Operator(Protocol):
    """What a console or link may ask of the daemon. Every method may be called from any
    thread but the loop's, and raises OperatorError (never anything else) when refused or
    unanswered within a few seconds."""

    def status(self) -> StatusView: ...
    def readers(self) -> ReadersView: ...
    def revocation(self) -> RevocationView: ...
    def enrolment(self) -> EnrolmentView: ...
    def config(self) -> ConfigView: ...
    def time(self) -> TimeView: ...
    def events(self, limit: int) -> list[AuditEntry]:
        """The newest ``limit`` audit rows, oldest first."""
        ...

    def set_mode(self, mode: Mode) -> str:
        """Set the mode; it holds until a restart, or a reload that changes ``[terminal]
        mode``. Returns what happened ("mode normal -> lockdown")."""
        ...

    def test_output(self, output: Output) -> str:
        """Pulse the relay / cycle the LEDs / sound the buzzer; returns what was done."""
        ...

    def restart(self, why: str) -> None:
        """Stop the daemon with RESTART_EXIT so systemd starts it again."""
        ...

    def record(self, kind: str, detail: str) -> None:
        """An audit event (log line + audit row); queued, never waits."""
        ...


class OperatorCall:
    """A function to run on the loop, and its answer. ``Daemon._dispatch`` runs it."""

    def __init__(self, function: Callable[[Daemon], object]) -> None:
        self._function = function
        self._done = threading.Event()
        self._result: object = None
        self._error: Exception | None = None

    def run(self, daemon: Daemon) -> None:
        try:
            self._result = self._function(daemon)
        except Exception as exc:  # the caller gets it; the loop goes on
            self._error = exc
        finally:
            self._done.set()

    def wait(self, timeout: float) -> object:
        if not self._done.wait(timeout):
            raise OperatorError(f"the daemon did not answer within {timeout:g} s")
        if isinstance(self._error, OperatorError):
            raise self._error
        if self._error is not None:
            raise OperatorError(f"internal error: {type(self._error).__name__}")
        return self._result


class DaemonOperator:
    """``list_readers`` lists PC/SC readers on a context of its own (called in the caller's
    thread); None when there is none to ask."""

    def __init__(
        self,
        daemon: Daemon,
        *,
        list_readers: Callable[[], list[str]] | None = None,
        timeout_s: float = CALL_TIMEOUT_S,
    ) -> None:
        self._daemon = daemon
        self._list_readers = list_readers
        self._timeout_s = timeout_s
        self._lock = threading.Lock()
        self._taps = self._apdus = self._last_apdus = 0
        self._last_verdict: str | None = None
        self._last_at: datetime | None = None
        self._config_seen = daemon.config
        self._config_at = daemon.wall_now()
        daemon.add_listener(self._heard)

    def _call(self, function: Callable[[Daemon], T]) -> T:
        call = OperatorCall(function)
        self._daemon.post(call)
        return call.wait(self._timeout_s)  # type: ignore[return-value]

    def _heard(self, item: object) -> None:
        """On the loop, each record: count card transactions (the worker's APDU count of
        the card just decided is still current when its verdict is recorded)."""
        if isinstance(item, Record) and item.kind in ("granted", "refused", "attendance"):
            apdus = self._daemon.worker.timing.apdus
            reason = item.reason.value if item.reason else ""
            with self._lock:
                self._taps += 1
                self._apdus += apdus
                self._last_apdus = apdus
                self._last_verdict = f"{item.kind} {reason}".strip()
                self._last_at = self._daemon.wall_now()

    # -- reads ------------------------------------------------------------------------------

    def status(self) -> StatusView:
        def read(d: Daemon) -> StatusView:
            s = d.snapshot()
            clock = d.untrusted_clock()
            return StatusView(
                d.config.terminal.id,
                s.state,
                s.mode,
                s.card_present,
                s.relay_energised,
                tuple(sorted(s.alarms)),
                s.reader_problem,
                clock,
                s.health,
                d.status_line(),
                d.terminal.door.door_state,
            )

        return self._call(read)

    def readers(self) -> ReadersView:
        present: tuple[str, ...] = ()
        problem: str | None = "no PC/SC context for the console"
        if self._list_readers is not None:
            try:
                present, problem = tuple(self._list_readers()), None
            except Exception as exc:  # pyscard raises its own types; say which, go on
                problem = f"{type(exc).__name__}: {str(exc)[:60]}"
        configured, reader_problem, card = self._call(
            lambda d: (d.config.card.reader, d.monitor.problem, d.monitor.present)
        )
        with self._lock:
            return ReadersView(
                configured,
                present,
                problem,
                reader_problem,
                card,
                self._taps,
                self._apdus,
                self._last_apdus,
                self._last_verdict,
                self._last_at,
            )

    def revocation(self) -> RevocationView:
        def read(d: Daemon) -> RevocationView:
            store = d.runtime.revocation
            if store is None:
                return RevocationView(False)
            st = store.status(d.wall_now())
            return RevocationView(
                True,
                st.available,
                st.problem,
                st.version,
                st.issued_at,
                st.valid_until,
                st.freshness.value if st.freshness else None,
                st.revoked,
            )

        return self._call(read)

    def enrolment(self) -> EnrolmentView:
        def read(d: Daemon) -> tuple[str, Path, Enrolment | None]:
            access = d.config.access
            path = access.enrolled if access.policy == "enrolled" else enrolment_path(d.config)
            return access.policy, path, d.runtime.enrolment

        policy, path, enrolment = self._call(read)
        # The set's summary is read here, off the loop: it may be a database query.
        info = enrolment.info() if enrolment is not None else None
        if info is None:
            # The store's reason (a damaged file...), so the console says why every
            # card is refused, not only that no set is there.
            problem = enrolment.problem() if isinstance(enrolment, EnrolmentStore) else ""
            return EnrolmentView(policy, path, None, problem=problem)
        if policy == "enrolled":
            return EnrolmentView(policy, path, info.credentials)
        return EnrolmentView(
            policy, path, info.credentials, info.people, info.version, info.valid_until
        )

    def config(self) -> ConfigView:
        def read(d: Daemon) -> tuple[Path | None, datetime]:
            if d.config is not self._config_seen:  # a reload swapped it in since
                self._config_seen, self._config_at = d.config, d.wall_now()
            return d.config.source, self._config_at

        path, loaded_at = self._call(read)
        if path is None:
            return ConfigView(None, None, loaded_at, None, "built in memory, no file")
        try:  # in this thread: a file read has no place on the loop
            with path.open("rb") as handle:
                data = handle.read(_CONFIG_MAX)
                modified = datetime.fromtimestamp(path.stat().st_mtime, loaded_at.tzinfo)
        except OSError as exc:
            return ConfigView(path, None, loaded_at, None, exc.strerror or str(exc))
        return ConfigView(path, hashlib.sha256(data).hexdigest(), loaded_at, modified > loaded_at)

    def time(self) -> TimeView:
        def read(d: Daemon) -> TimeView:
            floor = signed_floor(d.trusted_time, d.runtime.revocation)
            return TimeView(d.wall_now(), floor.at, floor.source, d.untrusted_clock())

        return self._call(read)

    def events(self, limit: int) -> list[AuditEntry]:
        path = self._call(lambda d: d.config.state.dir / AUDIT_NAME)
        try:
            reader = AuditReader(path)
        except AuditError as exc:
            raise OperatorError(str(exc)) from None
        try:
            return reader.recent(limit)
        except AuditError as exc:
            raise OperatorError(str(exc)) from None
        finally:
            reader.close()

    # -- changes ----------------------------------------------------------------------------

    def set_mode(self, mode: Mode) -> str:
        def change(d: Daemon) -> str:
            before = d.terminal.mode
            if before is mode:
                return f"mode is already {mode.value}"
            d.handle(ModeSet(mode))
            return f"mode {before.value} -> {d.terminal.mode.value}"

        return self._call(change)

    def test_output(self, output: Output) -> str:
        return self._call(lambda d: _test(d, output))

    def restart(self, why: str) -> None:
        def stop(d: Daemon) -> None:
            from terminald.daemon.service import Stop  # service imports this module

            d.exit_code = RESTART_EXIT
            d.post(Stop(why))

        self._call(stop)

    def record(self, kind: str, detail: str) -> None:
        self._daemon.post(OperatorCall(lambda d: d.recorder.record(Record(kind, detail))))


def _test(d: Daemon, output: Output) -> str:
    """On the loop. Never while a card is being decided, nor against a held relay."""
    if d.terminal.state not in (State.IDLE, State.VERDICT) and output != "buzzer":
        raise OperatorError(f"not now: the terminal is in {d.terminal.state.value}")
    hw = d.hardware
    if output == "relay":
        if d.terminal.mode is Mode.EMERGENCY_OPEN or hw.relay.energised:
            raise OperatorError("not now: the relay is already energised")
        if d.config.terminal.purpose == "vend":
            raise OperatorError(
                "refused on a vending machine: the relay is the vend-enable line, and a "
                "test would be a free vend (test it with the machine's own service mode)"
            )
        # Told to the door supervisor as a release, so the door opening is no forced-open alarm.
        d.terminal.door.released(time.monotonic())
        hw.relay.pulse(d.config.relay.open_ms)
        return f"relay pulsed for {d.config.relay.open_ms} ms"
    if output == "leds":
        hw.indicator.show(LED_TEST)
        # Back to the light the terminal shows at rest once the test pattern has played.
        timer = threading.Timer(1.6, lambda: d.post(OperatorCall(_restore_light)))
        timer.daemon = True
        timer.start()
        return "LEDs: red, amber, green, 0.5 s each"
    hw.buzzer.play(ERROR_BEEP)
    return "buzzer: error beep"


def _restore_light(d: Daemon) -> None:
    if d.terminal.state is State.IDLE:
        # The terminal's own choice of resting light (no public accessor on Terminal yet).
        d.hardware.indicator.show(d.terminal.resting_light())
